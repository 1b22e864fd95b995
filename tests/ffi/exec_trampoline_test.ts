/**
 * gcr-exec, the exec trampoline: its bytes are what its source assembles
 * to, it does execvp's search as the command expects it, it reports a
 * failure as a negative errno on the status descriptor and closes that
 * descriptor when the command runs, and its memfd cannot be written.
 */
import { join } from "node:path";
import { sealedTrampoline, trampolineElf } from "../../ffi/exec_trampoline.ts";
import { libc } from "../../ffi/libc.ts";
import { lastErrno } from "../../ffi/errno.ts";
import { ERRNO, O } from "../../ffi/constants.ts";
import { openFd } from "../../ffi/fds.ts";
import { describe, missingPrograms, named, run, type RunResult } from "../fixtures.ts";
import { assertEquals, assertNotMatch } from "../helpers.ts";

interface Outcome {
  /** What the trampoline wrote to its status descriptor, as an int32, or null for nothing. */
  status: number | null;
  result: RunResult;
}

/** Runs the trampoline with `args` after its status descriptor (3, a file), in `cwd`, with exactly `env`. */
async function trampoline(args: string[], env: Record<string, string>, cwd: string): Promise<Outcome> {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-exec-" });
  try {
    const program = join(dir, "gcr-exec");
    const statusFile = join(dir, "status");
    Deno.writeFileSync(program, trampolineElf(), { mode: 0o755 });
    const quoted = args.map((arg) => `'${arg}'`).join(" ");
    const script = `exec 3>'${statusFile}'; exec env -i ${
      Object.entries(env).map(([k, v]) => `'${k}=${v}'`).join(" ")
    } '${program}' 3 ${quoted}`;
    const result = await run("bash", ["-c", script], { cwd });
    const bytes = Deno.readFileSync(statusFile);
    const status = bytes.length === 4 ? new DataView(bytes.buffer).getInt32(0, true) : null;
    return { status, result };
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** The host's static busybox (package busybox-static), which the tests' busybox image is made of. */
const BUSYBOX_BINARY = "/bin/busybox";

Deno.test(
  named("gcr-exec: execvp's search, the command's own argv, status closed on success", missingPrograms("busybox")),
  async () => {
    const dir = Deno.makeTempDirSync({ prefix: "gcr-exec-path-" });
    try {
      const bin = join(dir, "bin");
      Deno.mkdirSync(bin);
      const script = (path: string, body: string, mode = 0o755) => Deno.writeTextFileSync(path, body, { mode });
      // busybox picks its applet by argv[0]: the command's own argv reaches it.
      Deno.copyFileSync(BUSYBOX_BINARY, join(bin, "bb"));
      script(join(dir, "here"), "#!/bin/sh\necho here\n");
      script(join(bin, "plain"), "not a script, no shebang\n");
      script(join(bin, "locked"), "#!/bin/sh\necho locked\n", 0o644);
      const found = await trampoline(["bb", "echo", "one", "two"], { PATH: `/nowhere:${bin}` }, dir);
      assertEquals(found.result.code, 0, "", describe(found.result));
      assertEquals(found.status, null, "nothing is written on success");
      assertEquals(found.result.stdout, "one two\n", "argv as given, argv[0] included", describe(found.result));
      // Descriptor 3 was the status file: by the time the command runs it is closed.
      const fds = await trampoline(["bb", "ls", "-l", "/proc/self/fd/"], { PATH: bin }, dir);
      assertEquals(fds.result.code, 0, "", describe(fds.result));
      assertNotMatch(fds.result.stdout, /-> .*\/status$/m, "no descriptor of the command is the status file");
      assertEquals(fds.status, null, "the status descriptor was closed by the exec, not written");

      const empty = await trampoline(["here", "here"], { PATH: `/nowhere::${bin}` }, dir);
      assertEquals(empty.result.stdout, "here\n", "an empty PATH entry is the current folder", describe(empty.result));
      const slash = await trampoline(["./here", "here"], { PATH: bin }, dir);
      assertEquals(slash.result.stdout, "here\n", "a name with a slash is not searched", describe(slash.result));
      const noPath = await trampoline(["true", "true"], {}, dir);
      assertEquals([noPath.result.code, noPath.status], [0, null], "no PATH: /bin:/usr/bin", describe(noPath.result));

      const missing = await trampoline(["nosuch", "nosuch"], { PATH: bin }, dir);
      assertEquals([missing.result.code, missing.status], [127, -ERRNO.ENOENT], "not found", describe(missing.result));
      const locked = await trampoline(["locked", "locked"], { PATH: `${bin}:/nowhere` }, dir);
      assertEquals([locked.status], [-ERRNO.EACCES], "EACCES is remembered past later folders");
      const plain = await trampoline(["plain", "plain"], { PATH: `${bin}:/bin` }, dir);
      assertEquals([plain.status], [-ERRNO.ENOEXEC], "ENOEXEC stops the search, with no /bin/sh retry (as runc)");
      const none = await trampoline(["", ""], { PATH: bin }, dir);
      assertEquals([none.status], [-ERRNO.ENOENT], "an empty name is not found");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
);

Deno.test("gcr-exec run as a command (/proc/self/exe): one line on stderr, exit 127", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gcr-exec-misuse-" });
  try {
    const program = join(dir, "gcr-exec");
    Deno.writeFileSync(program, trampolineElf(), { mode: 0o755 });
    for (const args of [[], ["x", "sh", "sh"]]) {
      const result = await run(program, args);
      assertEquals(result.code, 127, "", describe(result));
      assertEquals(result.stderr, "gcr-exec: gcr's exec trampoline runs only as gcr starts a command\n", "");
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("the trampoline's memfd is sealed: no write through it or through /proc/self/fd", () => {
  const fd = sealedTrampoline();
  try {
    const byte = new Uint8Array([0x90]);
    assertEquals(Number(libc().write(fd, byte, 1n)), -1, "write to the memfd");
    assertEquals(lastErrno(), ERRNO.EPERM, "F_SEAL_WRITE refuses it");
    const again = openFd(`/proc/self/fd/${fd}`, O.WRONLY);
    try {
      assertEquals(Number(libc().write(again, byte, 1n)), -1, "write through a reopened descriptor");
      assertEquals(lastErrno(), ERRNO.EPERM, "the seal holds for every descriptor");
    } finally {
      libc().close(again);
    }
    const copy = Deno.readFileSync(`/proc/self/fd/${fd}`);
    assertEquals(copy.toBase64(), trampolineElf().toBase64(), "it holds the trampoline");
  } finally {
    libc().close(fd);
  }
});
