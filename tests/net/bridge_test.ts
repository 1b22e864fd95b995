/**
 * `gcr run --net bridge` for real: each test makes its own network
 * namespace (`unshare --net`) and runs everything in it, gcr included, so
 * the bridge, veths, NAT tables and traffic never touch the host's network.
 * A second namespace, held by a `sleep` of the test's, stands for "outside"
 * where outbound NAT is checked.
 *
 * @module
 */
import {
  BUSYBOX,
  busyboxRootfs,
  describe,
  GCR,
  missingRoot,
  named,
  needs,
  REPO,
  ROOTFS_DIR,
  run,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch } from "../helpers.ts";

const skip = missingRoot() ?? needs("unshare", "nft", "ip", "curl", "python3");

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

/** What must be gone once the script's containers have ended, printed by the script itself. */
const LEFTOVERS = `
echo "leftover-links: $(ip -o link show | grep -c -E 'gcr0|veth')"
echo "leftover-tables: $(( $(nft list tables | grep -c gcr) + $(iptables -t nat -S | grep -c GCR-) ))"
`;

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
        "leftover-links: 0\nleftover-tables: 0\n",
        "bridge, veths and NAT tables are gone",
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
        assertIncludes(result.stdout, "leftover-links: 0\nleftover-tables: 0\n", "nothing left", describe(result));
      }),
  );

  Deno.test(
    named(`--net bridge (${nat}): outbound traffic leaves with the namespace's address (NAT)`, skip),
    () =>
      withState(async (state) => {
        // "Outside": a second namespace behind t1, with a server that answers
        // with the address it sees the client come from.
        const server = [
          "import socket",
          "s = socket.socket(); s.bind(('192.0.2.20', 9000)); s.listen()",
          "c, a = s.accept(); c.sendall(a[0].encode()); c.close()",
        ].join("\n");
        const result = await inOwnNetns(
          `
  unshare --net sleep 60 & holder=$!
  sleep 0.2
  ip link set t1 netns $holder
  nsenter -t $holder -n sh -c 'ip link set lo up; ip addr add 192.0.2.20/24 dev t1; ip link set t1 up'
  nsenter -t $holder -n python3 -c "${server}" & serve=$!
  sleep 0.5
  echo "seen-as: $($GCR run -q --net bridge $R busybox nc 192.0.2.20 9000)"
  kill $holder $serve 2>/dev/null; wait 2>/dev/null
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
        assertIncludes(result.stdout, "leftover-links: 0\nleftover-tables: 0\n", "nothing left", describe(result));
      }),
  );

  Deno.test(
    named(`--net bridge (${nat}): a gcr killed with SIGKILL leaves NAT rules that gcr rm removes`, skip),
    () =>
      withState(async (state) => {
        const result = await inOwnNetns(
          `
  a=$($GCR run -d -q --net bridge -p 8080:80 $R busybox httpd -f -p 80)
  monitor=$(sed -n 's/^  "pid": \\([0-9]*\\),$/\\1/p' "$GCR_STATE/run/$a/container.json")
  kill -9 $monitor; sleep 0.5
  echo "tables-after-kill: $(( $(nft list tables | grep -c gcr) + $(iptables -t nat -S | grep -c -- '-N GCR-') ))"
  $GCR rm $a >/dev/null
  echo "tables-after-rm: $(( $(nft list tables | grep -c gcr) + $(iptables -t nat -S | grep -c -- '-N GCR-') ))"
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
        assertIncludes(result.stdout, "tables-after-rm: 0\n", "gcr rm undid it", describe(result));
      }),
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
