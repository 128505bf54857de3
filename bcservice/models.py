"""The project app's own rows: the job-runtime histogram's counters (bcservice/metrics.py).

They live in the database, like the rest of the state /metrics reports, so every web replica
scrapes the same monotonically growing counts whichever worker, on whichever host, ran the task,
and a worker restart loses nothing.
"""

from __future__ import annotations

from django.db import models


class TaskRuntimeBucket(models.Model):
    """Tasks of ``func`` that ended with ``outcome`` and ran in the bucket ending at ``le`` seconds
    (more than the next smaller bound): ``count`` of them, ``seconds`` their summed runtime."""

    func = models.CharField(max_length=120)
    outcome = models.CharField(max_length=8)  # success | failure
    le = models.CharField(max_length=16)  # the bucket's upper bound as exposed, or "+Inf"
    count = models.PositiveBigIntegerField(default=0)
    seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["func", "outcome", "le"], name="bc_task_runtime_bucket_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.func} {self.outcome} le={self.le}: {self.count}"
