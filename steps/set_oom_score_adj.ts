import { type Step } from "./step.ts";

/**
 * config.json's process.oomScoreAdj, written by gcr into the child's
 * /proc/<pid>/oom_score_adj, whence every process it execs and forks
 * inherits it. The kernel lets anyone raise it but lowers it only for
 * holders of CAP_SYS_RESOURCE; engines ask for -998 on every pod's sandbox,
 * so a refusal is a warning in --log and the container runs (runc fails
 * there, which makes such a machine useless to Kubernetes). Right after
 * map-ids: a rootless gcr may write the file only while the child is still
 * dumpable.
 */
export function setOomScoreAdj(score: number): Step {
  return {
    name: "set-oom-score-adj",
    why: `how readily the kernel's OOM killer picks the container: ${score}, as config.json asks`,
    parent: [{
      op: "write-proc-file",
      file: "oom_score_adj",
      content: String(score),
      refused: (why) => `process.oomScoreAdj: ${score} not applied (${why}): the container keeps its parent's`,
    }],
    child: [],
  };
}
