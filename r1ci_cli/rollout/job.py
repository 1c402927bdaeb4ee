"""One rollout job end to end: read tasks, open the backend and the sandbox, roll out, keep, write, summarise.

``run_rollout(job)`` is what ``r1ci rollout`` calls. File outputs always go through ``ResumableOutput``
(each trajectory is appended to ``<output>.partial`` the moment it finishes, in any order; the output
appears, ordered by input position and sample, when the job ends), so ``--resume`` can continue a crashed
job, and the partial file's header (``job_settings``: the backend's and rollout options' shaping settings and
the shard) refuses a resume with other settings. On stdout trajectories stream out in input order, filtered
by ``--keep``/``--max-per-task`` on the way; when an error stops the run, the finished ones held back for
order are written first. After a resume the summary counts every trajectory of the output.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from r1ci_cli.backends import BackendOptions, open_generator
from r1ci_cli.errors import R1ciError
from r1ci_cli.progress import Progress
from r1ci_cli.records import Task
from r1ci_cli.rollout.loop import RolloutOptions, RolloutStats, rollout
from r1ci_cli.rollout.pipeline import Shard, keep_filter, output_order, shard_tasks
from r1ci_cli.rollout.prompts import load_prompts
from r1ci_cli.rollout.resume import ResumableOutput
from r1ci_cli.rollout.sandbox import SandboxSettings, open_sandbox
from r1ci_cli.settings import settings
from r1ci_cli.streams import open_records, record_sink

log = logging.getLogger("r1ci.rollout")


@dataclass(frozen=True)
class RolloutJob:
    """A rollout command: what to read and write, the backend, the rollout options, the sandbox, what to keep."""

    src: str = "-"
    output: str = "-"
    backend: BackendOptions = field(default_factory=BackendOptions)
    rollout: RolloutOptions = field(default_factory=RolloutOptions)
    sandbox: SandboxSettings = field(default_factory=SandboxSettings)
    keep: str = "all"
    max_per_task: int | None = None
    shard: Shard | None = None
    resume: bool = False
    progress: bool = True


def job_settings(job: RolloutJob) -> dict:
    """What shapes the trajectories of a job's output (``settings.py``): model, backend, sampling, prompts,
    limits, reward, seed, and which shard of the input."""
    shard = f"{job.shard.index}/{job.shard.count}" if job.shard is not None else None
    return {"backend": settings(job.backend), "rollout": settings(job.rollout), "shard": shard}


def recorded_settings(job: RolloutJob) -> dict:
    """The settings every trajectory records itself (checked against a finished output on resume)."""
    return {"temperature": job.rollout.temperature, "style": job.rollout.style, "rollout_seed": job.rollout.seed}


def run_rollout(job: RolloutJob) -> RolloutStats:
    """Run the job; return its counters (the summary line is logged on stderr)."""
    if job.resume and job.output == "-":
        raise R1ciError("--resume needs a file output (-o FILE): stdout cannot be resumed")
    load_prompts(job.rollout.prompts)  # a bad --prompts file fails here, before the output, model and sandbox
    stats = RolloutStats()
    resumable = (ResumableOutput(job.output, job.resume, job_settings(job), recorded_settings(job))
                 if job.output != "-" else None)
    if resumable is not None:
        stats.add_resumed(resumable.earlier)
    job.sandbox.check()
    generator = open_generator(job.backend)
    positions: dict[str, int] = {}
    try:
        with open_sandbox(job.sandbox, job.rollout.timeout_s) as sandbox, open_records(job.src, Task) as rows, \
                Progress(None, "rollout", enabled=job.progress) as bar:
            tasks = shard_tasks(rows, job.shard, positions)
            skip = resumable.done_ids if resumable is not None else ()
            stats.started = time.monotonic()  # tokens/s and wait shares exclude loading the model and the pool
            trajectories = rollout(tasks, generator, sandbox, job.rollout, skip=skip, stats=stats,
                                   ordered=resumable is None)

            def counted(items):
                for traj in items:
                    bar.update(acc=f"{stats.num_correct / max(stats.num_trajectories, 1):.2f}")
                    yield traj

            if resumable is None:
                with record_sink("-") as sink:
                    for traj in keep_filter(counted(trajectories), job.keep, job.max_per_task):
                        sink.write(traj)
                        sink.flush()
            else:
                for traj in counted(trajectories):
                    resumable.write(traj)
        if resumable is not None:
            written = resumable.finish(output_order(positions),
                                       keep=lambda rows: keep_filter(rows, job.keep, job.max_per_task))
            log.info("wrote %d trajectories to %s", written, job.output)
    finally:
        if resumable is not None:
            resumable.close()
        generator.close()
    log.info("%s", stats.summary())
    return stats
