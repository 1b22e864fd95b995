/**
 * The container's root filesystem: an overlay on the image, only its own
 * mounts, a minimal /dev, a private devpts, a scratch /tmp, a read-only
 * /sys, and an image folder left exactly as it was found.
 */
import { join } from "node:path";
import {
  BUSYBOX,
  busyboxRootfs,
  copyRootfs,
  describe,
  gcr,
  gcrOk,
  listTree,
  missingRoot,
  named,
  parseMountinfo,
  type Running,
  spawnGcr,
} from "../fixtures.ts";
import { MASKED_PATHS } from "../../steps/mask_paths.ts";
import { READONLY_PATHS } from "../../steps/readonly_paths.ts";
import { assert, assertEquals, assertIncludes, assertNotEquals, lines } from "../helpers.ts";

const CONTAINER_MOUNTS = [
  "/",
  "/etc/hostname",
  "/etc/hosts",
  "/etc/resolv.conf",
  "/proc",
  "/dev",
  "/dev/null",
  "/dev/zero",
  "/dev/full",
  "/dev/random",
  "/dev/urandom",
  "/dev/tty",
  "/dev/pts",
  "/dev/shm",
  "/tmp",
  "/sys",
];

function hostMountPoints(): string[] {
  return parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo")).map((m) => m.mountPoint);
}

Deno.test(
  named("mountinfo inside lists only the container's mounts: /, /proc, /dev and its nodes, /tmp, /sys", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcrOk(["run", "-q", "busybox", "cat", "/proc/self/mountinfo"]);
    const mounts = parseMountinfo(result.stdout);
    // Masked and read-only /proc and /sys paths are the container's own
    // mounts too (tests/security/hardening_cli_test.ts checks what they do).
    const hardening = new Set<string>([...MASKED_PATHS, ...READONLY_PATHS]);
    const points = mounts.map((m) => m.mountPoint).filter((p) => !hardening.has(p));
    const allowed = (p: string) =>
      ["/", "/proc", "/dev", "/tmp", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].includes(p) ||
      /^\/(dev|sys)\//.test(p);
    assertEquals(points.filter((p) => !allowed(p)), [], "mount points outside the container's own", describe(result));
    const leaked = hostMountPoints().filter((p) => !CONTAINER_MOUNTS.includes(p) && points.includes(p));
    assertEquals(leaked, [], "host mount points visible inside", describe(result));
    assertEquals(points.toSorted(), CONTAINER_MOUNTS.toSorted(), "the container's mount points", describe(result));

    const at = (point: string) => mounts.find((m) => m.mountPoint === point)!;
    const root = at("/");
    assertEquals(root.fsType, "overlay", "/ is an overlay", describe(result));
    assertIncludes(
      root.superOptions.join(","),
      `lowerdir=${Deno.realPathSync(BUSYBOX)},`,
      "the image folder is its lower layer",
      describe(result),
    );
    const proc = at("/proc");
    assertEquals(proc.fsType, "proc", "/proc's filesystem type", describe(result));
    for (const flag of ["nosuid", "nodev", "noexec"]) {
      assert(proc.options.includes(flag), `/proc must be mounted ${flag}`, describe(result));
    }
    assertEquals(at("/tmp").fsType, "tmpfs", "/tmp's filesystem type", describe(result));
    assertEquals(at("/dev").fsType, "tmpfs", "/dev's filesystem type", describe(result));
    assertEquals(at("/dev/shm").fsType, "tmpfs", "/dev/shm's filesystem type", describe(result));
    const sys = at("/sys");
    assertEquals(sys.fsType, "sysfs", "/sys's filesystem type", describe(result));
    assert(sys.options.includes("ro"), "/sys must be mounted read-only", describe(result));

    const pts = at("/dev/pts");
    assertEquals(pts.fsType, "devpts", "/dev/pts's filesystem type", describe(result));
    const hostPts = parseMountinfo(Deno.readTextFileSync("/proc/self/mountinfo")).filter((m) => m.fsType === "devpts");
    for (const host of hostPts) {
      assertNotEquals(pts.device, host.device, `/dev/pts must be a new devpts instance, not ${host.mountPoint}`);
    }
  },
);

Deno.test(
  named(
    "/dev holds exactly null zero full random urandom tty pts shm fd stdin stdout stderr ptmx, and they work",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const script = [
      "ls -A /dev",
      "echo --",
      "for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo char:$d; done",
      "echo x > /dev/null && echo null:ok",
      "head -c 4 /dev/zero | od -An -tx1",
      "echo x 2>/dev/null > /dev/full || echo full:fails",
      "head -c 16 /dev/urandom | wc -c",
      "echo via-stdout > /dev/stdout",
      "echo pts: $(ls -A /dev/pts)",
    ].join("; ");
    const result = await gcrOk(["run", "-q", "busybox", "sh", "-c", script]);
    const [listing = "", checks = ""] = result.stdout.split("--\n");
    assertEquals(
      lines(listing).toSorted(),
      ["null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "stdin", "stdout", "stderr", "ptmx"]
        .toSorted(),
      "ls -A /dev inside",
      describe(result),
    );
    assertEquals(
      lines(checks).map((l) => l.trim()),
      [
        "char:null",
        "char:zero",
        "char:full",
        "char:random",
        "char:urandom",
        "char:tty",
        "null:ok",
        "00 00 00 00",
        "full:fails",
        "16",
        "via-stdout",
        // A new devpts instance has no terminals of the host's, only ptmx.
        "pts: ptmx",
      ],
      "device checks inside",
      describe(result),
    );
  },
);

Deno.test(
  named("/sys is read-only and /tmp is a scratch tmpfs that does not outlive the container", missingRoot()),
  async () => {
    await busyboxRootfs();
    const sys = await gcr(["run", "-q", "busybox", "sh", "-c", "touch /sys/x && echo touched"]);
    assertNotEquals(sys.code, 0, "touch /sys/x must fail", describe(sys));
    assertIncludes(sys.stderr, "Read-only file system", "touch's error", describe(sys));

    const marker = `gcr-test-${crypto.randomUUID()}`;
    const write = await gcrOk(["run", "-q", "busybox", "sh", "-c", `echo hi > /tmp/${marker} && cat /tmp/${marker}`]);
    assertEquals(write.stdout, "hi\n", "writing to /tmp works", describe(write));
    const read = await gcr(["run", "-q", "busybox", "sh", "-c", `ls /tmp/${marker}`]);
    assertNotEquals(read.code, 0, "a file written to /tmp must be gone in the next container", describe(read));
    assertEquals([...Deno.readDirSync(join(BUSYBOX, "tmp"))].length, 0, "the rootfs folder's tmp stays empty");
  },
);

Deno.test(
  named(
    "after the container exits, the rootfs folder and the host's mounts are as before (no .put_old)",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const before = listTree(BUSYBOX);
    const mountsBefore = hostMountPoints();
    const result = await gcrOk([
      "run",
      "-q",
      "busybox",
      "sh",
      "-c",
      "echo x > /tmp/x; mkdir /dev/extra; touch /dev/shm/y; ls / > /dev/null",
    ]);
    const after = listTree(BUSYBOX);
    assertEquals(after, before, "the rootfs listing (names, types, sizes, modes)", describe(result));
    assert(!after.some((line) => line.startsWith("/.put_old ")), "no .put_old in the rootfs", describe(result));
    assertEquals(hostMountPoints(), mountsBefore, "the host's mount table");
  },
);

Deno.test(
  named(
    "mount points missing from the image are made in the container's upper folder, not in the image",
    missingRoot(),
  ),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    const state = join(copy.path, "..", "state");
    try {
      for (const dir of ["proc", "dev", "sys", "tmp"]) Deno.removeSync(join(copy.path, dir));
      const before = listTree(copy.path);
      const result = await gcrOk(
        ["run", "-q", copy.path, "sh", "-c", "echo $$; ls -A /dev | wc -l; ls /sys | wc -l; hostname"],
        { env: { GCR_STATE: state } },
      );
      const [pid, devCount, sysCount] = lines(result.stdout).map((l) => Number(l.trim()));
      assertEquals(pid, 1, "the command is pid 1 in /proc", describe(result));
      assert(devCount! >= 13 && sysCount! > 0, "/dev and /sys are mounted", describe(result));
      assertEquals(listTree(copy.path), before, "the image listing after the run", describe(result));
      const id = lines(result.stdout)[3]!;
      const made = [...Deno.readDirSync(join(state, "containers", id, "upper"))].map((e) => e.name).toSorted();
      // etc: the generated hostname, hosts and resolv.conf's mount points (tests/plan/etc_files_test.ts).
      assertEquals(made, ["dev", "etc", "proc", "sys", "tmp"], "the mount points, in upper", describe(result));
    } finally {
      copy.remove();
    }
  },
);

Deno.test(
  named("two containers on an image without mount points each get their own, made in their own upper", missingRoot()),
  async () => {
    await busyboxRootfs();
    const copy = await copyRootfs(BUSYBOX);
    const started: Running[] = [];
    try {
      for (const dir of ["proc", "tmp"]) Deno.removeSync(join(copy.path, dir));
      // The first container creates proc and tmp; the second finds them there.
      const wait = "echo ready; read line || :";
      const first = await spawnGcr(["run", "-q", "--rm", copy.path, "sh", "-c", wait], {
        stdinPipe: true,
        rootfsDir: false,
      });
      started.push(first);
      await first.waitForStdout(/ready/);
      const check = `${wait}; grep -cE ' /(proc|tmp) ' /proc/self/mountinfo; ls /proc/1 >/dev/null && echo proc-ok; ` +
        "echo x > /tmp/x && echo tmp-ok";
      const second = await spawnGcr(["run", "-q", copy.path, "sh", "-c", check], { stdinPipe: true, rootfsDir: false });
      started.push(second);
      await second.waitForStdout(/ready/);
      // The first exits (and its folder is removed with --rm) while the second still runs.
      await first.closeStdin();
      const firstResult = await first.finish();
      assertEquals(firstResult.code, 0, "the first container's exit status", describe(firstResult));
      await second.closeStdin();
      const result = await second.finish();
      assertEquals(
        lines(result.stdout),
        ["ready", "2", "proc-ok", "tmp-ok"],
        "the second container still has /proc and /tmp after the first exits",
        describe(result),
      );
    } finally {
      for (const running of started) {
        running.kill("SIGKILL");
        await running.finish().catch(() => undefined);
      }
      copy.remove();
    }
  },
);
