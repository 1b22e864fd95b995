/**
 * Loading firewall rules through the host's own programs: `nft -f` and
 * `iptables-restore --noflush`, each given a whole script, so that a
 * container's rules go in (or out) in one transaction.
 *
 * @module
 */
import { IPTABLES_RESTORE_ARGS } from "../steps/connect_bridge.ts";
import type { NatBackend } from "../steps/plan.ts";

/** Where the firewall programs live; sbin is often off a non-login $PATH. */
const PROGRAM_DIRS = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"];

/** Whether `program` is installed. */
export function installed(program: string): boolean {
  return PROGRAM_DIRS.some((dir) => {
    try {
      return Deno.statSync(`${dir}/${program}`).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * Runs nft (`-f FILE`) or iptables-restore (`--noflush --wait=10 FILE`) on `script`;
 * throws with the program's message, unless it matches `absentIs` (what is
 * to be removed is not there: already undone).
 */
export function loadRules(backend: NatBackend, script: string, absentIs?: RegExp): void {
  const file = Deno.makeTempFileSync({ prefix: `gcr-${backend}-` });
  try {
    Deno.writeTextFileSync(file, script);
    const [program, args] = backend === "nft"
      ? ["nft", ["-f", file]]
      : ["iptables-restore", [...IPTABLES_RESTORE_ARGS, file]];
    const result = new Deno.Command(program, { args, stdout: "null", stderr: "piped" }).outputSync();
    const message = new TextDecoder().decode(result.stderr).trim();
    if (!result.success && !(absentIs && absentIs.test(message))) {
      throw new Error(`${program} ${args[0]}: ${message.split("\n")[0]}`);
    }
  } finally {
    Deno.removeSync(file);
  }
}

/** What `iptables-save -t TABLE` prints: the table as iptables-restore reads it. */
export function savedIptables(table: string): string {
  const result = new Deno.Command("iptables-save", { args: ["-t", table], stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!result.success) {
    throw new Error(`iptables-save -t ${table}: ${new TextDecoder().decode(result.stderr).trim().split("\n")[0]}`);
  }
  return new TextDecoder().decode(result.stdout);
}

/**
 * Removes what `removal` (chainsRemoval) finds of a container's chains in
 * iptables' `table`; nothing when none of it is there.
 */
export function removeIptablesChains(table: string, removal: (saved: string) => string | undefined): void {
  const script = removal(savedIptables(table));
  if (script) loadRules("iptables", script);
}
