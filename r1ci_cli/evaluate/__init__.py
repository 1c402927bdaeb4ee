"""Evaluation: roll out test tasks with one or several models, and summarise trajectories into accuracy tables,
a markdown report and a plot (``r1ci eval``).

* ``accuracy.py``: what accuracy is (per task the mean of ``correct``; per source, split and overall the mean
  over tasks, as the paper reports), intervals, pass@k and behaviour counts. ``overall_accuracy`` is
  the one overall number every table uses (``eval report``, the README's ablation table).
* ``job.py``: the ``eval run`` / ``eval report`` jobs (rollouts through ``rollout.job``).
* ``report.py``: the markdown report and the PNG plot.
"""

from r1ci_cli.evaluate.accuracy import Row, overall_accuracy, summarize

__all__ = ["Row", "overall_accuracy", "summarize"]
