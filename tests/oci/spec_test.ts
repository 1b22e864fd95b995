/**
 * oci/spec/ against config.json files written by independent tools (runc
 * spec, umoci unpack), and the refusals that keep a config gcr cannot honour
 * from starting half-honoured.
 */
import { join } from "node:path";
import { MS } from "../../ffi/constants.ts";
import { SpecError } from "../../oci/spec/fields.ts";
import { parseMountOptions } from "../../oci/spec/mounts.ts";
import { RLIM_INFINITY, RLIMITS } from "../../oci/spec/process.ts";
import { type OciSpec, parseSpec, readSpec } from "../../oci/spec/spec.ts";
import { CAPABILITIES } from "../../ffi/capabilities.ts";
import { describe, missingPrograms, missingRoot, named, run } from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertThrows } from "../helpers.ts";

/** runc's and umoci's default capability sets. */
const DEFAULT_CAPS = [CAPABILITIES.AUDIT_WRITE, CAPABILITIES.KILL, CAPABILITIES.NET_BIND_SERVICE];

async function tool(program: string, args: readonly string[], cwd?: string): Promise<void> {
  const result = await run(program, args, cwd ? { cwd } : {});
  assertEquals(result.code, 0, `${program} failed`, describe(result));
}

function mountAt(spec: OciSpec, destination: string) {
  const mount = spec.mounts.find((m) => m.destination === destination);
  assert(mount, `no mount at ${destination}: ${spec.mounts.map((m) => m.destination).join(" ")}`);
  return mount;
}

/** The mounts every runc and umoci default config has, as runc's specconv would parse them. */
function assertDefaultMounts(spec: OciSpec): void {
  const proc = mountAt(spec, "/proc");
  assertEquals([proc.type, proc.source, proc.flags, proc.data, proc.bind], ["proc", "proc", 0, "", false]);
  const dev = mountAt(spec, "/dev");
  assertEquals([dev.type, dev.flags, dev.data], ["tmpfs", MS.NOSUID | MS.STRICTATIME, "mode=755,size=65536k"]);
  const shm = mountAt(spec, "/dev/shm");
  assertEquals(shm.flags, MS.NOSUID | MS.NOEXEC | MS.NODEV);
  const cgroup = mountAt(spec, "/sys/fs/cgroup");
  assertEquals(cgroup.flags, MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RELATIME | MS.RDONLY);
  assert(cgroup.readOnly, "/sys/fs/cgroup is read-only");
  for (const mount of spec.mounts) assertEquals(mount.propagation, 0, `no propagation option at ${mount.destination}`);
}

const withTempDir = async (fn: (dir: string) => Promise<void>) => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-oci-spec-" });
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
};

Deno.test(
  named("runc spec: its config.json parses, mounts and capabilities as runc reads them", missingPrograms("runc")),
  () =>
    withTempDir(async (dir) => {
      await tool("runc", ["spec"], dir);
      const spec = readSpec(dir);
      assert(spec.ociVersion.startsWith("1.0"), `ociVersion ${spec.ociVersion}`);
      assertEquals(spec.root, { path: join(dir, "rootfs"), readonly: true }, "root resolved against the bundle");
      assertEquals(spec.hostname, "runc");
      assertEquals(spec.process.args, ["sh"]);
      assertEquals(spec.process.cwd, "/");
      assertEquals([spec.process.user.uid, spec.process.user.gid], [0, 0]);
      assertEquals(spec.process.noNewPrivileges, true);
      const caps = spec.process.capabilities;
      assert(caps, "runc spec names capability sets");
      assertEquals([...caps.bounding].sort(), [...DEFAULT_CAPS].sort());
      assertEquals([...caps.ambient].sort(), [...DEFAULT_CAPS].sort());
      assertEquals(caps.inheritable, [], "runc spec writes no inheritable set");
      assertEquals(spec.process.rlimits, [{
        type: "RLIMIT_NOFILE",
        resource: RLIMITS.RLIMIT_NOFILE,
        soft: 1024n,
        hard: 1024n,
      }]);
      assertDefaultMounts(spec);
      const sys = mountAt(spec, "/sys");
      assertEquals([sys.type, sys.flags, sys.readOnly], ["sysfs", MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY, true]);
      const pts = mountAt(spec, "/dev/pts");
      assertEquals([pts.flags, pts.data], [MS.NOSUID | MS.NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"]);
      assertEquals(spec.linux.namespaces.map((ns) => ns.type).sort(), ["ipc", "mount", "network", "pid", "uts"]);
      assert(spec.linux.namespaces.every((ns) => ns.path === undefined), "runc spec joins no namespace");
      assertIncludes(spec.linux.maskedPaths.join(" "), "/proc/kcore");
      assertIncludes(spec.linux.readonlyPaths.join(" "), "/proc/sys");
      assertEquals(spec.linux.resources?.devices, [{ allow: false, type: "a", access: "rwm" }]);
    }),
);

Deno.test(
  named("runc spec --rootless: user namespace, id maps and an rbind of /sys", missingPrograms("runc")),
  () =>
    withTempDir(async (dir) => {
      await tool("runc", ["spec", "--rootless"], dir);
      const spec = readSpec(dir);
      assert(spec.linux.namespaces.some((ns) => ns.type === "user"), "a user namespace");
      assert(!spec.linux.namespaces.some((ns) => ns.type === "network"), "the host's network");
      assertEquals(spec.linux.uidMappings.length, 1);
      assertEquals(spec.linux.uidMappings[0]?.count, 1);
      const sys = mountAt(spec, "/sys");
      // runc writes type "none" for it: the type of a bind mount means nothing.
      assertEquals([sys.type, sys.source, sys.bind, sys.recursive, sys.readOnly], ["bind", "/sys", true, true, true]);
      assertEquals(sys.flags, MS.BIND | MS.REC | MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY);
      assertEquals(sys.propagation, 0, "no propagation option");
    }),
);

Deno.test(
  named(
    "umoci unpack: the bundle's config.json carries the image's command, user, env and annotations",
    missingPrograms("umoci"),
  ),
  () =>
    withTempDir(async (dir) => {
      const layout = join(dir, "layout");
      const bundle = join(dir, "bundle");
      // As non-root, umoci unpacks only with --rootless (and then writes a rootless config).
      const rootless = missingRoot() ? ["--rootless"] : [];
      await tool("umoci", ["init", "--layout", layout]);
      await tool("umoci", ["new", "--image", `${layout}:t`]);
      await tool("umoci", [
        "config",
        "--image",
        `${layout}:t`,
        "--config.entrypoint",
        "/bin/echo",
        "--config.cmd",
        "hello",
        "--config.user",
        "1000:1001",
        "--config.workingdir",
        "/srv",
        "--config.env",
        "GREETING=hi there",
      ]);
      await tool("umoci", ["unpack", ...rootless, "--image", `${layout}:t`, bundle]);
      const spec = readSpec(bundle);
      assertEquals(spec.process.args, ["/bin/echo", "hello"]);
      assertEquals([spec.process.user.uid, spec.process.user.gid], [1000, 1001]);
      assertEquals(spec.process.cwd, "/srv");
      assert(spec.process.env.includes("GREETING=hi there"), `env: ${spec.process.env.join(" | ")}`);
      assertEquals(spec.root.path, join(bundle, "rootfs"));
      assertEquals(spec.annotations["org.opencontainers.image.os"], "linux");
      assertEquals([...(spec.process.capabilities?.bounding ?? [])].sort(), [...DEFAULT_CAPS].sort());
      assertDefaultMounts(spec);
      assert(spec.linux.namespaces.some((ns) => ns.type === "mount"), "a mount namespace");
    }),
);

// ---------------------------------------------------------------------------
// Hand-written configs: what is accepted, and what is refused with its field named

/** A small valid config; each test changes a copy. */
function base(): Record<string, unknown> {
  return {
    ociVersion: "1.2.0",
    root: { path: "rootfs" },
    hostname: "box",
    process: {
      user: { uid: 0, gid: 0 },
      args: ["sh"],
      env: ["PATH=/bin"],
      cwd: "/",
      capabilities: { bounding: ["CAP_CHOWN"], effective: ["CAP_CHOWN"], permitted: ["CAP_CHOWN"] },
    },
    mounts: [{ destination: "/proc", type: "proc", source: "proc" }],
    linux: {
      namespaces: [{ type: "pid" }, { type: "mount" }, { type: "uts" }],
      resources: { memory: { limit: 67108864 }, pids: { limit: 64 }, cpu: { quota: 50000, period: 100000 } },
    },
  };
}

/** Tests reach into base()'s nested objects freely; a wrong path fails the test anyway. */
// deno-lint-ignore no-explicit-any
type Editable = Record<string, any>;

/** base() with `change` applied to it (a function, so nested objects are edited in place). */
function config(change: (json: Editable) => void): Record<string, unknown> {
  const json = base();
  change(json);
  return json;
}

const refusal = (json: unknown) =>
  assertThrows(() => parseSpec(json, "/bundle"), SpecError, `accepted: ${JSON.stringify(json)}`);

function assertRefused(json: unknown, field: string, message: string | RegExp): void {
  const error = refusal(json);
  assertEquals(error.field, field, `field of: ${error.message}`);
  assert(error.message.startsWith("config.json: "), `message: ${error.message}`);
  if (typeof message === "string") assertEquals(error.message, message);
  else assert(message.test(error.message), `message ${JSON.stringify(error.message)} does not match ${message}`);
}

Deno.test("a hand-written config: values typed, paths resolved against the bundle", () => {
  const spec = parseSpec(
    config((json) => {
      json.process.rlimits = [
        { type: "RLIMIT_NPROC", soft: 100, hard: 200 },
        // RLIM_INFINITY as Go writes it; JSON.parse rounds it to 2^64.
        { type: "RLIMIT_CORE", soft: 18446744073709551615, hard: 18446744073709551615 },
      ];
      json.process.oomScoreAdj = -500;
      json.process.user = { uid: 1000, gid: 1000, umask: 0o22, additionalGids: [10, 20] };
      json.mounts.push({ destination: "/data", source: "data", options: ["rbind", "ro", "rprivate"] });
      json.linux.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      json.linux.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
      json.linux.namespaces.push({ type: "user" }, { type: "network", path: "/proc/1/ns/net" });
      json.linux.sysctl = { "net.ipv4.ip_forward": "1" };
      json.linux.rootfsPropagation = "rslave";
      json.linux.devices = [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666 }];
      json.hooks = { prestart: [], poststop: [] };
      json.linux.mountLabel = "";
      json.process.selinuxLabel = "";
      json.linux.resources.memory.kernel = 0;
      json.linux.resources.blockIO = { weight: 0 };
      json.annotations = { "org.example": "x" };
    }),
    "/bundle",
  );
  assertEquals(spec.root, { path: "/bundle/rootfs", readonly: false });
  assertEquals(spec.process.rlimits.map((l) => [l.resource, l.soft, l.hard]), [
    [RLIMITS.RLIMIT_NPROC, 100n, 200n],
    [RLIMITS.RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY],
  ]);
  assertEquals(spec.process.oomScoreAdj, -500);
  assertEquals(spec.process.user, { uid: 1000, gid: 1000, umask: 0o22, additionalGids: [10, 20] });
  assertEquals(spec.process.capabilities?.bounding, [CAPABILITIES.CHOWN]);
  assertEquals(spec.process.capabilities?.ambient, []);
  const data = mountAt(spec, "/data");
  assertEquals(data, {
    destination: "/data",
    type: "bind",
    source: "/bundle/data",
    flags: MS.BIND | MS.REC | MS.RDONLY,
    propagation: MS.PRIVATE | MS.REC,
    data: "",
    bind: true,
    recursive: true,
    readOnly: true,
  });
  assertEquals(spec.linux.uidMappings, [{ inside: 0, outside: 100000, count: 65536 }]);
  assertEquals(spec.linux.namespaces.find((ns) => ns.type === "network")?.path, "/proc/1/ns/net");
  assertEquals(spec.linux.rootfsPropagation, MS.SLAVE | MS.REC);
  assertEquals(spec.linux.sysctl, { "net.ipv4.ip_forward": "1" });
  assertEquals(spec.linux.devices, [{ path: "/dev/fuse", type: "c", major: 10, minor: 229, fileMode: 0o666 }]);
  assertEquals(spec.linux.resources, { memoryBytes: 67108864, cpuQuotaUs: 50000, cpuPeriodUs: 100000, pidsLimit: 64 });
  assertEquals(spec.annotations, { "org.example": "x" });
});

Deno.test("mount options: later flags win, propagation apart, the rest is the file system's data", () => {
  assertEquals(parseMountOptions(["ro", "nosuid", "rw", "mode=755", "shared", "size=1m"]), {
    flags: MS.NOSUID,
    propagation: MS.SHARED,
    data: "mode=755,size=1m",
    copyUp: false,
  });
  assertEquals(parseMountOptions(["noatime", "atime", "nodiratime", "sync", "dirsync", "mand", "remount"]), {
    flags: MS.NODIRATIME | MS.SYNCHRONOUS | MS.DIRSYNC | MS.MANDLOCK | MS.REMOUNT,
    propagation: 0,
    data: "",
    copyUp: false,
  });
  assertEquals(parseMountOptions(["defaults", "constructor"]).data, "constructor", "not a flag by prototype");
  const bindType = parseSpec(
    config((json) => json.mounts.push({ destination: "/etc/hosts", type: "bind", source: "/etc/hosts" })),
    "/b",
  );
  assertEquals(mountAt(bindType, "/etc/hosts").flags, MS.BIND, "type bind alone is a (non-recursive) bind mount");
});

Deno.test("unknown fields are ignored at every level, as the spec requires; the config reads as without them", () => {
  const plain = parseSpec(config(() => {}), "/b");
  const changes: ((j: Editable) => void)[] = [
    (j) => (j.linux.foo = 1),
    (j) => (j.bar = {}),
    (j) => (j.process.user.name = "x"),
    (j) => (j.process.capabilities.future = ["CAP_CHOWN"]),
    (j) => (j.mounts[0].flags = []),
    (j) => (j.linux.resources.memory.foo = 1),
    (j) => (j.linux.resources.pids.future = 1),
    (j) => (j.linux.namespaces[0].constructor = 1),
    (j) => (j.hooks = { preStart: [{ path: "/x" }] }),
  ];
  for (const change of changes) assertEquals(parseSpec(config(change), "/b"), plain, String(change));
  const rule = { allow: false, access: "rwm" };
  assertEquals(
    parseSpec(config((j) => (j.linux.resources.devices = [{ ...rule, future: true }])), "/b"),
    parseSpec(config((j) => (j.linux.resources.devices = [rule])), "/b"),
    "an unknown field in a device rule",
  );
});

Deno.test("zero values engines send for what they do not set ask for nothing (dockerd's blockIO weight 0)", () => {
  const plain = parseSpec(config(() => {}), "/b");
  const zeros = parseSpec(
    config((j) => {
      j.linux.resources.blockIO = { weight: 0 };
      j.linux.resources.cpu.shares = 0;
      j.linux.resources.memory.disableOOMKiller = false;
      j.linux.resources.memory.kernel = -1;
      j.linux.resources.hugepageLimits = [];
      j.linux.resources.unified = {};
      j.linux.mountLabel = "";
      j.linux.intelRdt = null;
    }),
    "/b",
  );
  assertEquals(zeros, plain);
});

Deno.test("hooks: each kind read in order; args default to [path]; env and timeout as given; bad ones named", () => {
  const spec = parseSpec(
    config((j) => {
      j.hooks = {
        prestart: [{ path: "/bin/sh", args: ["sh", "-c", "true"], env: ["A=1"], timeout: 5 }, { path: "/usr/bin/a" }],
        poststop: [{ path: "/usr/bin/b", future: 1 }],
        createRuntime: [],
      };
    }),
    "/b",
  );
  assertEquals(spec.hooks, {
    prestart: [
      { path: "/bin/sh", args: ["sh", "-c", "true"], env: ["A=1"], timeout: 5 },
      { path: "/usr/bin/a", args: ["/usr/bin/a"] },
    ],
    createRuntime: [],
    createContainer: [],
    startContainer: [],
    poststart: [],
    poststop: [{ path: "/usr/bin/b", args: ["/usr/bin/b"] }],
  });
  assertEquals(parseSpec(config(() => {}), "/b").hooks.poststart, [], "no hooks");
  assertRefused(
    config((j) => (j.hooks = { poststart: [{ path: "bin/true" }] })),
    "hooks.poststart[0].path",
    /must be an absolute path/,
  );
  assertRefused(
    config((j) => (j.hooks = { createRuntime: [{ path: "/bin/true", timeout: 0 }] })),
    "hooks.createRuntime[0].timeout",
    /must be an integer from 1/,
  );
  assertRefused(
    config((j) => (j.hooks = { prestart: [{ path: "/bin/true", env: ["NOEQUALS"] }] })),
    "hooks.prestart[0].env[0]",
    /KEY=VALUE/,
  );
});

Deno.test("refused: features gcr does not have, named by field", () => {
  const cases: [(j: Editable) => void, string][] = [
    [(j) => (j.linux.intelRdt = { closID: "x" }), "linux.intelRdt"],
    [(j) => (j.linux.intelRdt = {}), "linux.intelRdt"],
    [(j) => (j.linux.personality = { domain: "LINUX32" }), "linux.personality"],
    [(j) => (j.linux.timeOffsets = { monotonic: { secs: 1 } }), "linux.timeOffsets"],
    [(j) => (j.linux.mountLabel = "system_u:object_r:container_file_t:s0"), "linux.mountLabel"],
    [(j) => (j.process.apparmorProfile = "docker-default"), "process.apparmorProfile"],
    [(j) => (j.process.selinuxLabel = "system_u:system_r:container_t:s0"), "process.selinuxLabel"],
    [(j) => (j.process.scheduler = { policy: "SCHED_OTHER" }), "process.scheduler"],
    [(j) => (j.solaris = { milestone: "x" }), "solaris"],
    [(j) => (j.windows = {}), "windows"],
    [(j) => (j.vm = { hypervisor: { path: "/x" } }), "vm"],
    [(j) => (j.zos = {}), "zos"],
    [(j) => (j.mounts[0].uidMappings = [{ containerID: 0, hostID: 1, size: 1 }]), "mounts[0].uidMappings"],
  ];
  for (const [change, field] of cases) {
    assertRefused(config(change), field, `config.json: ${field} is not supported by gcr`);
  }
  // linux.resources is read by the cgroup code's reader, which says why.
  const resources: [(j: Editable) => void, string][] = [
    [(j) => (j.linux.resources.cpu.idle = 1), "linux.resources.cpu.idle"],
    [(j) => (j.linux.resources.memory.useHierarchy = false), "linux.resources.memory.useHierarchy"],
    [(j) => (j.linux.resources.cpu.realtimeRuntime = 950000), "linux.resources.cpu.realtimeRuntime"],
    [(j) => (j.linux.resources.blockIO = { weight: 500 }), "linux.resources.blockIO"],
    [(j) => (j.linux.resources.hugepageLimits = [{ pageSize: "2MB", limit: 1 }]), "linux.resources.hugepageLimits"],
    [(j) => (j.linux.resources.unified = { "memory.high": "1G" }), "linux.resources.unified"],
  ];
  for (const [change, field] of resources) {
    assertRefused(
      config(change),
      field,
      new RegExp(`^config\\.json: ${field.replaceAll(".", "\\.")}: not supported: `),
    );
  }
  assertRefused(
    config((j) => j.linux.namespaces.push({ type: "time" })),
    "linux.namespaces[3].type",
    "config.json: linux.namespaces[3].type time is not supported by gcr",
  );
  assertRefused(
    config((j) => (j.mounts[0].options = ["nosuid", "rro"])),
    "mounts[0].options[1]",
    "config.json: mounts[0].options[1] (rro) is not supported by gcr",
  );
  // tmpcopyup is read here; oci/mount_plan.ts refuses it where there are files to copy.
  assertEquals(
    parseSpec(
      config((j) => j.mounts.push({ destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["tmpcopyup"] })),
      "/b",
    )
      .mounts[1]?.copyUp,
    true,
    "tmpcopyup is carried to the planner",
  );
  assertRefused(
    config((j) => (j.linux.seccomp = { defaultAction: "SCMP_ACT_ALLOW", listenerPath: "/run/x.sock" })),
    "linux.seccomp.listenerPath",
    /listenerPath: "\/run\/x.sock": gcr has no seccomp listener$/,
  );
});

Deno.test("refused: malformed values, with the field and what it must be", () => {
  const args = "config.json: process.args must be a non-empty array of strings";
  assertRefused(config((j) => (j.process.args = [])), "process.args", args);
  assertRefused(config((j) => delete j.process.args), "process.args", args);
  assertRefused(config((j) => (j.process.args = ["sh", 1])), "process.args", args);
  assertRefused(config((j) => (j.process.args = "sh -c true")), "process.args", args);
  assertRefused(
    config((j) => (j.process.capabilities.bounding = ["CAP_CHOWN", "CAP_FLY"])),
    "process.capabilities.bounding[1]",
    'config.json: process.capabilities.bounding[1] is not a capability gcr knows: "CAP_FLY"',
  );
  assertRefused(
    config((j) => (j.process.capabilities.effective = ["chown"])),
    "process.capabilities.effective[0]",
    /must be a capability name like CAP_CHOWN/,
  );
  assertRefused(
    config((j) => (j.process.rlimits = [{ type: "RLIMIT_FLY", soft: 1, hard: 1 }])),
    "process.rlimits[0].type",
    /must be one of RLIMIT_CPU, .*not "RLIMIT_FLY"/,
  );
  assertRefused(
    config((j) => (j.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 2048, hard: 1024 }])),
    "process.rlimits[0]",
    /soft 2048 above hard 1024/,
  );
  assertRefused(
    config((j) => (j.process.rlimits = [{ type: "RLIMIT_NOFILE", soft: 1, hard: 1 }, {
      type: "RLIMIT_NOFILE",
      soft: 2,
      hard: 2,
    }])),
    "process.rlimits[1]",
    /repeats RLIMIT_NOFILE/,
  );
  assertRefused(config((j) => (j.process.env = ["PATH"])), "process.env[0]", /must be KEY=VALUE/);
  assertRefused(config((j) => (j.process.cwd = "srv")), "process.cwd", /must be an absolute path/);
  assertRefused(config((j) => delete j.process.cwd), "process.cwd", "config.json: process.cwd is required");
  assertRefused(config((j) => (j.process.oomScoreAdj = 2000)), "process.oomScoreAdj", /from -1000 to 1000/);
  assertRefused(config((j) => (j.process.user.uid = -1)), "process.user.uid", /must be an integer from 0/);
  assertRefused(config((j) => (j.ociVersion = "0.6.0")), "ociVersion", /must be a 1\.x runtime-spec version/);
  assertRefused(config((j) => delete j.ociVersion), "ociVersion", "config.json: ociVersion is required");
  assertRefused(config((j) => (j.mounts[0].destination = "proc")), "mounts[0].destination", /absolute path/);
  assertRefused(config((j) => (j.mounts[0].type = null)), "mounts[0].type", /required unless .* bind mount/);
  assertRefused(
    config((j) => (j.mounts[0].options = ["private", "rshared"])),
    "mounts[0].options[1]",
    /second propagation option/,
  );
  assertRefused(
    config((j) => j.linux.namespaces.push({ type: "pid" })),
    "linux.namespaces[3].type",
    /repeats pid/,
  );
  assertRefused(config((j) => j.linux.namespaces.push({ type: "net" })), "linux.namespaces[3].type", /must be one of/);
  assertRefused(
    config((j) => (j.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }])),
    "linux.uidMappings",
    "config.json: linux.uidMappings needs a user namespace in linux.namespaces",
  );
  assertRefused(
    config((j) => j.linux.namespaces.push({ type: "user" })),
    "linux.uidMappings",
    /required with a new user namespace/,
  );
  assertRefused(
    config((j) => (j.linux.namespaces = [{ type: "pid" }])),
    "hostname",
    "config.json: hostname needs a uts namespace in linux.namespaces",
  );
  assertRefused(
    config((j) => (j.linux.seccomp = { defaultAction: "SCMP_ACT_ERRNO", syscalls: [{ names: ["mount"] }] })),
    "linux.seccomp.syscalls[0].action",
    "config.json: linux.seccomp.syscalls[0].action: missing (a seccomp action such as SCMP_ACT_ERRNO)",
  );
  assertRefused(
    config((j) => (j.linux.resources.devices = [{ allow: true, access: "rwx" }])),
    "linux.resources.devices[0].access",
    /access: "rwx" \(some of r, w, m\)$/,
  );
  assertRefused([], "", "config.json: must hold a JSON object");
});

Deno.test("seccomp is decoded into the profile gcr compiles", () => {
  const spec = parseSpec(
    config((j) => {
      j.linux.seccomp = {
        defaultAction: "SCMP_ACT_ERRNO",
        defaultErrnoRet: 1,
        architectures: ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        syscalls: [
          { names: ["read", "write"], action: "SCMP_ACT_ALLOW" },
          {
            names: ["personality"],
            action: "SCMP_ACT_ALLOW",
            args: [{ index: 0, value: 4294967295, op: "SCMP_CMP_EQ" }],
          },
        ],
      };
    }),
    "/b",
  );
  assertEquals(spec.linux.seccomp?.defaultAction, { action: "SCMP_ACT_ERRNO", ret: 1 });
  assertEquals(spec.linux.seccomp?.architectures, ["x86_64", "x86"]);
  assertEquals(spec.linux.seccomp?.rules[0]?.args, []);
  assertEquals(spec.linux.seccomp?.rules[1]?.args, [{ index: 0, op: "SCMP_CMP_EQ", value: 4294967295n, valueTwo: 0n }]);
});

Deno.test("readSpec: one-line errors for a missing file and for invalid JSON", () =>
  withTempDir(async (dir) => {
    const missing = assertThrows(() => readSpec(dir), SpecError, `accepted: ${dir}`);
    assertEquals(missing.message.split("\n").length, 1);
    assertIncludes(missing.message, `${dir}/config.json: no such file`);
    await Deno.writeTextFile(join(dir, "config.json"), '{\n  "ociVersion": "1.0.2"\n  "root": {}\n}\n');
    const invalid = assertThrows(() => readSpec(dir), SpecError, `accepted: ${dir}`);
    assertEquals(invalid.message.split("\n").length, 1);
    assertIncludes(invalid.message, `${dir}/config.json: invalid JSON: `);
    assertIncludes(invalid.message, "line 3", "the position of the fault");
  }));
