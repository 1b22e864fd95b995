/**
 * Kubernetes' CRI driving gcr: containerd's CRI plugin with a runtime
 * handler for gcr (the runc shim, `BinaryName` ./gcr), asked over the CRI
 * gRPC API what kubelet asks of it for a pod, side by side with a handler
 * for runc, the anchor. Pods use the node's network (the test's network
 * namespace), so no CNI plugin is needed, and share one pid namespace
 * (`shareProcessNamespace: true`), where a container's orphans outlive its
 * first process unless the runtime ends them (`kill --all`).
 */
import { join } from "node:path";
import { liveProcessesWith, named, text } from "../fixtures.ts";
import { readTextOr } from "../../host/files.ts";
import { assert, assertEquals, assertIncludes, assertNotIncludes, lines, waitFor } from "../helpers.ts";
import {
  assertNothingLeft,
  BUSYBOX_IMAGE,
  type ContainerdEnv,
  containerdEnv,
  containerdUnavailable,
  CRI_NAMESPACE,
  PAUSE_IMAGE,
  RUNTIME_NAMES,
  TRACED,
} from "./containerd_env.ts";
import { type ContainerConfig, CriClient, type PodSandboxConfig } from "./cri_client.ts";

const skip = containerdUnavailable();

/** How long StopPodSandbox may take: kubelet's own deadline is minutes, but a runtime that answers does it in a second. */
const STOP_DEADLINE_MS = 15_000;

async function withCri(fn: (env: ContainerdEnv, client: CriClient) => Promise<void>): Promise<void> {
  const env = await containerdEnv();
  const client = new CriClient(env.socket, 30_000);
  try {
    await env.importImages(CRI_NAMESPACE);
    await fn(env, client);
  } finally {
    client.close();
    await env.cleanup();
  }
}

/** The lines of a CRI container log (`<RFC 3339 time> <stream> <F|P> <text>`), as `stream text`. */
function logLines(path: string): string[] {
  return lines(Deno.readTextFileSync(path)).map((line) => {
    const match = line.match(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) F (.*)$/);
    assert(match, `a CRI log line: ${JSON.stringify(line)}`, Deno.readTextFileSync(path));
    return `${match[2]} ${match[3]}`;
  });
}

for (const handler of RUNTIME_NAMES) {
  Deno.test(
    named(
      `CRI with the ${handler} handler: a pod of two containers, an exit status, exec, logs, stop and remove`,
      skip,
    ),
    async () => {
      await withCri(async (env, client) => {
        const context = () => env.log();
        for (const image of [BUSYBOX_IMAGE, PAUSE_IMAGE]) {
          assert(await client.imageStatus(image), `the CRI sees the imported image ${image}`, context());
        }
        const logDirectory = join(env.dir, "pods", handler);
        Deno.mkdirSync(logDirectory, { recursive: true });
        const sandbox: PodSandboxConfig = {
          metadata: { name: "pod", uid: `uid-${handler}`, namespace: "gcr-test" },
          log_directory: logDirectory,
          linux: {
            cgroup_parent: env.cgroupParent,
            security_context: { namespace_options: { network: "NODE", pid: "POD" } },
          },
        };
        const pod = await client.runPodSandbox(sandbox, handler);
        assertEquals(
          (await client.listPodSandbox()).map((p) => `${p.id} ${p.state}`),
          [`${pod} SANDBOX_READY`],
          "ListPodSandbox after RunPodSandbox",
        );

        const container = async (name: string, script: string) => {
          const config: ContainerConfig = {
            metadata: { name },
            image: { image: BUSYBOX_IMAGE },
            command: ["sh", "-c", script],
            log_path: `${name}.log`,
          };
          const id = await client.createContainer(pod, config, sandbox);
          await client.startContainer(id);
          return id;
        };
        // Ends with 0 on SIGTERM (pid 1 of nothing here: the pod's pause is).
        const long = await container("long", "echo started; trap 'exit 0' TERM; sleep 1000 & wait");
        // Exits 3, leaving an orphan in the pod's pid namespace.
        const three = await container("three", "echo bye; echo oops >&2; sleep 1003 & exit 3");

        const exited = await waitFor("the container that exits 3 to be reported exited", async () => {
          const status = await client.containerStatus(three);
          return status.state === "CONTAINER_EXITED" ? status : undefined;
        }, 10_000);
        // containerd reports the exit once the shim has the container's output to its end. An
        // orphan holds its stdout until the shim's `kill --all ID 9`, sent on the exit, ends it;
        // when that fails, the shim logs it, waits 2 s for the output and reports the exit with
        // the orphan still alive.
        assertNotIncludes(env.logText(), "failed to kill init's children", "the shim's kill --all", context());
        assertEquals(liveProcessesWith("sleep 1003"), [], "the orphan was killed before the exit was reported");
        assertEquals([exited.exit_code, exited.reason], [3, "Error"], "ContainerStatus: the exit status", context());
        // containerd stamps started_at once StartContainer returns, after a quick exit's finished_at.
        assert(
          exited.started_at > exited.created_at && exited.finished_at > exited.created_at,
          "ContainerStatus: its times",
          JSON.stringify(exited),
        );
        assertEquals((await client.containerStatus(long)).state, "CONTAINER_RUNNING", "the other runs on");

        const exec = await client.execSync(long, ["sh", "-c", "echo out; echo err >&2"]);
        assertEquals(
          [exec.exit_code, text(exec.stdout), text(exec.stderr)],
          [0, "out\n", "err\n"],
          "ExecSync: output and status",
          context(),
        );
        const four = await client.execSync(long, ["sh", "-c", "exit 4"]);
        assertEquals(four.exit_code, 4, "ExecSync: a non-zero exit status", context());
        const cgroup = text((await client.execSync(long, ["cat", "/proc/self/cgroup"])).stdout);
        assertIncludes(
          cgroup,
          `:pids:${env.cgroupParent}/${long}\n`,
          "ExecSync runs in the container's cgroup",
          cgroup,
        );
        // The orphan is a zombie now: the pause never reaps.
        const listed = text((await client.execSync(long, ["ps", "-o", "stat,args"])).stdout);
        const alive = lines(listed).slice(1).filter((line) => !/^Z/.test(line)).map((line) => line.slice(5).trim());
        assertEquals(
          alive.filter((args) => !args.startsWith("ps ")),
          ["sleep 2147483647", "sh -c echo started; trap 'exit 0' TERM; sleep 1000 & wait", "sleep 1000"],
          "the pod's live processes: the pause and the running container's",
        );

        assertEquals(logLines(join(logDirectory, "long.log")), ["stdout started"], "the running container's log");
        assertEquals(
          logLines(join(logDirectory, "three.log")).sort(),
          ["stderr oops", "stdout bye"],
          "the exited container's log: both streams",
        );

        await client.stopPodSandbox(pod, STOP_DEADLINE_MS);
        assertEquals(
          (await client.containerStatus(long)).state,
          "CONTAINER_EXITED",
          "StopPodSandbox ended the containers",
        );
        assertEquals(
          (await client.listPodSandbox()).map((p) => p.state),
          ["SANDBOX_NOTREADY"],
          "ListPodSandbox after StopPodSandbox",
        );
        await client.removePodSandbox(pod);
        assertEquals(await client.listPodSandbox(), [], "no pod after RemovePodSandbox");
        assertEquals(await client.listContainers(), [], "no container after RemovePodSandbox");

        // Shims end a moment after their last task is deleted.
        await waitFor("the shims to end", () => env.leftovers().processes.length ? undefined : true, 5000).catch(
          () => {},
        );
        assertNothingLeft(env.leftovers(), `CRI with ${handler}`, context());
        assertNotIncludes(context(), "failed to kill init's children", "the shim's kill --all succeeded", context());
      });
    },
  );
}

for (const handler of RUNTIME_NAMES) {
  Deno.test(
    named(
      `CRI with the ${handler} handler: StopContainer by SIGTERM and by SIGKILL after its timeout, RemoveContainer`,
      skip,
    ),
    async () => {
      await withCri(async (env, client) => {
        const context = () => env.log();
        // kubelet's usual pod: the node's network, a pid namespace per container.
        const sandbox: PodSandboxConfig = {
          metadata: { name: "pod", uid: `uid-stop-${handler}`, namespace: "gcr-test" },
          log_directory: join(env.dir, "pods", `stop-${handler}`),
          linux: {
            cgroup_parent: env.cgroupParent,
            security_context: { namespace_options: { network: "NODE", pid: "CONTAINER" } },
          },
        };
        Deno.mkdirSync(sandbox.log_directory!, { recursive: true });
        const pod = await client.runPodSandbox(sandbox, handler);
        const start = async (name: string, command: string[]) => {
          const id = await client.createContainer(
            pod,
            { metadata: { name }, image: { image: BUSYBOX_IMAGE }, command, log_path: `${name}.log` },
            sandbox,
          );
          await client.startContainer(id);
          return id;
        };
        const polite = await start("polite", ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]);
        // SIGTERM said in its log and otherwise ignored: each wait it ends starts another.
        const stubbornLog = join(sandbox.log_directory!, "stubborn.log");
        const stubborn = await start("stubborn", [
          "sh",
          "-c",
          "trap 'echo got TERM' TERM; echo waiting; while :; do sleep 1000 & wait; done",
        ]);
        await waitFor("both to run", async () => {
          const states = await Promise.all([polite, stubborn].map((id) => client.containerStatus(id)));
          return states.every((s) => s.state === "CONTAINER_RUNNING") || undefined;
        }, 10_000);

        await waitFor(
          "the stubborn one's trap to be set",
          () => readTextOr(stubbornLog).includes("waiting") || undefined,
          10_000,
        );
        await client.stopContainer(polite, 10);
        const stopped = await client.containerStatus(polite);
        assertEquals(
          [stopped.state, stopped.exit_code],
          ["CONTAINER_EXITED", 0],
          "SIGTERM ended it: its trap's status",
        );

        await client.stopContainer(stubborn, 1);
        const killed = await client.containerStatus(stubborn);
        assertEquals(
          [killed.state, killed.exit_code],
          ["CONTAINER_EXITED", 137],
          "SIGKILL after the timeout",
          context(),
        );
        assertEquals(logLines(stubbornLog), ["stdout waiting", "stdout got TERM"], "SIGTERM came first", context());

        // Again, of stopped containers: kubelet does, and it must be no error.
        await client.stopContainer(polite, 1);
        await client.stopContainer(stubborn, 1);
        for (const id of [polite, stubborn]) await client.removeContainer(id);
        assertEquals(await client.listContainers(), [], "no container after RemoveContainer");
        await client.stopPodSandbox(pod, STOP_DEADLINE_MS);
        await client.removePodSandbox(pod);
        await waitFor("the shims to end", () => env.leftovers().processes.length ? undefined : true, 5000).catch(
          () => {},
        );
        assertNothingLeft(env.leftovers(), `CRI StopContainer with ${handler}`, context());
      });
    },
  );
}

Deno.test(
  named(
    "CRI UpdateContainerResources: the same memory and CPU limits in the cgroup and inside with runc and gcr",
    skip,
  ),
  async () => {
    await withCri(async (env, client) => {
      const context = () => env.log();
      const files = ["memory/memory.limit_in_bytes", "cpu/cpu.shares", "cpu/cpu.cfs_quota_us"];
      const seen: Record<string, { host: string[]; inside: string }> = {};
      for (const handler of RUNTIME_NAMES) {
        const sandbox: PodSandboxConfig = {
          metadata: { name: "pod", uid: `uid-update-${handler}`, namespace: "gcr-test" },
          log_directory: join(env.dir, "pods", `update-${handler}`),
          linux: { cgroup_parent: env.cgroupParent, security_context: { namespace_options: { network: "NODE" } } },
        };
        Deno.mkdirSync(sandbox.log_directory!, { recursive: true });
        const pod = await client.runPodSandbox(sandbox, handler);
        const resources = { cpu_period: 100000, cpu_quota: 100000, cpu_shares: 1024, memory_limit_in_bytes: 64 << 20 };
        const id = await client.createContainer(pod, {
          metadata: { name: "app" },
          image: { image: BUSYBOX_IMAGE },
          command: ["sleep", "1000"],
          linux: { resources },
        }, sandbox);
        await client.startContainer(id);
        // What kubelet sends when a pod's resources change in place.
        await client.updateContainerResources(id, {
          ...resources,
          cpu_quota: 50000,
          cpu_shares: 512,
          memory_limit_in_bytes: 128 << 20,
        });
        const host = files.map((file) => {
          const [hierarchy, base] = file.split("/");
          return `${file}: ${readTextOr(join("/sys/fs/cgroup", hierarchy!, env.cgroupParent, id, base!)).trim()}`;
        });
        const inside = await client.execSync(id, ["cat", ...files.map((f) => `/sys/fs/cgroup/${f}`)]);
        assertEquals(inside.exit_code, 0, `the limits read inside under ${handler}`, context());
        seen[handler] = { host, inside: text(inside.stdout) };
        await client.stopPodSandbox(pod, STOP_DEADLINE_MS);
        await client.removePodSandbox(pod);
      }
      assertEquals(seen.runc, {
        host: [`memory/memory.limit_in_bytes: ${128 << 20}`, "cpu/cpu.shares: 512", "cpu/cpu.cfs_quota_us: 50000"],
        inside: `${128 << 20}\n512\n50000\n`,
      }, "runc's container after UpdateContainerResources");
      assertEquals(seen.gcr, seen.runc, "gcr's container as runc's", context());
      await waitFor("the shims to end", () => env.leftovers().processes.length ? undefined : true, 5000).catch(
        () => {},
      );
      assertNothingLeft(env.leftovers(), "CRI UpdateContainerResources", context());
    });
  },
);

Deno.test(
  named(
    "CRI with gcr --trace-dir (a wrapper as BinaryName): each container's trace file holds what the CRI asked",
    skip,
  ),
  async () => {
    await withCri(async (env, client) => {
      const context = () => env.log();
      const sandbox: PodSandboxConfig = {
        metadata: { name: "traced", uid: "uid-traced", namespace: "gcr-test" },
        log_directory: join(env.dir, "pods", TRACED),
        linux: { cgroup_parent: env.cgroupParent, security_context: { namespace_options: { network: "NODE" } } },
      };
      Deno.mkdirSync(sandbox.log_directory!, { recursive: true });
      const pod = await client.runPodSandbox(sandbox, TRACED);
      const config: ContainerConfig = {
        metadata: { name: "app" },
        image: { image: BUSYBOX_IMAGE },
        command: ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
        log_path: "app.log",
      };
      const app = await client.createContainer(pod, config, sandbox);
      await client.startContainer(app);
      const exec = await client.execSync(app, ["sh", "-c", "exit 6"]);
      assertEquals(exec.exit_code, 6, "ExecSync through the traced gcr", context());
      await client.stopPodSandbox(pod, STOP_DEADLINE_MS);
      await client.removePodSandbox(pod);

      const verbsOf = (id: string) => {
        const file = join(env.traces, `${id}.trace`);
        const text = Deno.readTextFileSync(file);
        const verbs = [...text.matchAll(/^── \S+ pid \d+: gcr (.*)$/gm)].map((m) =>
          m[1]!.match(/(?:^| )(create|start|state|exec|kill|delete)(?= |$)/)?.[1] ?? m[1]!
        );
        return { text, verbs };
      };
      const traced = Deno.readDirSync(env.traces).toArray().map((e) => e.name).sort();
      assertEquals(traced, [`${app}.trace`, `${pod}.trace`].sort(), "one file per container: the sandbox's and app's");
      const { text, verbs } = verbsOf(app);
      for (const verb of ["create", "start", "exec", "kill", "delete"]) {
        assert(verbs.includes(verb), `the CRI's ${verb} of app is in its trace (seen: ${verbs.join(" ")})`, text);
      }
      assertIncludes(text, "clone: config.json's new namespaces", "create's steps", text);
      assertIncludes(text, '"sh", "-c", "exit 6"', "ExecSync's process", text);
      assertIncludes(verbsOf(pod).text, '"sleep", "2147483647"', "the sandbox's pause, exec'd", verbsOf(pod).text);
    });
  },
);
