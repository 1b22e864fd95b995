/**
 * The host's processes as /proc shows them.
 *
 * @module
 */

/**
 * Field 22 of /proc/<pid>/stat, the process's start time in clock ticks
 * after boot, or undefined when there is no such process or it has exited
 * (a zombie, whose exit status alone waits for its parent). A pid and its
 * start time name one process: pids are recycled, the pair is not.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The fields after the command name, which is in parentheses and may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}
