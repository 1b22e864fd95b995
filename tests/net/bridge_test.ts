/**
 * `gcr run --net bridge` for real: each test makes its own network
 * namespace (`unshare --net`) and runs everything in it, gcr included, so
 * the bridge, veths, NAT tables and traffic never touch the host's network.
 * A second namespace, held by a `sleep` of the test's, stands for "outside"
 * where outbound NAT and the FORWARD DROP policy (dockerd's) are checked.
 *
 * @module
 */
import {
  BUSYBOX,
  busyboxRootfs,
  describe,
  GCR,
  gcrOk,
  missingPrograms,
  missingRoot,
  named,
  needs,
  REPO,
  ROOTFS_DIR,
  run,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch } from "../helpers.ts";

const skip = missingRoot() ?? needs("unshare", "nft", "ip", "curl", "python3", "iptables-save");

/**
 * Runs `script` (sh) in a new network namespace with `lo` up and a veth pair
 * t0 (192.0.2.10/24, the namespace's own address) ↔ t1; `$GCR` is gcr, `$R`
 * its --rootfs-dir option. Returns the script's result; the namespace goes
 * with its last process.
 */
async function inOwnNetns(script: string, state: string, nat = "nft") {
  const prologue = [
    "set -u",
    "ip link set lo up",
    "ip link add t0 type veth peer name t1",
    "ip addr add 192.0.2.10/24 dev t0",
    "ip link set t0 up",
    "ip link set t1 up",
  ].join("\n");
  return await run("unshare", ["--net", "sh", "-c", `${prologue}\n${script}`], {
    cwd: REPO,
    env: { GCR: GCR, R: `--rootfs-dir ${ROOTFS_DIR}`, GCR_STATE: state, GCR_NAT: nat },
    timeoutMs: 90_000,
  });
}

async function withState(fn: (state: string) => Promise<void>): Promise<void> {
  await busyboxRootfs();
  const state = Deno.makeTempDirSync({ prefix: "gcr-bridge-" });
  try {
    await fn(state);
  } finally {
    Deno.removeSync(state, { recursive: true });
  }
}

/**
 * How many of gcr's firewall rules there are: its nftables tables, and every
 * line of iptables' tables (nat and filter: chains, their rules, the jumps
 * to them) that names a GCR- chain.
 */
const GCR_RULES = "$(( $(nft list tables | grep -c gcr) + $(iptables-save | grep -c GCR-) ))";

/** What must be gone once the script's containers have ended, printed by the script itself. */
const LEFTOVERS = `
echo "leftover-links: $(ip -o link show | grep -c -E 'gcr0|veth')"
echo "leftover-rules: ${GCR_RULES}"
`;

/** A server for "outside" on 192.0.2.20:9000 that answers each connection with the address it sees the client come from. */
const SERVER = [
  "import socket",
  "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
  "s.bind(('192.0.2.20', 9000)); s.listen()",
  "while True:",
  "    c, a = s.accept(); c.sendall(a[0].encode()); c.close()",
].join("\n");

/**
 * "Outside" (for inOwnNetns' scripts): a second namespace behind t1, with
 * 192.0.2.20, SERVER, and a route to the bridge's subnet through the first
 * namespace, so that a connection sent straight to a container's address is
 * refused by nothing but the firewall. `outside CMD…` runs a command there;
 * OUTSIDE_END stops it.
 */
const OUTSIDE = `
unshare --net sleep 120 & holder=$!
sleep 0.2
ip link set t1 netns $holder
nsenter -t $holder -n sh -c 'ip link set lo up; ip addr add 192.0.2.20/24 dev t1; ip link set t1 up; ip route add 10.88.0.0/16 via 192.0.2.10'
nsenter -t $holder -n python3 -c "${SERVER}" & serve=$!
outside() { nsenter -t $holder -n "$@"; }
tries=0
until outside python3 -c "import socket; socket.create_connection(('192.0.2.20', 9000))" 2>/dev/null; do
  tries=$((tries + 1)); [ $tries -lt 100 ] || { echo "the server did not start" >&2; exit 1; }
  sleep 0.05
done
`;
const OUTSIDE_END = "kill $holder $serve 2>/dev/null; wait 2>/dev/null";

Deno.test(
  named(
    "--net bridge: eth0 with an address, a default route, /etc/hosts; two containers reach each other; all undone",
    skip,
  ),
  () =>
    withState(async (state) => {
      const result = await inOwnNetns(
        `
a=$($GCR run -d -q --net bridge $R busybox httpd -f -p 80 -h /etc)
sleep 0.3
# prune removes stopped containers only: the address allocator's state is not one.
$GCR prune >/dev/null
$GCR run -q --net bridge $R busybox sh -c 'ip -o -4 addr show eth0 | tr -s " " | cut -d" " -f4; ip route | grep default; tail -1 /etc/hosts; hostname'
addr_a=$($GCR inspect $a | sed -n 's/.*"address": "\\(.*\\)".*/\\1/p')
echo "a-address: $addr_a"
$GCR run -q --net bridge $R busybox wget -q -O - http://$addr_a/hostname
echo "wget-status: $?"
echo "resolv: $($GCR run -q --net bridge --dns 192.0.2.53 $R busybox grep nameserver /etc/resolv.conf)"
$GCR rm -f $a >/dev/null
${LEFTOVERS}`,
        state,
      );
      assertEquals(result.code, 0, "the script", describe(result));
      assertIncludes(
        result.stdout,
        "resolv: nameserver 192.0.2.53\n",
        "--dns reaches a bridged container's resolv.conf",
        describe(result),
      );
      const lines = result.stdout.split("\n");
      const [cidr, route, hosts, hostname] = lines;
      assertMatch(cidr!, /^10\.88\.0\.\d+\/16$/, "eth0's address is from 10.88.0.0/16", describe(result));
      assertMatch(
        route!,
        /^default via 10\.88\.0\.1 dev eth0/,
        "the default route goes through the bridge",
        describe(result),
      );
      assertEquals(
        hosts,
        `${cidr!.split("/")[0]}\t${hostname}`,
        "/etc/hosts names the container by its address",
        describe(result),
      );
      const a = result.stdout.match(/^a-address: (10\.88\.0\.\d+)$/m)?.[1];
      assert(a && a !== cidr!.split("/")[0], "two containers, two addresses", describe(result));
      assertMatch(
        result.stdout,
        /^[0-9a-f]{12}\nwget-status: 0$/m,
        "b fetched a's /etc/hostname over the bridge",
        describe(result),
      );
      assertIncludes(
        result.stdout,
        "leftover-links: 0\nleftover-rules: 0\n",
        "bridge, veths, NAT and forward rules are gone",
        describe(result),
      );
    }),
);

/** nftables (the default where nft exists) and iptables (where it does not; GCR_NAT chooses here). */
for (const nat of ["nft", "iptables"]) {
  Deno.test(
    named(`--net bridge -p (${nat}): a published port answers on 127.0.0.1 and on the namespace's own address`, skip),
    () =>
      withState(async (state) => {
        const result = await inOwnNetns(
          `
  a=$($GCR run -d -q --net bridge -p 8080:80 -p 127.0.0.1:8081:80 $R busybox httpd -f -p 80 -h /etc)
  sleep 0.3
  echo "loopback: $(curl -s -m 5 http://127.0.0.1:8080/hostname)"
  echo "own-address: $(curl -s -m 5 http://192.0.2.10:8080/hostname)"
  echo "loopback-only: $(curl -s -m 5 http://127.0.0.1:8081/hostname)"
  echo "loopback-only-elsewhere: $(curl -s -m 2 http://192.0.2.10:8081/hostname || echo refused)"
  # Bridged, not routed: it meets FORWARD only where br_netfilter hooks the
  # bridge (not in this test's namespace), and then passes by -s … -i gcr0.
  # busybox's wget -T crashes (1.35): timeout bounds it instead.
  echo "from-a-container: $($GCR run -q --net bridge $R busybox wget -q -O - http://192.0.2.10:8080/hostname)"
  echo "rules: nft $(nft list tables | grep -c gcr) iptables $(iptables -t nat -S | grep -c -- '-N GCR-')"
  echo "id: $a"
  $GCR rm -f $a >/dev/null
  ${LEFTOVERS}`,
          state,
          nat,
        );
        assertEquals(result.code, 0, "the script", describe(result));
        const id = result.stdout.match(/^id: ([0-9a-f]{12})$/m)?.[1];
        assertIncludes(
          result.stdout,
          nat === "nft" ? "rules: nft 1 iptables 0\n" : "rules: nft 0 iptables 2\n",
          `the rules are ${nat}'s`,
          describe(result),
        );
        assert(id, "the container's id", describe(result));
        for (const line of ["loopback", "own-address", "loopback-only", "from-a-container"]) {
          assertIncludes(result.stdout, `${line}: ${id}\n`, `-p answers (${line})`, describe(result));
        }
        assertIncludes(
          result.stdout,
          "loopback-only-elsewhere: refused\n",
          "-p 127.0.0.1:… publishes on loopback only",
          describe(result),
        );
        assertIncludes(result.stdout, "leftover-links: 0\nleftover-rules: 0\n", "nothing left", describe(result));
      }),
  );

  Deno.test(
    named(`--net bridge (${nat}): outbound traffic leaves with the namespace's address (NAT)`, skip),
    () =>
      withState(async (state) => {
        const result = await inOwnNetns(
          `${OUTSIDE}
  echo "seen-as: $($GCR run -q --net bridge $R busybox nc 192.0.2.20 9000)"
  ${OUTSIDE_END}
  ${LEFTOVERS}`,
          state,
          nat,
        );
        assertEquals(result.code, 0, "the script", describe(result));
        assertIncludes(
          result.stdout,
          "seen-as: 192.0.2.10\n",
          "the server sees the namespace's address, not 10.88.x",
          describe(result),
        );
        assertIncludes(result.stdout, "leftover-links: 0\nleftover-rules: 0\n", "nothing left", describe(result));
      }),
  );

  Deno.test(
    named(`--net bridge (${nat}): a gcr killed with SIGKILL leaves rules that gcr rm and prune remove`, skip),
    () =>
      withState(async (state) => {
        const result = await inOwnNetns(
          `
  monitor_of() { sed -n 's/^  "pid": \\([0-9]*\\),$/\\1/p' "$GCR_STATE/run/$1/container.json"; }
  a=$($GCR run -d -q --net bridge -p 8080:80 $R busybox httpd -f -p 80)
  kill -9 $(monitor_of $a); sleep 0.5
  echo "tables-after-kill: $(( $(nft list tables | grep -c gcr) + $(iptables -t nat -S | grep -c -- '-N GCR-') ))"
  echo "forward-jumps-after-kill: $(iptables -S FORWARD | grep -c -- '-j GCR-.*-FWD')"
  $GCR rm $a >/dev/null
  echo "rules-after-rm: ${GCR_RULES}"
  b=$($GCR run -d -q --net bridge $R busybox sleep 60)
  kill -9 $(monitor_of $b); sleep 0.5
  echo "forward-jumps-after-kill-b: $(iptables -S FORWARD | grep -c -- '-j GCR-.*-FWD')"
  $GCR prune >/dev/null
  echo "rules-after-prune: ${GCR_RULES}"
  `,
          state,
          nat,
        );
        assertEquals(result.code, 0, "the script", describe(result));
        // nftables: the container's table; iptables: its two chains.
        assertIncludes(
          result.stdout,
          `tables-after-kill: ${nat === "nft" ? 1 : 2}\n`,
          "the killed gcr could not undo its table",
          describe(result),
        );
        assertIncludes(
          result.stdout,
          "forward-jumps-after-kill: 1\n",
          "the killed gcr could not undo its forward chain either",
          describe(result),
        );
        assertIncludes(
          result.stdout,
          "rules-after-rm: 0\n",
          "gcr rm undid its NAT and forward rules",
          describe(result),
        );
        assertIncludes(
          result.stdout,
          "forward-jumps-after-kill-b: 1\n",
          "b's forward chain was left",
          describe(result),
        );
        assertIncludes(result.stdout, "rules-after-prune: 0\n", "gcr prune undid b's rules", describe(result));
      }),
  );
}

/**
 * Makes the script's `iptables`, `iptables-save` and `iptables-restore` the
 * legacy (x_tables) ones, as on a host whose alternatives point there, with
 * a lock file of the test's own (XTABLES_LOCKFILE) rather than the host's.
 */
const LEGACY = `
legacy=$GCR_STATE/legacy; mkdir "$legacy"
multi=$(readlink -f "$(command -v iptables-legacy)")
for program in iptables iptables-save iptables-restore; do ln -s "$multi" "$legacy/$program"; done
export PATH="$legacy:$PATH" XTABLES_LOCKFILE="$legacy/xtables.lock"
`;

/**
 * An iptables-restore that loads its script with the next one on PATH, then
 * fails when the script holds a container's forward rules: connect-bridge
 * failing after its NAT and forward rules are in.
 */
const FAILING_RESTORE = `
failing=$GCR_STATE/failing; mkdir "$failing"
cat >"$failing/iptables-restore" <<'EOF'
#!/bin/sh
for script; do :; done
PATH=\${PATH#*:} iptables-restore "$@" || exit
if grep -qE -- '-I FORWARD [0-9]+ -j GCR-' "$script"; then echo "iptables-restore: injected failure" >&2; exit 1; fi
EOF
chmod +x "$failing/iptables-restore"
`;

/** The NAT backend, and whether iptables is the legacy one (held locked while gcr starts). */
const FIREWALLS = [
  { nat: "nft", legacy: false },
  { nat: "iptables", legacy: false },
  { nat: "iptables", legacy: true },
] as const;

/**
 * For the legacy case: another program holds legacy iptables' lock for 3 s
 * while gcr starts (it writes `released` just before letting go), and a
 * control shows that iptables itself cannot take that lock meanwhile.
 */
const LOCK_HELD = `
flock "$XTABLES_LOCKFILE" sh -c 'sleep 3; date +%s%N >"$0"' "$legacy/released" &
until ! flock -n "$XTABLES_LOCKFILE" true; do sleep 0.02; done
echo "lock-control: $(iptables -w 1 -N lockcontrol 2>&1 | grep -c 'holding the xtables lock')"
`;
/** gcr started only once the lock was let go, and its rules are legacy's, none iptables-nft's. */
const LOCK_WAITED = `
echo "waited-for-the-lock: $([ "$(cat "$legacy/released")" -le "$(date +%s%N)" ] && [ -n "$a" ] && echo yes)"
echo "in-iptables-nft: $(iptables-nft-save | grep -c GCR-)"
`;

for (const { nat, legacy } of FIREWALLS) {
  const label = legacy ? `${nat}, iptables-legacy with its lock held` : nat;
  Deno.test(
    named(
      `--net bridge (${label}) under FORWARD DROP: the container's traffic passes, and only its; its rules go with it`,
      legacy ? skip ?? missingPrograms("iptables-legacy", "iptables-nft-save", "flock") : skip,
    ),
    () =>
      withState(async (state) => {
        const result = await inOwnNetns(
          `${legacy ? LEGACY : ""}
  echo "iptables: $(iptables -V)"
  iptables -P FORWARD DROP  # as dockerd does
  iptables -N DOCKER-USER   # and its chain for the admin's own rules, first in FORWARD
  iptables -A DOCKER-USER -j RETURN
  iptables -I FORWARD -j DOCKER-USER
  ${OUTSIDE}
  ${legacy ? LOCK_HELD : ""}
  a=$($GCR run -d -q --net bridge -p 8080:80 $R busybox httpd -f -p 80 -h /etc)
  echo "id: $a"
  ${legacy ? LOCK_WAITED : ""}
  addr=$($GCR inspect $a | sed -n 's/.*"address": "\\(.*\\)".*/\\1/p')
  chain=$(iptables -S FORWARD | sed -n 's/^-A FORWARD -j \\(GCR-.*-FWD\\)$/\\1/p')
  echo "chain: $chain"
  echo "to-outside: $($GCR exec $a nc -w 5 192.0.2.20 9000)"
  echo "forward-order: $(iptables -S FORWARD | sed -n 's/^-A FORWARD -j //p' | tr '\n' ' ')"
  # An admin's rule in DOCKER-USER holds for gcr's container too:
  iptables -I DOCKER-USER -s $addr -j DROP
  echo "user-dropped: $($GCR exec $a nc -w 1 192.0.2.20 9000 2>/dev/null || echo dropped)"
  iptables -D DOCKER-USER -s $addr -j DROP
  echo "published: $(outside curl -s -m 5 http://192.0.2.10:8080/hostname)"
  # Bridged, not routed: it meets FORWARD only where br_netfilter hooks the
  # bridge (not in this test's namespace), and then passes by -s … -i gcr0.
  # busybox's wget -T crashes (1.35): timeout bounds it instead.
  echo "from-a-container: $($GCR run --rm -q --net bridge $R busybox timeout 5 wget -q -O - http://$addr/hostname)"
  echo "straight-to-it: $(outside curl -s -m 1 http://$addr/hostname || echo dropped)"
  # Without the jump to its chain, the policy drops the container's traffic:
  iptables -D FORWARD -j $chain
  echo "to-outside-unjumped: $($GCR exec $a nc -w 1 192.0.2.20 9000 2>/dev/null || echo dropped)"
  echo "published-unjumped: $(outside curl -s -m 1 http://192.0.2.10:8080/hostname || echo dropped)"
  # … and it is the policy that stops a connection straight to the container:
  iptables -P FORWARD ACCEPT
  echo "straight-to-it-accepted: $(outside curl -s -m 5 http://$addr/hostname || echo dropped)"
  iptables -P FORWARD DROP
  # Jumps taken away (a firewall reload): rm -f removes the rest, without a word.
  [ "$GCR_NAT" = iptables ] && iptables -t nat -D PREROUTING -j GCR-$a-DNAT
  $GCR rm -f $a >/dev/null 2>"$GCR_STATE/rm.err"
  echo "rm-said: $(cat "$GCR_STATE/rm.err")"
  echo "after-rm: ${GCR_RULES}"
  echo "run-rm: $($GCR run --rm -q --net bridge $R busybox nc -w 5 192.0.2.20 9000)"
  echo "after-run-rm: ${GCR_RULES}"
  b=$($GCR run -d --rm -q --net bridge $R busybox sleep 60)
  echo "while-b-runs: $(iptables -S FORWARD | grep -c -- "-j GCR-$b-FWD")"
  $GCR stop -t 0 $b >/dev/null
  echo "after-stop-of-run-rm: ${GCR_RULES}"
  $GCR run --rm -q --net bridge $R busybox /no/such/command 2>/dev/null
  echo "failed-exec: $? ${GCR_RULES}"
  ${FAILING_RESTORE}
  PATH="$failing:$PATH" $GCR run --rm -q --net bridge -p 8080:80 $R busybox true 2>"$failing/err"
  echo "failed-connect: $? ${GCR_RULES} $(grep -c 'injected failure' "$failing/err")"
  ${OUTSIDE_END}
  echo "forward: $(iptables -S FORWARD | tr '\\n' ' ')"
  ${LEFTOVERS}`,
          state,
          nat,
        );
        assertEquals(result.code, 0, "the script", describe(result));
        assertMatch(
          result.stdout,
          legacy ? /^iptables: .*\(legacy\)$/m : /^iptables: .*\(nf_tables\)$/m,
          "which iptables",
          describe(result),
        );
        const id = result.stdout.match(/^id: ([0-9a-f]{12})$/m)?.[1];
        assert(id, "the container's id", describe(result));
        const expected: [string, string][] = [
          ["to-outside: 192.0.2.10", "the container reaches outside through the DROP policy"],
          [`published: ${id}`, "its published port is reached from outside"],
          [`from-a-container: ${id}`, "another container reaches it over the bridge"],
          ["straight-to-it: dropped", "a connection straight to its address, not through -p, is dropped"],
          ["to-outside-unjumped: dropped", "without gcr's rules the policy drops what it sends"],
          ["published-unjumped: dropped", "without gcr's rules the policy drops its published port"],
          [
            `straight-to-it-accepted: ${id}`,
            "under ACCEPT the straight connection goes through: DROP was what stopped it",
          ],
          [`chain: GCR-${id}-FWD`, "FORWARD jumps to the container's chain"],
          [`forward-order: DOCKER-USER GCR-${id}-FWD `, "after dockerd's DOCKER-USER, where admins' rules go"],
          ["user-dropped: dropped", "a DROP in DOCKER-USER holds for the container"],
          ...(legacy
            ? [
              ["lock-control: 1", "the test held legacy iptables' lock"],
              ["waited-for-the-lock: yes", "gcr run waited for the lock, and then started"],
              ["in-iptables-nft: 0", "the rules are legacy iptables' only"],
            ] as [string, string][]
            : []),
          ["rm-said: ", "rm -f says nothing"],
          ["after-rm: 0", "rm -f removed its rules"],
          ["run-rm: 192.0.2.10", "a run --rm container reaches outside"],
          ["after-run-rm: 0", "run --rm removed its rules"],
          ["while-b-runs: 1", "a second container has its own forward chain"],
          ["after-stop-of-run-rm: 0", "gcr stop of a run -d --rm container removed its rules"],
          ["failed-exec: 127 0", "a command that cannot run: exit 127, no rules left"],
          [
            "failed-connect: 125 0 1",
            "connect-bridge failing in its forward rules: exit 125, the error, no rules left",
          ],
          ["forward: -P FORWARD DROP -A FORWARD -j DOCKER-USER ", "FORWARD is back to its policy and DOCKER-USER"],
          ["leftover-links: 0\nleftover-rules: 0", "nothing left"],
        ];
        for (const [line, what] of expected) assertIncludes(result.stdout, `${line}\n`, what, describe(result));
      }),
  );
}

/** `gcr explain` shows the forward rules in the connect-bridge step, with the NAT's, for either backend. */
for (const nat of ["nft", "iptables"]) {
  Deno.test(
    named(`gcr explain run --net bridge -p (${nat}): connect-bridge shows the forward rules`, skip),
    async () => {
      await busyboxRootfs();
      const result = await gcrOk(["explain", "run", "--net", "bridge", "-p", "8080:80", "busybox", "true"], {
        env: { GCR_NAT: nat },
      });
      const step = result.stdout.match(/^ *\d+\. connect-bridge: .*\n((?: {6}.*\n)+)/m)?.[1];
      assert(step, "a connect-bridge step", describe(result));
      const chain = step.match(/:(GCR-[0-9a-f]{12}-FWD) - \[0:0\]/)?.[1];
      assert(chain, "the container's forward chain", describe(result));
      for (
        const line of [
          "iptables-restore --noflush --wait=10 <<< *filter",
          `-A ${chain} -s <address>/32 -i gcr0 -j ACCEPT`,
          `-A ${chain} -d <address>/32 -o gcr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
          `-A ${chain} -d <address>/32 -o gcr0 -p tcp -m conntrack --ctstate DNAT --ctorigdstport 8080 -m tcp --dport 80 -j ACCEPT`,
          `-I FORWARD <after DOCKER-USER, else 1> -j ${chain}`,
        ]
      ) assertIncludes(step, line, "the forward rules in connect-bridge", describe(result));
      assertIncludes(
        step,
        nat === "nft" ? "nft -f - <<< table ip gcr-" : "<<< *nat",
        "the NAT rules",
        describe(result),
      );
    },
  );
}

Deno.test(named("--net bridge refusals: -p without it; a bad -p; rootless", skip), async () => {
  await busyboxRootfs();
  const noBridge = await run(GCR, ["run", "-q", "-p", "8080:80", "--rootfs-dir", ROOTFS_DIR, "busybox", "true"]);
  assertEquals(noBridge.code, 125, "-p needs --net bridge", describe(noBridge));
  assertIncludes(noBridge.stderr, "--net bridge", "the error says what to add", describe(noBridge));
  const bad = await run(GCR, [
    "run",
    "-q",
    "--net",
    "bridge",
    "-p",
    "80",
    "--rootfs-dir",
    ROOTFS_DIR,
    "busybox",
    "true",
  ]);
  assertEquals(bad.code, 125, "a -p without a host port", describe(bad));
  assertIncludes(bad.stderr, "invalid -p", "the error", describe(bad));
  const rootless = await run("setpriv", [
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "--",
    GCR,
    "run",
    "-q",
    "--net",
    "bridge",
    BUSYBOX,
    "true",
  ], { env: { HOME: "/tmp", XDG_RUNTIME_DIR: "/tmp", GCR_NO_BUNDLE: "1" } });
  assertEquals(rootless.code, 125, "rootless --net bridge is refused", describe(rootless));
  assertIncludes(rootless.stderr, "--net bridge needs root", "the error", describe(rootless));
});
