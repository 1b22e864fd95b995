/**
 * The verbs main.ts loads only when one of them is asked for: those that
 * make, enter or list containers (and so load the planner, the steps, the
 * chain and the runner). One module, so that the bundle puts them in one
 * chunk: one dynamic import, not one per verb. What stays in main.ts's own
 * chunk is what engines call most and what does little: state, kill,
 * start, delete, pause, resume.
 *
 * @module
 */
export { createCommand } from "./create.ts";
export { execCommand } from "./exec.ts";
export { explainCommand } from "./explain.ts";
export { inspectCommand } from "./inspect.ts";
export { logsCommand } from "./logs.ts";
export { exitedCommand, monitorCommand } from "./monitor.ts";
export { pruneCommand } from "./prune.ts";
export { psCommand } from "./ps.ts";
export { rmCommand } from "./rm.ts";
export { runCommand } from "./run.ts";
export { stopCommand } from "./stop.ts";
