"""What monitoring knows about each resource: the current status and the lag history.

``ResourceStatus`` holds one row per resource: the last evaluated status with its reasons, the
last *successful* observation's values and when they were seen (so a loss of visibility shows
last-known values with their age), and the collection lease used by the sweep.

``ObservationSample`` is the raw time series (kept 24 h+). Its primary key is
(resource, at), which is also the only index the history query needs, keeping each row small
enough for 10,000 resources at a 15 s cycle. ``ObservationRollup`` keeps coarser buckets longer.
"""

from django.db import models

from inventory.choices import State, Visibility
from inventory.models.inventory import Resource


class ResourceStatus(models.Model):
    resource = models.OneToOneField(
        Resource, on_delete=models.CASCADE, primary_key=True, related_name="status"
    )
    state = models.CharField(max_length=8, choices=State.choices, default=State.RED, db_index=True)
    visibility = models.CharField(
        max_length=8, choices=Visibility.choices, default=Visibility.LOST, db_index=True
    )
    reasons = models.JSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    # Values from the last observation in which the target could be seen.
    observed_at = models.DateTimeField(null=True, blank=True)
    lag_seconds = models.FloatField(null=True, blank=True)
    lag_bytes = models.BigIntegerField(null=True, blank=True)
    primary_marker = models.CharField(max_length=100, blank=True)
    dr_marker = models.CharField(max_length=100, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    replication = models.CharField(max_length=16, blank=True)
    primary_role = models.CharField(max_length=16, blank=True)
    dr_role = models.CharField(max_length=16, blank=True)
    # The latest attempt, successful or not (sanitized connector output).
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_observation = models.JSONField(default=dict, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # Collection scheduling and the per-resource lease that keeps two workers apart.
    next_collect_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "resource statuses"

    def __str__(self) -> str:
        return f"{self.resource_id}: {self.state}/{self.visibility}"


class ObservationSample(models.Model):
    pk = models.CompositePrimaryKey("resource_id", "at")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, db_constraint=False)
    at = models.DateTimeField()
    lag_seconds = models.FloatField(null=True)
    lag_bytes = models.BigIntegerField(null=True)
    state = models.CharField(max_length=8, choices=State.choices)
    visible = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["at"], name="obs_sample_at_idx")]

    def __str__(self) -> str:
        return f"{self.resource_id}@{self.at.isoformat()}"


class ObservationRollup(models.Model):
    """One bucket of history: min/avg/max lag and the worst state seen in it."""

    pk = models.CompositePrimaryKey("resource_id", "bucket_seconds", "bucket_start")
    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, db_constraint=False)
    bucket_seconds = models.PositiveIntegerField()
    bucket_start = models.DateTimeField()
    samples = models.PositiveIntegerField()
    lag_seconds_min = models.FloatField(null=True)
    lag_seconds_avg = models.FloatField(null=True)
    lag_seconds_max = models.FloatField(null=True)
    lag_bytes_max = models.BigIntegerField(null=True)
    worst_state = models.CharField(max_length=8, choices=State.choices)
    invisible_samples = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.resource_id}@{self.bucket_start.isoformat()}/{self.bucket_seconds}s"
