/**
 * How the command is found and started: PATH inside the container, 126/127,
 * its environment, working directory, and descriptors.
 */
import {
  busyboxRootfs,
  describe,
  GCR,
  gcr,
  gcrOk,
  missingRoot,
  named,
  REPO,
  ROOTFS_DIR,
  run,
  which,
} from "../fixtures.ts";
import { assert, assertEquals, assertIncludes, assertMatch, lines } from "../helpers.ts";

Deno.test(
  named("the command is looked up on the container's PATH: `ls /` lists the rootfs", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcrOk(["run", "-q", "busybox", "ls", "/"]);
    const names = lines(result.stdout);
    for (const name of ["bin", "dev", "etc", "proc", "sys", "tmp"]) {
      assert(names.includes(name), `ls / inside lists ${name}`, describe(result));
    }
    assert(
      !names.includes("work") && !names.includes("home"),
      "ls / shows the rootfs, not the host's /",
      describe(result),
    );
  },
);

Deno.test(
  named("stdin, stdout and stderr are the caller's: `echo hi | gcr run busybox cat`", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcrOk(["run", "-q", "busybox", "sh", "-c", "cat; echo to-stderr >&2"], {
      stdin: "hi\nthere\n",
    });
    assertEquals(result.stdout, "hi\nthere\n", "cat echoes stdin", describe(result));
    assertEquals(result.stderr, "to-stderr\n", "stderr", describe(result));
  },
);

Deno.test(
  named("a command that exists only on the host (deno) gives exit 127 and one line", missingRoot()),
  async () => {
    await busyboxRootfs();
    assert(which("deno"), "deno is on the host's PATH (the premise of this test)");
    const result = await gcr(["run", "-q", "busybox", "deno", "--version"]);
    assertEquals(result.code, 127, "exit status", describe(result));
    assertEquals(lines(result.stderr).length, 1, "stderr: one line", describe(result));
    assertMatch(
      result.stderr,
      /^gcr: step exec: execvp\("deno", \{"deno", "--version"\}\): ENOENT \(No such file or directory\)(: .+)?\n$/,
      "stderr names the call and errno",
      describe(result),
    );
    assertEquals(result.stdout, "", "stdout", describe(result));
  },
);

Deno.test(named("a file that is not executable gives exit 126 and one line", missingRoot()), async () => {
  await busyboxRootfs();
  const result = await gcr(["run", "-q", "busybox", "/etc/passwd"]);
  assertEquals(result.code, 126, "exit status", describe(result));
  assertEquals(lines(result.stderr).length, 1, "stderr: one line", describe(result));
  assertMatch(
    result.stderr,
    /^gcr: step exec: execvp\("\/etc\/passwd", \{"\/etc\/passwd"\}\): EACCES \(Permission denied\)(: .+)?\n$/,
    "stderr names the call and errno",
    describe(result),
  );
});

function envOf(stdout: string): Map<string, string> {
  return new Map(lines(stdout).map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]));
}

Deno.test(
  named("the environment is PATH, HOSTNAME, HOME=/root, TERM from gcr's, and -e entries", missingRoot()),
  async () => {
    await busyboxRootfs();
    const result = await gcrOk(
      [
        "run",
        "-q",
        "-e",
        "FOO=bar",
        "--env",
        "GCR_TEST_FROM_HOST",
        "-e",
        "HOME=/home/x",
        "busybox",
        "sh",
        "-c",
        "env; hostname",
      ],
      { env: { TERM: "xterm-gcr-test", GCR_TEST_FROM_HOST: "taken", GCR_TEST_NOT_PASSED: "secret" } },
    );
    const output = lines(result.stdout);
    const hostname = output.at(-1)!;
    const env = envOf(output.slice(0, -1).join("\n"));
    assertEquals(
      env.get("PATH"),
      "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "PATH",
      describe(result),
    );
    assertEquals(env.get("HOSTNAME"), hostname, "HOSTNAME is the hostname", describe(result));
    assertEquals(env.get("HOME"), "/home/x", "HOME, overridden by -e", describe(result));
    assertEquals(env.get("TERM"), "xterm-gcr-test", "TERM from gcr's environment", describe(result));
    assertEquals(env.get("FOO"), "bar", "-e FOO=bar", describe(result));
    assertEquals(env.get("GCR_TEST_FROM_HOST"), "taken", "--env NAME takes gcr's value", describe(result));
    assertEquals(env.get("GCR_TEST_NOT_PASSED"), undefined, "gcr's other variables do not leak in", describe(result));

    const plain = await gcrOk(["run", "-q", "busybox", "env"], { unsetEnv: ["TERM"] });
    const plainEnv = envOf(plain.stdout);
    assertEquals(plainEnv.get("HOME"), "/root", "HOME by default", describe(plain));
    assertEquals(plainEnv.has("TERM"), false, "no TERM when gcr has none", describe(plain));
    // busybox sh adds PWD and SHLVL only when a shell runs; env alone shows exactly gcr's.
    assertEquals(
      [...plainEnv.keys()].toSorted(),
      ["HOME", "HOSTNAME", "PATH"],
      "env names by default",
      describe(plain),
    );
  },
);

Deno.test(named("-w /etc sets the working directory: pwd prints /etc", missingRoot()), async () => {
  await busyboxRootfs();
  for (const flag of ["-w", "--workdir"]) {
    const result = await gcrOk(["run", "-q", flag, "/etc", "busybox", "pwd"]);
    assertEquals(result.stdout, "/etc\n", `pwd with ${flag} /etc`, describe(result));
  }
  const missing = await gcr(["run", "-q", "-w", "/nonexistent", "busybox", "pwd"]);
  assertEquals(missing.code, 125, "a missing workdir fails", describe(missing));
  assertIncludes(missing.stderr, 'chdir("/nonexistent"): ENOENT', "names the chdir", describe(missing));
});

Deno.test(named("only fds 0, 1 and 2 reach the command, even when gcr inherited more", missingRoot()), async () => {
  await busyboxRootfs();
  // The wrapper shell hands gcr an extra descriptor (7, not close-on-exec).
  // Inside, pid 1 (the shell) is inspected from its child ls.
  const result = await run("/bin/sh", [
    "-c",
    'exec 7</etc/hostname; exec "$0" run -q --rootfs-dir "$1" busybox sh -c "ls /proc/1/fd; true"',
    GCR,
    ROOTFS_DIR,
  ], { cwd: REPO });
  assertEquals(result.code, 0, "exit status", describe(result));
  assertEquals(lines(result.stdout), ["0", "1", "2"], "descriptors of the container's pid 1", describe(result));
});
