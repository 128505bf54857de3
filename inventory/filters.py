"""django-filter sets for the inventory API."""

import django_filters

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
        if value == "lost":
            return queryset.filter(status__visibility="lost")
        return queryset.filter(status__state=value)

    def filter_q(self, queryset, name, value):
        return queryset.filter(name__icontains=value) | queryset.filter(owner__icontains=value)


class GroupFilter(django_filters.FilterSet):
    tier = django_filters.TypedChoiceFilter(choices=Tier.choices, coerce=int)

    class Meta:
        model = ResourceGroup
        fields = ["tier"]
