"""Serializer helpers shared by the apps' API packages."""

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from rest_framework import serializers


class ModelCleanMixin:
    """Run the model's own ``full_clean`` on the would-be instance so the API refuses exactly
    what the admin refuses, with the same field errors (as HTTP 400)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        model: type[models.Model] = self.Meta.model
        instance = model() if self.instance is None else self._copy(self.instance)
        for key, value in attrs.items():
            try:
                field = model._meta.get_field(key)
            except FieldDoesNotExist:
                continue  # a write-only helper field (e.g. member_ids), not a model field
            if not field.many_to_many:
                setattr(instance, key, value)
        try:
            instance.full_clean(validate_unique=True)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    @staticmethod
    def _copy(instance: models.Model) -> models.Model:
        clone = type(instance)()
        for field in instance._meta.concrete_fields:
            setattr(clone, field.attname, getattr(instance, field.attname))
        clone._state.adding = False
        return clone


# Query times before this are refused with a field error: nothing the service stores predates
# it, and a default computed as "until minus a period" from a time near year 1 overflows
# ``datetime`` (it was an HTTP 500).
EARLIEST_QUERY_TIME = datetime(1970, 1, 1, tzinfo=UTC)


class QueryDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time in a query (``since``, ``until``), no earlier than 1970-01-01 UTC."""

    default_error_messages = {"too_early": "Must be on or after 1970-01-01T00:00:00Z."}

    def to_internal_value(self, value: Any) -> datetime:
        parsed = super().to_internal_value(value)
        if parsed < EARLIEST_QUERY_TIME:
            self.fail("too_early")
        return parsed


class NameRelatedField(serializers.SlugRelatedField):
    """``SlugRelatedField`` that refuses text no database lookup can take, before looking it up:
    PostgreSQL refuses NUL in text and UTF-8 cannot carry an unpaired surrogate (both were an
    HTTP 500). Plain ``CharField`` refuses them already; related fields did not."""

    default_error_messages = {
        "null_characters": "Null characters are not allowed.",
        "surrogate_characters": "Surrogate characters are not allowed.",
    }

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            if "\x00" in data:
                self.fail("null_characters")
            try:
                data.encode("utf-8")
            except UnicodeEncodeError:
                self.fail("surrogate_characters")
        return super().to_internal_value(data)
