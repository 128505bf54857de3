"""Approvals notify only after their transaction commits, never for a rolled-back change."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction


@pytest.mark.django_db
def test_request_notifications_wait_for_the_commit(
    make_request, caplog, django_capture_on_commit_callbacks
):
    with caplog.at_level(logging.INFO, logger="notifications"):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            make_request()
        assert not [r for r in caplog.records if r.name == "notifications"]
        for callback in callbacks:
            callback()
    kinds = [r.notification_kind for r in caplog.records if r.name == "notifications"]
    assert kinds == ["request.created"]


@pytest.mark.django_db
def test_no_notification_for_a_rolled_back_change(make_request, caplog):
    class Abort(Exception):
        pass

    with (
        caplog.at_level(logging.INFO, logger="notifications"),
        pytest.raises(Abort),
        transaction.atomic(),
    ):
        make_request()
        raise Abort
    assert not [r for r in caplog.records if r.name == "notifications"]
