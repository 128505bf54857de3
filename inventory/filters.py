"""django-filter sets for the inventory API."""

from datetime import timedelta

import django_filters
from django.db.models import F, Q
from django.utils import timezone

from inventory import readiness
from inventory.choices import Environment, Platform, State, Tier
from inventory.models import Resource, ResourceGroup


class ResourceFilter(django_filters.FilterSet):
    platform = django_filters.ChoiceFilter(choices=Platform.choices)
    tier = django_filters.TypedChoiceFilter(choices=Tier.choices, coerce=int)
    environment = django_filters.ChoiceFilter(choices=Environment.choices)
    site = django_filters.CharFilter(method="filter_site", label="site name (primary or DR)")
    status = django_filters.ChoiceFilter(
        choices=[*State.choices, ("lost", "Loss of visibility")],
        method="filter_status",
        label="status state, or 'lost' for loss of visibility",
    )
    q = django_filters.CharFilter(method="filter_q", label="search name or owner")

    class Meta:
        model = Resource
        fields = ["platform", "tier", "environment", "enabled"]

    def filter_site(self, queryset, name, value):
        return queryset.filter(primary_site__name=value) | queryset.filter(dr_site__name=value)

    def filter_status(self, queryset, name, value):
        # The status as shown (rules.at_read_time), not only as stored: values older than the
        # resource's freshness requirement count as lost and never as green (invariant 9).
        never = Q(status__isnull=True) | Q(status__observed_at__isnull=True)
        lost = Q(status__visibility="lost") | never | self._stale(queryset)
        if value == "lost":
            return queryset.filter(lost)
        # The read-time yellow reasons (drill_overdue, unexpected_primary_site) turn green yellow.
        attention = self._drill_overdue() | self._unexpected_primary_site()
        if value == "green":
            return queryset.filter(Q(status__state="green") & ~lost & ~attention)
        if value == "yellow":
            turned = Q(status__state="green") & (lost | attention)
            shown_yellow = Q(status__state="yellow") | turned
            return queryset.filter(shown_yellow & ~never)
        return queryset.filter(Q(status__state="red") | never)

    @staticmethod
    def _drill_overdue():
        # rules.drill_reason in SQL: last passed drill older than the tier's cadence, or none
        # and added longer ago than the grace period.
        now = timezone.now()
        overdue = Q(pk__in=[])
        for tier in Tier.values:
            cadence = timedelta(days=readiness.drill_cadence_days(tier))
            grace = timedelta(days=readiness.drill_grace_days(tier))
            overdue |= Q(tier=tier) & (
                Q(last_passed_drill_at__lt=now - cadence)
                | Q(last_passed_drill_at__isnull=True, created_at__lt=now - grace)
            )
        return overdue

    @staticmethod
    def _unexpected_primary_site():
        # rules.site_reason in SQL: the one observed primary is not at the recorded current site
        # (empty current_site: the primary site), and the observation is not older than the move.
        at_primary = Q(status__primary_role="primary") & ~Q(status__dr_role="primary")
        at_dr = Q(status__dr_role="primary") & ~Q(status__primary_role="primary")
        recorded_elsewhere_than_primary = Q(current_site__isnull=False) & ~Q(
            current_site=F("primary_site")
        )
        recorded_elsewhere_than_dr = Q(current_site__isnull=True) | ~Q(current_site=F("dr_site"))
        comparable = Q(status__observed_at__isnull=False) & (
            Q(current_site_changed_at__isnull=True)
            | Q(status__observed_at__gte=F("current_site_changed_at"))
        )
        return comparable & (
            (at_primary & recorded_elsewhere_than_primary) | (at_dr & recorded_elsewhere_than_dr)
        )

    @staticmethod
    def _stale(queryset):
        # Freshness is per resource; there are few distinct values, so one condition each
        # keeps this portable (no interval arithmetic, which SQLite lacks).
        now = timezone.now()
        stale = Q(pk__in=[])
        values = queryset.model.objects.values_list("freshness_seconds", flat=True).distinct()
        for seconds in values.order_by():
            cutoff = now - timedelta(seconds=seconds)
            stale |= Q(freshness_seconds=seconds, status__observed_at__lt=cutoff)
        return stale

    def filter_q(self, queryset, name, value):
        return queryset.filter(name__icontains=value) | queryset.filter(owner__icontains=value)


class GroupFilter(django_filters.FilterSet):
    tier = django_filters.TypedChoiceFilter(choices=Tier.choices, coerce=int)

    class Meta:
        model = ResourceGroup
        fields = ["tier"]
