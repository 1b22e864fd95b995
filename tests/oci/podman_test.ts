/**
 * podman, a real engine, driving gcr as its OCI runtime (`--runtime ./gcr`),
 * side by side with runc, the anchor: the same podman commands must give the
 * same results with both. Also: the podman fixture (tests/oci/podman_env.ts)
 * leaves nothing behind on the host.
 */
import { describe, GCR, isDead, liveProcessesWith, named, parseMountinfo, quote, which } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch } from "../helpers.ts";
import { exists } from "../../host/files.ts";
import { hostContainerState, type PodmanEnv, podmanEnv, podmanUnavailable } from "./podman_env.ts";
import {
  checkDetachedLifecycle,
  checkRunRm,
  checkRunTty,
  podmanUnderEach,
  startLeftRunning,
  withPodman,
} from "./podman_cases.ts";

const skip = podmanUnavailable() ?? (which("runc") ? undefined : "runc is not installed");

/** runc (the anchor the fixture is proven with) and gcr. */
const RUNTIMES = [["runc", () => which("runc")!], ["gcr", () => GCR]] as const;

const withEnv = (runtime: string, fn: (env: PodmanEnv) => Promise<void>) => withPodman({ runtime }, fn);

for (const [name, path] of RUNTIMES) {
  Deno.test(
    named(`podman run --rm with ${name} prints the command's output and passes its exit status`, skip),
    () => withEnv(path(), checkRunRm),
  );
  Deno.test(
    named(`podman run -d, exec, stop and rm with ${name}`, skip),
    () => withEnv(path(), checkDetachedLifecycle),
  );
  Deno.test(named(`podman run -it under a pseudo-terminal with ${name}`, skip), () => withEnv(path(), checkRunTty));
}

Deno.test(named("podman environment cleanup leaves no containers, processes, mounts or host state", skip), async () => {
  const before = await hostContainerState();
  const env = await podmanEnv({ runtime: which("runc")! });
  const dir = env.dir;
  let pid = 0;
  try {
    // Left running on purpose: cleanup has to stop it.
    pid = await startLeftRunning(env);
    const stopped = await env.podman(["create", env.image, "true"]);
    assertEquals(stopped.code, 0, "podman create", describe(stopped));
    assert(liveProcessesWith(dir).length > 0, "conmon runs, naming the environment's folder");
  } finally {
    await env.cleanup();
  }
  assertEquals(liveProcessesWith(dir), [], "no process mentions the environment's folder");
  assert(isDead(pid), `the container's process ${pid} is gone`);
  const mounts = parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo")).filter((m) =>
    m.mountPoint.startsWith(dir)
  );
  assertEquals(mounts.map((m) => m.mountPoint), [], "no mounts left under the environment's folder");
  assert(!exists(dir), `${dir} is removed`);
  assertEquals(await hostContainerState(), before, "podman left the host's container state alone");
  await env.cleanup(); // idempotent
});

/** What a container sees of its own confinement: it must be the same under gcr as under runc. */
const PROBE = [
  "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status",
  "echo nofile $(ulimit -n) nproc $(ulimit -u)",
  "ls /dev | sort | tr '\\n' ' '; echo",
  "cat /sys/fs/cgroup/pids/pids.max",
  "cat /proc/sys/net/ipv4/ping_group_range",
  "echo > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-writable || echo proc-sys-read-only",
  "head -c 1 /dev/null; cat /proc/kcore 2>&1 | head -c 0; wc -c < /proc/kcore",
  "mount | grep -c ' /sys/fs/cgroup/'",
  "id; pwd; echo $HOSTNAME $container",
].join("; ");

Deno.test(
  named("under podman, a gcr container is confined as a runc one is (caps, seccomp, limits, /dev, /proc)", skip),
  async () => {
    const results = await podmanUnderEach(
      RUNTIMES,
      (runtime) => ({ runtime }),
      (env) => ["run", "--rm", "--hostname", "probe", env.image, "sh", "-c", PROBE],
    );
    for (const [name, result] of Object.entries(results)) {
      assertEquals(result.code, 0, `the probe under ${name}`, describe(result));
    }
    const seen = { gcr: results.gcr!.stdout, runc: results.runc!.stdout };
    assertMatch(seen.gcr, /Seccomp:\s+2/, "gcr installed podman's seccomp filter");
    assertMatch(seen.gcr, /nofile 1024 nproc 1024/, "podman's rlimits");
    assertEquals(seen.gcr, seen.runc, "the same confinement under gcr as under runc");
  },
);

Deno.test(
  named("podman with gcr: cgroupsPath and pids limit, pause/unpause, kill, a missing command is 127", skip),
  async () => {
    await withEnv(GCR, async (env) => {
      const started = await env.podman(["run", "-d", "--name", "c", "--pids-limit", "77", env.image, "sleep", "100"]);
      assertEquals(started.code, 0, "podman run -d", describe(started));
      const id = started.stdout.trim();
      const inspect = await env.podman(["inspect", "--format", "{{.State.Pid}}", "c"]);
      const pid = Number(inspect.stdout.trim());
      const cgroups = Deno.readTextFileSync(`/proc/${pid}/cgroup`);
      assertIncludes(cgroups, `:pids:/libpod_parent/libpod-${id}`, "the container is in its cgroupsPath", cgroups);
      assertEquals(
        Deno.readTextFileSync(`/sys/fs/cgroup/pids/libpod_parent/libpod-${id}/pids.max`).trim(),
        "77",
        "--pids-limit reached the pids controller",
      );
      const paused = await env.podman(["pause", "c"]);
      assertEquals(paused.code, 0, "podman pause", describe(paused));
      const state = await env.podman(["inspect", "--format", "{{.State.Status}}", "c"]);
      assertEquals(state.stdout.trim(), "paused", "inspect after pause", describe(state));
      assertEquals(
        Deno.readTextFileSync(`/sys/fs/cgroup/freezer/libpod_parent/libpod-${id}/freezer.state`).trim(),
        "FROZEN",
        "the freezer holds it",
      );
      const unpaused = await env.podman(["unpause", "c"]);
      assertEquals(unpaused.code, 0, "podman unpause", describe(unpaused));
      const killed = await env.podman(["kill", "c"]);
      assertEquals(killed.code, 0, "podman kill", describe(killed));
      const exited = await env.podman(["wait", "c"]);
      assertEquals(exited.stdout.trim(), "137", "podman wait after kill: SIGKILL", describe(exited));
      const removed = await env.podman(["rm", "c"]);
      assertEquals(removed.code, 0, "podman rm", describe(removed));
      assert(isDead(pid), "the container's process is gone");
      const missing = await env.podman(["run", "--rm", env.image, "/nonexistent"]);
      assertEquals(missing.code, 127, "a command that does not exist", describe(missing));
    });
  },
);

Deno.test(named("podman --read-only, --privileged and --device: the same under gcr as under runc", skip), async () => {
  const probes: [string, string[], string][] = [
    // tmpcopyup tmpfs mounts over the image's empty /tmp (and /run, /var/tmp it lacks)
    [
      "--read-only",
      ["--read-only"],
      "touch /x 2>&1; touch /tmp/y && echo tmp-ok; mount | grep -E ' /(tmp|run|var/tmp) ' | cut -d' ' -f3,5 | sort",
    ],
    // every host device, all capabilities, no filter
    ["--privileged", ["--privileged"], "grep -E '^(CapEff|Seccomp):' /proc/self/status; ls -R /dev | wc -l"],
    ["--device", ["--device", "/dev/fuse"], "ls -l /dev/fuse | cut -d' ' -f1,2,3,4,5,6"],
  ];
  const seen: Record<string, string[]> = {};
  for (const [name, path] of RUNTIMES) {
    await withEnv(path(), async (env) => {
      seen[name] = [];
      for (const [label, options, script] of probes) {
        const result = await env.podman(["run", "--rm", ...options, env.image, "sh", "-c", script]);
        assertEquals(result.code, 0, `${label} under ${name}`, describe(result));
        seen[name]!.push(`${label}: ${result.stdout}`);
      }
    });
  }
  assertIncludes(seen.gcr![0]!, "Read-only file system\ntmp-ok\n", "--read-only: / refuses writes, /tmp takes them");
  assertEquals(seen.gcr, seen.runc, "the same results under gcr as under runc");
});

Deno.test(
  named(
    "podman with gcr --trace-dir (a wrapper as --runtime): every verb podman asks of gcr is in the trace file",
    skip,
  ),
  async () => {
    await withEnv(GCR, async (env) => {
      const traces = `${env.dir}/traces`;
      // Not `--runtime-flag`: podman's cleanup process (conmon's exit command,
      // `podman container cleanup`) is started without it, and it is often the
      // one that runs delete; a wrapper is the runtime every podman process uses.
      const wrapper = `${env.dir}/gcr-traced`;
      Deno.writeTextFileSync(wrapper, `#!/bin/sh\nexec ${quote(GCR)} --trace-dir ${quote(traces)} "$@"\n`, {
        mode: 0o755,
      });
      const traced = { runtime: wrapper };
      const started = await env.podman([
        "run",
        "-d",
        env.image,
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 100 & wait",
      ], traced);
      assertEquals(started.code, 0, "podman run -d", describe(started));
      const id = started.stdout.trim();
      const exec = await env.podman(["exec", id, "sh", "-c", "exit 5"], traced);
      assertEquals(exec.code, 5, "podman exec through the traced gcr", describe(exec));
      const stopped = await env.podman(["stop", id], traced);
      assertEquals(stopped.code, 0, "podman stop", describe(stopped));
      const removed = await env.podman(["rm", id], traced);
      assertEquals(removed.code, 0, "podman rm", describe(removed));
      const text = Deno.readTextFileSync(`${traces}/${id}.trace`);
      const verbs = [...text.matchAll(/^── \S+ pid \d+: gcr (.*)$/gm)].map((m) =>
        m[1]!.match(/(?:^| )(create|start|exec|kill|delete|state)(?= |$)/)?.[1] ?? m[1]!
      );
      for (const verb of ["create", "start", "exec", "kill", "delete"]) {
        assert(verbs.includes(verb), `podman's ${verb} is in the trace (seen: ${verbs.join(" ")})`, text);
      }
      assertMatch(text, /^\[1\/\d+\] clone: config.json's new namespaces/m, "create's steps", text);
      assertMatch(text, /execveat\(.*"sh", "-c", "exit 5"/, "the exec'd process", text);
      assertMatch(text, /^ {4}kill\(\d+, 15\) = 0$/m, "stop's SIGTERM", text);
    });
  },
);
