/**
 * Cgroups as an OCI runtime needs them, on the real v1 hierarchies of this
 * host (as root): a cgroup at `linux.cgroupsPath` in every hierarchy, made
 * even without limits; the devices allow-list, cpuset, swap, shares and
 * quota from `linux.resources`; the freezer for pause/resume, also through
 * a cgroup reopened by its paths as a later `gcr pause` would; and nothing
 * left behind. Plans are also checked on fake trees, for exact ops.
 *
 * Every process started here waits on its stdin until the test has moved
 * it into the cgroup.
 */
import {
  type ContainerCgroup,
  createContainerCgroup,
  freeze,
  freezerState,
  openContainerCgroup,
  thaw,
} from "../../cgroup/container_cgroup.ts";
import { type CgroupHost, CgroupUnavailableError, detectCgroups } from "../../cgroup/hierarchies.ts";
import { InvalidLimitError, type ResourceLimits, resourcesFromOci } from "../../cgroup/limits.ts";
import { showCgroupOp } from "../../cgroup/ops.ts";
import { planContainerCgroup } from "../../cgroup/plan.ts";
import { planCgroupUpdate } from "../../cgroup/update.ts";
import type { CgroupOptions } from "../../cgroup/version_plan.ts";
import { missingRoot, named, processState } from "../fixtures.ts";
import { setRuntimeLog } from "../../output/runtime_log.ts";
import {
  assert,
  assertEquals,
  assertIncludes,
  assertMatch,
  assertRejects,
  assertThrows,
  startInCgroup,
  waitFor,
} from "../helpers.ts";
import { exists } from "../../host/files.ts";
import { sleep } from "../../host/time.ts";

/** The hierarchies an OCI container joins (all that gcr knows how to use). */
const OCI_CONTROLLERS = ["memory", "cpu", "cpuacct", "pids", "cpuset", "devices", "freezer"];

/** Why the real v1 tests cannot run here, or undefined. */
function cannotUseV1(...controllers: string[]): string | undefined {
  const root = missingRoot();
  if (root) return root;
  const host = detectCgroups();
  if (host.version === 2) return "this host has no cgroup v1 hierarchies";
  const missing = controllers.filter((c) => !host.hierarchies.some((h) => h.controllers.includes(c)));
  return missing.length ? `no v1 hierarchy for ${missing.join(", ")}` : undefined;
}

const testRoot = () => `gcr-oci-test-${crypto.randomUUID().slice(0, 8)}`;

/**
 * Removes whatever a failed test left of `top` (a folder name at the root
 * of every v1 hierarchy, or below the caller's cgroup), deepest first,
 * killing what is in it: the tests leave no cgroup behind, even failing.
 */
async function sweep(top: string): Promise<void> {
  const host = detectCgroups();
  if (host.version === 2) return;
  for (const h of host.hierarchies) {
    for (const base of new Set([h.mount, h.dir])) {
      const start = `${base}/${top}`;
      if (!exists(start)) continue;
      const folders: string[] = [];
      const walk = (dir: string) => {
        folders.push(dir);
        for (const entry of Deno.readDirSync(dir)) if (entry.isDirectory) walk(`${dir}/${entry.name}`);
      };
      walk(start);
      for (const dir of folders.sort((a, b) => b.length - a.length)) {
        try {
          Deno.writeTextFileSync(`${dir}/freezer.state`, "THAWED");
        } catch { /* not the freezer hierarchy */ }
        for (const pid of Deno.readTextFileSync(`${dir}/cgroup.procs`).split("\n").filter(Boolean)) {
          try {
            Deno.kill(Number(pid), "SIGKILL");
          } catch { /* gone */ }
        }
        await waitFor(`${dir} to be removable`, () => {
          try {
            Deno.removeSync(dir);
            return true;
          } catch {
            return undefined;
          }
        });
      }
    }
  }
}

/** A shell that runs `script` once `go()` is called; moved into `cgroup` first. */
function startScriptInCgroup(cgroup: ContainerCgroup, script: string) {
  return startInCgroup(cgroup, "sh", ["-c", `read go; ${script}`]);
}

/** The cgroup of `pid` in the hierarchy that has `controller`, from /proc/<pid>/cgroup. */
function cgroupOf(pid: number, controller: string): string | undefined {
  const line = Deno.readTextFileSync(`/proc/${pid}/cgroup`).split("\n")
    .find((l) => (l.split(":")[1] ?? "").split(",").includes(controller));
  return line?.split(":").slice(2).join(":");
}

// ---------------------------------------------------------------------------
// linux.resources

Deno.test("resourcesFromOci: kernel memory limits are accepted with a warning in --log, as runc does", () => {
  const log = Deno.makeTempFileSync({ prefix: "gcr-log-" });
  try {
    setRuntimeLog(log, "json");
    const limits = resourcesFromOci({ memory: { limit: 67108864, kernel: 1048576, kernelTCP: -1 } });
    assertEquals(limits, { memoryBytes: 67108864 }, "the other limits as asked");
    const lines = Deno.readTextFileSync(log).trim().split("\n").map((line) => JSON.parse(line));
    assertEquals(lines.length, 1, "one warning: -1 (unlimited) asks for nothing");
    assertEquals(lines[0].level, "warning");
    assertEquals(
      lines[0].msg,
      "linux.resources.memory.kernel: 1048576 ignored: this kernel has no kernel memory limits (gone since Linux 5.16)",
    );
  } finally {
    setRuntimeLog(undefined, "text");
    Deno.removeSync(log);
  }
});

Deno.test("resourcesFromOci: what podman sends becomes limits; 0 is unset, -1 unlimited", () => {
  const limits = resourcesFromOci({
    devices: [
      { allow: false, access: "rwm" },
      { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
      { allow: true, type: "c", major: 136, access: "rwm" },
      { allow: true, type: "b", major: -1, minor: -1, access: "m" },
    ],
    memory: { limit: 67108864, swap: 134217728, reservation: 0, swappiness: 10, kernel: -1, disableOOMKiller: false },
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: "0", mems: "" },
    pids: { limit: 2048 },
    blockIO: {},
    unified: {},
  });
  assertEquals(
    limits,
    {
      memoryBytes: 67108864,
      memorySwapBytes: 134217728,
      memorySwappiness: 10,
      cpuShares: 512,
      cpuQuotaUs: 50000,
      cpuPeriodUs: 100000,
      cpusetCpus: "0",
      pidsLimit: 2048,
      devices: [
        { allow: false, type: "a", access: "rwm" },
        { allow: true, type: "c", major: 1, minor: 3, access: "rw" },
        { allow: true, type: "c", major: 136, access: "rwm" },
        { allow: true, type: "b", access: "m" },
      ],
    } satisfies ResourceLimits,
  );
  assertEquals(resourcesFromOci({ memory: { limit: -1, swap: -1 }, pids: { limit: -1 } }), { memorySwapBytes: -1 });
  assertEquals(resourcesFromOci(undefined), {});
  assertEquals(resourcesFromOci({ memory: { disableOOMKiller: true } }), { oomKillDisabled: true });

  const cases: [unknown, string][] = [
    [{ memory: { swap: 100 } }, "linux.resources.memory.swap: it needs memory.limit too"],
    [{ memory: { limit: 200, swap: 100 } }, "linux.resources.memory.swap: 100 is below memory.limit 200"],
    [{ memory: { limit: -5 } }, "linux.resources.memory.limit: -5"],
    [{ memory: { swappiness: 101 } }, "linux.resources.memory.swappiness: 101 (0-100)"],
    [{ memory: { disableOOMKiller: "yes" } }, "linux.resources.memory.disableOOMKiller: not true or false"],
    [{ cpu: { burst: 1000 } }, "linux.resources.cpu.burst: not supported"],
    [{ cpu: { realtimeRuntime: 950000 } }, "linux.resources.cpu.realtimeRuntime: not supported"],
    [{ cpu: { shares: 1 } }, "linux.resources.cpu.shares: 1 (2-262144)"],
    [{ cpu: { cpus: "0-" } }, 'linux.resources.cpu.cpus: "0-" is not a list'],
    [{ cpu: { quota: 1.5 } }, "linux.resources.cpu.quota: 1.5 is not an integer"],
    [{ blockIO: { weight: 10 } }, "linux.resources.blockIO: not supported"],
    [{ unified: { "io.max": "8:0 rbps=1" } }, "linux.resources.unified: not supported"],
    [{ devices: [{ access: "rwm" }] }, "linux.resources.devices[0].allow: missing"],
    [{ devices: [{ allow: true, type: "u" }] }, 'linux.resources.devices[0].type: "u" (a, c or b)'],
    [{ devices: [{ allow: true, access: "rwx" }] }, 'linux.resources.devices[0].access: "rwx"'],
    [{ devices: [{ allow: true, access: "rr" }] }, 'linux.resources.devices[0].access: "rr"'],
    [{ devices: {} }, "linux.resources.devices: not an array"],
  ];
  for (const [input, expected] of cases) {
    const { message } = assertThrows(
      () => resourcesFromOci(input),
      InvalidLimitError,
      `${JSON.stringify(input)}: an InvalidLimitError`,
    );
    assert(message.startsWith(expected), `${JSON.stringify(input)}\n  expected: ${expected}…\n    actual: ${message}`);
  }
});

// ---------------------------------------------------------------------------
// Plans on fake trees

/** A fake v1 host: one folder per hierarchy, the caller in `/user/me`, cpuset sets at the root. */
function fakeV1Host(root: string, options: { memsw?: boolean } = {}): CgroupHost {
  const names = ["memory", "cpu,cpuacct", "pids", "cpuset", "devices", "freezer"];
  for (const name of names) {
    Deno.mkdirSync(`${root}/${name}/user/me`, { recursive: true });
    if (name === "cpuset") {
      Deno.writeTextFileSync(`${root}/cpuset/cpuset.cpus`, "0-3\n");
      Deno.writeTextFileSync(`${root}/cpuset/cpuset.mems`, "0\n");
    }
  }
  if (options.memsw !== false) Deno.writeTextFileSync(`${root}/memory/memory.memsw.limit_in_bytes`, "-1\n");
  return {
    version: 1,
    hierarchies: names.map((name) => ({
      controllers: name.split(","),
      mount: `${root}/${name}`,
      dir: `${root}/${name}/user/me`,
    })),
  };
}

Deno.test("fake-tree: an absolute cgroupsPath in every hierarchy, parents made with cpusets copied, devices in order", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-cgroup-oci-" });
  try {
    const host = fakeV1Host(root);
    const plan = planContainerCgroup(
      "c1",
      {
        memoryBytes: 64 << 20,
        memorySwapBytes: 128 << 20,
        cpuShares: 512,
        cpuQuotaUs: 20000,
        cpuPeriodUs: 50000,
        cpusetCpus: "1",
        devices: [{ allow: false, type: "a", access: "rwm" }, {
          allow: true,
          type: "c",
          major: 1,
          minor: 3,
          access: "rw",
        }],
      },
      { host, uid: 0, path: "/libpod_parent/libpod-c1", controllers: ["freezer"] },
    );
    const shown = plan.ops.map(showCgroupOp).map((line) => line.replaceAll(root, ""));
    assertEquals(shown, [
      "mkdir /memory/libpod_parent (if missing)",
      "mkdir /memory/libpod_parent/libpod-c1",
      "write /memory/libpod_parent/libpod-c1/memory.limit_in_bytes: 67108864",
      "write /memory/libpod_parent/libpod-c1/memory.memsw.limit_in_bytes: 134217728",
      "mkdir /cpu,cpuacct/libpod_parent (if missing)",
      "mkdir /cpu,cpuacct/libpod_parent/libpod-c1",
      "write /cpu,cpuacct/libpod_parent/libpod-c1/cpu.shares: 512",
      "write /cpu,cpuacct/libpod_parent/libpod-c1/cpu.cfs_period_us: 50000",
      "write /cpu,cpuacct/libpod_parent/libpod-c1/cpu.cfs_quota_us: 20000",
      "mkdir /pids/libpod_parent (if missing)",
      "mkdir /pids/libpod_parent/libpod-c1",
      "mkdir /cpuset/libpod_parent (if missing)",
      "write /cpuset/libpod_parent/cpuset.cpus: 0-3",
      "write /cpuset/libpod_parent/cpuset.mems: 0",
      "mkdir /cpuset/libpod_parent/libpod-c1",
      "write /cpuset/libpod_parent/libpod-c1/cpuset.cpus: 1",
      "write /cpuset/libpod_parent/libpod-c1/cpuset.mems: 0",
      "mkdir /devices/libpod_parent (if missing)",
      "mkdir /devices/libpod_parent/libpod-c1",
      "write /devices/libpod_parent/libpod-c1/devices.deny: a *:* rwm",
      "write /devices/libpod_parent/libpod-c1/devices.allow: c 1:3 rw",
      "mkdir /freezer/libpod_parent (if missing)",
      "mkdir /freezer/libpod_parent/libpod-c1",
    ]);
    // A relative path is under the caller's cgroup; an existing parent is not made again.
    Deno.mkdirSync(`${root}/pids/user/me/pod`);
    const relative = planContainerCgroup("c2", {}, { host, uid: 0, path: "pod/c2", controllers: ["pids"] });
    assertEquals(relative.dirs.map((d) => d.replace(root, "")), [
      "/memory/user/me/pod/c2",
      "/cpu,cpuacct/user/me/pod/c2",
      "/pids/user/me/pod/c2",
    ]);
    assert(!relative.ops.some((op) => op.path === `${root}/pids/user/me/pod`), "the existing pod folder is kept");
    assertEquals(
      assertThrows(() => planContainerCgroup("c3", {}, { host, uid: 0, path: "/a/../../etc" })).message,
      'invalid cgroups path "/a/../../etc": it must name a cgroup and not contain ..',
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("fake-tree: swap beyond the limit needs swap accounting; v2 refuses device rules and swappiness", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-cgroup-oci-" });
  try {
    const host = fakeV1Host(root, { memsw: false });
    const noSwap = assertThrows(
      () => planContainerCgroup("c1", { memoryBytes: 64 << 20, memorySwapBytes: 128 << 20 }, { host, uid: 0 }),
      CgroupUnavailableError,
      "a CgroupUnavailableError",
    );
    assertMatch(noSwap.message, /this kernel does not account swap .*only -1 \(unlimited\) or the memory limit/);
    // Swap equal to the limit (no swap) and -1 need no accounting: written if the kernel offers them.
    for (const swap of [64 << 20, -1]) {
      const plan = planContainerCgroup("c1", { memoryBytes: 64 << 20, memorySwapBytes: swap }, { host, uid: 0 });
      const memsw = plan.ops.find((op) => op.path.endsWith("memory.memsw.limit_in_bytes"));
      assertEquals(memsw && showCgroupOp(memsw).replace(/^.*: /, ""), `${swap} (if the kernel offers it)`);
    }
    assertEquals(
      assertThrows(() => planContainerCgroup("c1", { cpus: 0.5, cpuQuotaUs: 1000 }, { host, uid: 0 })).message,
      "cpus and a CPU quota or period were both given: one way to say the CPU limit, please",
    );

    Deno.mkdirSync(`${root}/v2/me`, { recursive: true });
    Deno.writeTextFileSync(`${root}/v2/cgroup.controllers`, "cpu memory pids cpuset\n");
    Deno.writeTextFileSync(`${root}/v2/cgroup.subtree_control`, "\n");
    const v2: CgroupOptions = { host: { version: 2, mount: `${root}/v2`, dir: `${root}/v2/me` }, uid: 0 };
    const devices = assertThrows(
      () => planContainerCgroup("c1", { devices: [{ allow: false, type: "a", access: "rwm" }] }, v2),
      CgroupUnavailableError,
      "a CgroupUnavailableError",
    );
    assertEquals(devices.message, "device rules need cgroup v1 here; v2 needs an eBPF program gcr does not build");
    assertMatch(assertThrows(() => planContainerCgroup("c1", { memorySwappiness: 0 }, v2)).message, /v1 setting/);
    // An empty rule list is fine; swap is v2's swap alone; shares become a weight; freezer needs no controller.
    const plan = planContainerCgroup(
      "c1",
      { devices: [], memoryBytes: 100, memorySwapBytes: 300, cpuShares: 1024, cpuQuotaUs: -1, cpusetCpus: "0" },
      { ...v2, path: "/pods/c1", controllers: ["freezer", "cpuacct"] },
    );
    assertEquals(plan.ops.map(showCgroupOp).map((line) => line.replaceAll(root, "")), [
      "write /v2/cgroup.subtree_control: +memory +cpu +cpuset",
      "mkdir /v2/pods (if missing)",
      "write /v2/pods/cgroup.subtree_control: +memory +cpu +cpuset",
      "mkdir /v2/pods/c1",
      "write /v2/pods/c1/memory.max: 100",
      "write /v2/pods/c1/memory.swap.max: 200",
      "write /v2/pods/c1/cpu.weight: 39",
      "write /v2/pods/c1/cpu.max: max 100000",
      "write /v2/pods/c1/cpuset.cpus: 0",
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

/** A container's existing v1 folders on a fake host, memory's files holding `limit` and `memsw`. */
function fakeV1Container(root: string, limit: string, memsw: string) {
  const host = fakeV1Host(root);
  const paths = host.version === 1 ? host.hierarchies.map((h) => `${h.dir}/gcr/c1`) : [];
  for (const dir of paths) Deno.mkdirSync(dir, { recursive: true });
  Deno.writeTextFileSync(`${root}/memory/user/me/gcr/c1/memory.limit_in_bytes`, `${limit}\n`);
  Deno.writeTextFileSync(`${root}/memory/user/me/gcr/c1/memory.memsw.limit_in_bytes`, `${memsw}\n`);
  const plan = (resources: unknown) =>
    planCgroupUpdate({ version: 1, paths }, resourcesFromOci(resources, "update"), host)
      .map(showCgroupOp).map((line) => line.replaceAll(`${root}/`, "").replace("/user/me/gcr/c1/", " "));
  return { plan };
}

const MiB = 1 << 20;
const UNLIMITED = "9223372036854771712";

Deno.test("fake-tree update, v1: memory+swap first when it rises above the limit, memory first when both fall", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-cgroup-update-" });
  try {
    const { plan } = fakeV1Container(root, String(64 * MiB), String(128 * MiB));
    assertEquals(plan({ memory: { limit: 256 * MiB, swap: 512 * MiB } }), [
      `write memory memory.memsw.limit_in_bytes: ${512 * MiB}`,
      `write memory memory.limit_in_bytes: ${256 * MiB}`,
    ], "up: the new memory limit would be above the old memsw");
    assertEquals(plan({ memory: { limit: 32 * MiB, swap: 48 * MiB } }), [
      `write memory memory.limit_in_bytes: ${32 * MiB}`,
      `write memory memory.memsw.limit_in_bytes: ${48 * MiB}`,
    ], "down: the new memsw would be below the old memory limit");
    assertEquals(plan({ memory: { limit: -1 } }), [
      "write memory memory.memsw.limit_in_bytes: -1 (if the kernel offers it)",
      "write memory memory.limit_in_bytes: -1",
    ], "-1 lifts both, as runc's update does");
    assertEquals(plan({ memory: { limit: 100 * MiB } }), [`write memory memory.limit_in_bytes: ${100 * MiB}`]);
    assertEquals(
      assertThrows(() => plan({ memory: { limit: 200 * MiB } })).message,
      `memory limit ${200 * MiB} is above the container's memory+swap limit ${128 * MiB}: ` +
        "give a memory+swap limit too (--memory-swap)",
    );
    assertEquals(
      assertThrows(() => plan({ memory: { swap: 32 * MiB } })).message,
      `memory+swap limit ${32 * MiB} is below the container's memory limit ${64 * MiB}`,
    );
    // What engines send for what they do not change asks for nothing; what
    // runc's update ignores is ignored; unknown properties too.
    assertEquals(
      plan({
        memory: { limit: 0, reservation: 0, swap: 0, kernel: 0, swappiness: 60, disableOOMKiller: false },
        cpu: { shares: 512, quota: 0, period: 0, cpus: "", mems: "" },
        blockIO: { weight: 0 },
        pids: { limit: -1 },
        devices: [{ allow: false, access: "rwm" }],
        hugepageLimits: [{ pageSize: "2MB", limit: 0 }],
        fromTheFuture: { x: 1 },
      }),
      ["write cpu,cpuacct cpu.shares: 512", "write pids pids.max: max"],
    );
    assertEquals(plan({ cpu: { cpus: "1", quota: 20000 }, pids: { limit: 50 } }), [
      "write cpu,cpuacct cpu.cfs_quota_us: 20000",
      "write pids pids.max: 50",
      "write cpuset cpuset.cpus: 1",
    ]);
    assertMatch(
      assertThrows(() => plan({ blockIO: { weight: 100 } }), InvalidLimitError).message,
      /^linux\.resources\.blockIO: not supported/,
    );
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("fake-tree update, v1: a container without swap keeps none; one without a memory limit keeps its swap", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-cgroup-update-" });
  try {
    // gcr made it with a memory limit and no swap: memsw equal to the limit.
    const noSwap = fakeV1Container(root, String(64 * MiB), String(64 * MiB));
    assertEquals(noSwap.plan({ memory: { limit: 128 * MiB } }), [
      `write memory memory.memsw.limit_in_bytes: ${128 * MiB} (if the kernel offers it)`,
      `write memory memory.limit_in_bytes: ${128 * MiB}`,
    ]);
    assertEquals(noSwap.plan({ memory: { limit: 32 * MiB } }), [
      `write memory memory.limit_in_bytes: ${32 * MiB}`,
      `write memory memory.memsw.limit_in_bytes: ${32 * MiB} (if the kernel offers it)`,
    ]);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
  const unlimited = Deno.makeTempDirSync({ prefix: "gcr-cgroup-update-" });
  try {
    const { plan } = fakeV1Container(unlimited, UNLIMITED, UNLIMITED);
    assertEquals(plan({ memory: { limit: 128 * MiB } }), [`write memory memory.limit_in_bytes: ${128 * MiB}`]);
  } finally {
    Deno.removeSync(unlimited, { recursive: true });
  }
});

Deno.test("fake-tree update, v2: swap alone from the folder's memory.max, cpu.max's other half kept", () => {
  const root = Deno.makeTempDirSync({ prefix: "gcr-cgroup-update-" });
  try {
    const dir = `${root}/v2/c1`;
    Deno.mkdirSync(dir, { recursive: true });
    Deno.writeTextFileSync(`${dir}/cgroup.controllers`, "cpu memory pids\n");
    Deno.writeTextFileSync(`${dir}/memory.max`, `${64 * MiB}\n`);
    Deno.writeTextFileSync(`${dir}/memory.current`, `${40 * MiB}\n`);
    Deno.writeTextFileSync(`${dir}/cpu.max`, "50000 100000\n");
    const host: CgroupHost = { version: 2, mount: `${root}/v2`, dir: `${root}/v2` };
    const plan = (resources: unknown) =>
      planCgroupUpdate({ version: 2, paths: [dir] }, resourcesFromOci(resources, "update"), host)
        .map(showCgroupOp).map((line) => line.replace(`${dir}/`, ""));
    assertEquals(plan({ memory: { swap: 96 * MiB }, cpu: { period: 200000 }, pids: { limit: -1 } }), [
      `write memory.swap.max: ${32 * MiB}`,
      "write cpu.max: 50000 200000",
      "write pids.max: max",
    ]);
    assertEquals(plan({ memory: { limit: -1 }, cpu: { quota: -1 } }), [
      "write memory.max: max",
      "write memory.swap.max: max (if the kernel offers it)",
      "write cpu.max: max 100000",
    ]);
    assertEquals(
      assertThrows(() => plan({ memory: { limit: 32 * MiB, checkBeforeUpdate: true } })).message,
      `unable to set memory limit to ${32 * MiB} (current usage: ${40 * MiB}, peak usage: ?)`,
    );
    assertEquals(plan({ memory: { limit: 32 * MiB } }), [`write memory.max: ${32 * MiB}`], "unchecked, as runc");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Real cgroups on this host

Deno.test(
  named(
    "v1: a cgroup at an absolute cgroupsPath in every hierarchy, without limits; devices.list holds the rules; " +
      "a denied device cannot be opened; remove() takes the made parents too",
    cannotUseV1(...OCI_CONTROLLERS),
  ),
  async () => {
    const top = testRoot();
    const path = `/${top}/pod/libpod-c1`;
    try {
      // First without any limit: podman expects the container in its path all the same.
      const bare = createContainerCgroup("c1", {}, { path, controllers: OCI_CONTROLLERS });
      try {
        assertEquals(bare.version, 1);
        for (const dir of bare.paths) assert(dir.endsWith(path), `${dir} is at the path`);
        assertEquals(
          bare.created.length,
          bare.paths.length * 2,
          `/${top} and /${top}/pod made in each hierarchy:\n${bare.created.join("\n")}`,
        );
        const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
        try {
          bare.addProcess(sleeper.pid);
          for (const controller of OCI_CONTROLLERS) {
            assertEquals(cgroupOf(sleeper.pid, controller), path, `/proc/<pid>/cgroup for ${controller}`);
          }
        } finally {
          sleeper.kill("SIGKILL");
          await sleeper.status;
        }
      } finally {
        await bare.remove();
      }
      for (const dir of [...bare.paths, ...bare.created]) assert(!exists(dir), `${dir} is removed`);

      // Then with device rules, a cpuset and memory, cpu and pids settings.
      const limits = resourcesFromOci({
        devices: [
          { allow: false, access: "rwm" },
          { allow: true, type: "c", major: 1, minor: 3, access: "rwm" }, // /dev/null
          { allow: true, type: "c", major: 1, minor: 8, access: "r" }, // /dev/random
          { allow: true, type: "c", major: 136, access: "rw" }, // pseudo-terminals, any minor
        ],
        memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20, swappiness: 0 },
        cpu: { shares: 512, quota: 25000, period: 50000, cpus: "0", mems: "0" },
        pids: { limit: 64 },
      });
      const cgroup = createContainerCgroup("c1", limits, { path, controllers: OCI_CONTROLLERS });
      try {
        const dirOf = (controller: string) => {
          const host = detectCgroups();
          const mount = host.version === 1
            ? host.hierarchies.find((h) => h.controllers.includes(controller))?.mount
            : "";
          const dir = cgroup.paths.find((p) => mount && p.startsWith(`${mount}/`));
          assert(dir, `a folder in the ${controller} hierarchy`, cgroup.paths.join("\n"));
          return dir;
        };
        const read = (controller: string, file: string) => Deno.readTextFileSync(`${dirOf(controller)}/${file}`).trim();
        assertEquals(read("devices", "devices.list"), "c 1:3 rwm\nc 1:8 r\nc 136:* rw", "the allow-list, in order");
        assertEquals(read("cpuset", "cpuset.cpus"), "0");
        assertEquals(read("cpuset", "cpuset.mems"), "0");
        const cpusetMount = dirOf("cpuset").slice(0, -path.length);
        assertEquals(
          Deno.readTextFileSync(`${cpusetMount}/${top}/pod/cpuset.cpus`).trim(),
          Deno.readTextFileSync(`${cpusetMount}/cpuset.cpus`).trim(),
          "a made parent has the root's CPUs",
        );
        assertEquals(read("memory", "memory.limit_in_bytes"), String(64 << 20));
        if (exists(`${dirOf("memory")}/memory.memsw.limit_in_bytes`)) {
          assertEquals(read("memory", "memory.memsw.limit_in_bytes"), String(128 << 20), "memory plus swap");
        }
        assertEquals(read("memory", "memory.soft_limit_in_bytes"), String(32 << 20));
        assertEquals(read("memory", "memory.swappiness"), "0");
        assertEquals(read("cpu", "cpu.shares"), "512");
        assertEquals(read("cpu", "cpu.cfs_period_us"), "50000");
        assertEquals(read("cpu", "cpu.cfs_quota_us"), "25000");
        assertEquals(read("pids", "pids.max"), "64");

        // A real process in it: /dev/null opens, /dev/zero (1:5) is not on the list.
        const probe = startScriptInCgroup(
          cgroup,
          "echo x > /dev/null && echo null-ok; head -c1 /dev/zero > /dev/null && echo zero-ok; " +
            "grep Cpus_allowed_list /proc/self/status",
        );
        await probe.go();
        const output = await probe.child.output();
        const stdout = new TextDecoder().decode(output.stdout);
        const stderr = new TextDecoder().decode(output.stderr);
        const context = `stdout:\n${stdout}\nstderr:\n${stderr}`;
        assertIncludes(stdout, "null-ok", "/dev/null is allowed", context);
        assert(!stdout.includes("zero-ok"), "/dev/zero is denied", context);
        assertIncludes(stderr, "Operation not permitted", "EPERM from the device cgroup", context);
        assertMatch(stdout, /Cpus_allowed_list:\s+0\n/, "the cpuset pins it to CPU 0", context);
      } finally {
        await cgroup.remove();
      }
      for (const dir of [...cgroup.paths, ...cgroup.created]) assert(!exists(dir), `${dir} is removed`);
    } finally {
      await sweep(top);
    }
  },
);

Deno.test(
  named(
    "v1: a relative cgroupsPath is below the caller's cgroup; an existing container folder is refused, and " +
      "what was made for it removed",
    cannotUseV1("memory", "pids"),
  ),
  async () => {
    const top = testRoot();
    try {
      const host = detectCgroups();
      assert(host.version === 1, "v1");
      const cgroup = createContainerCgroup("c1", { pidsLimit: 10 }, { path: `${top}/c1` });
      try {
        for (
          const h of host.hierarchies.filter((h) =>
            ["memory", "cpu", "cpuacct", "pids"].some((c) => h.controllers.includes(c))
          )
        ) {
          assert(cgroup.paths.includes(`${h.dir}/${top}/c1`), `${h.dir}/${top}/c1`, cgroup.paths.join("\n"));
        }
        // The same path again: the container folder exists, so it is an error, and the parents stay (they are not new).
        const again = assertThrows(() => createContainerCgroup("c1", {}, { path: `${top}/c1` }));
        assertMatch(again.message, /^mkdir .*\/c1: EEXIST$/);
        for (const dir of cgroup.paths) assert(exists(dir), `${dir} is still there`);
        // A second container below a parent the first one made: removing the first keeps the parent.
        const second = createContainerCgroup("c2", {}, { path: `${top}/c2` });
        assertEquals(second.created, [], "the parent existed");
        await cgroup.remove();
        for (const dir of second.paths) assert(exists(dir), `${dir} survives the first container's removal`);
        for (const dir of cgroup.created) assert(exists(dir), `${dir} is kept: it holds the second container`);
        await second.remove();
        // Still there: the second container did not make it. Reopened with `created`, it goes.
        await openContainerCgroup(second.paths, { created: cgroup.created }).remove();
        for (const dir of cgroup.created) assert(!exists(dir), `${dir} is removed`);
      } finally {
        await cgroup.remove();
      }
    } finally {
      await sweep(top);
    }
  },
);

Deno.test(
  named(
    "v1 freezer: freeze stops a real process until thaw; a reopened cgroup (a later gcr pause) does the same; " +
      "remove() of a frozen cgroup kills and removes it",
    cannotUseV1("freezer"),
  ),
  async () => {
    const top = testRoot();
    const counter = Deno.makeTempFileSync({ prefix: "gcr-freezer-" });
    try {
      const cgroup = createContainerCgroup("c1", {}, { path: `/${top}/c1`, controllers: ["freezer"] });
      const ticker = startScriptInCgroup(cgroup, `i=0; while :; do i=$((i+1)); echo $i > ${counter}; sleep 0.02; done`);
      try {
        await ticker.go();
        const count = () => Number(Deno.readTextFileSync(counter).trim() || "0");
        await waitFor("the ticker to count", () => (count() > 2 ? true : undefined));
        assertEquals(freezerState(cgroup), "thawed");

        const ops = await freeze(cgroup);
        assertEquals(ops.map(showCgroupOp), [
          `write ${cgroup.paths.find((p) => p.includes("/freezer/"))}/freezer.state: FROZEN`,
        ]);
        assertEquals(freezerState(cgroup), "frozen");
        const frozenAt = count();
        await sleep(300);
        assertEquals(count(), frozenAt, "no progress while frozen");
        assertEquals(processState(ticker.child.pid), "D", "a frozen task sleeps uninterruptibly in the refrigerator");

        thaw(cgroup);
        await waitFor("the ticker to go on after thaw", () => (count() > frozenAt ? true : undefined));
        assertEquals(freezerState(cgroup), "thawed");

        // A later `gcr pause` is another process: it has only the paths.
        const reopened = openContainerCgroup(cgroup.paths, { created: cgroup.created });
        assertEquals(reopened.version, 1);
        await freeze(reopened);
        assertEquals(freezerState(cgroup), "frozen", "seen through the first handle too");
        const pausedAt = count();
        await sleep(200);
        assertEquals(count(), pausedAt, "paused through the reopened cgroup");

        // `gcr delete` of a paused container: remove() must thaw for SIGKILL to act.
        await reopened.remove();
        const status = await ticker.child.status;
        assertEquals(status.signal, "SIGKILL", "killed");
        for (const dir of [...cgroup.paths, ...cgroup.created]) assert(!exists(dir), `${dir} is removed`);
      } finally {
        try {
          ticker.child.kill("SIGKILL");
        } catch { /* already dead */ }
        await cgroup.remove().catch(() => {});
      }
    } finally {
      Deno.removeSync(counter);
      await sweep(top);
    }
  },
);

Deno.test(
  named("freeze needs the freezer hierarchy: a clear error, not a silent no-op", cannotUseV1("memory")),
  async () => {
    const top = testRoot();
    try {
      const cgroup = createContainerCgroup("c1", {}, { path: `/${top}/c1` });
      try {
        const { message } = await assertRejects(freeze(cgroup), CgroupUnavailableError, "a CgroupUnavailableError");
        assertMatch(message, /^the container's cgroup is in no freezer hierarchy .*controllers: \["freezer"\]$/);
      } finally {
        await cgroup.remove();
      }
    } finally {
      await sweep(top);
    }
  },
);
