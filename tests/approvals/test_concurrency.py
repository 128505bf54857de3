"""Real concurrency on PostgreSQL: votes and cancels racing on the same request, from threads
with their own connections. The row lock must leave one consistent history, and the audit
chain must verify afterwards."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from approvals import services
from approvals.choices import TRANSITIONS
from approvals.exceptions import VoteConflict
from approvals.models import Approval, ExecutionRequest
from audit.models import AuditEvent
from audit.selectors import verify_chain
from bcservice.api.exceptions import IllegalTransition

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]
ROUNDS = 8


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at the same instant; return each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as exc:  # reported to the test
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _fresh(pk: int) -> ExecutionRequest:
    return ExecutionRequest.objects.get(pk=pk)


def _path_is_legal(request: ExecutionRequest) -> None:
    """The request's audit events, in chain order, walk the state machine legally."""
    state = "pending_approval"
    for event in (
        AuditEvent.objects.filter(
            object_type="approvals.executionrequest",
            object_id=str(request.pk),
            action__startswith="request.",
        )
        .exclude(action="request.created")
        .order_by("seq")
    ):
        assert event.before["state"] == state
        assert event.after["state"] in TRANSITIONS[state]
        state = event.after["state"]
    assert state == request.state


def test_two_approvers_at_the_same_instant(make_request, people):
    for _ in range(ROUNDS):
        request = make_request()
        results = race(
            lambda r=request: services.request_approve(_fresh(r.pk), actor=people["it"]),
            lambda r=request: services.request_approve(_fresh(r.pk), actor=people["biz"]),
        )
        assert all(isinstance(r, Approval) for r in results), results
        request.refresh_from_db()
        assert request.state == "approved"
        assert Approval.objects.filter(request=request).count() == 2
        approved_events = AuditEvent.objects.filter(
            action="request.approved", object_id=str(request.pk)
        )
        assert approved_events.count() == 1
        _path_is_legal(request)
    assert verify_chain().ok


def test_same_person_twice_at_the_same_instant(make_request, people):
    for _ in range(ROUNDS):
        request = make_request()
        results = race(
            lambda r=request: services.request_approve(_fresh(r.pk), actor=people["both"]),
            lambda r=request: services.request_approve(_fresh(r.pk), actor=people["both"]),
        )
        assert sum(isinstance(r, Approval) for r in results) == 1
        assert sum(isinstance(r, VoteConflict) for r in results) == 1, results
        request.refresh_from_db()
        assert request.state == "pending_approval"
        assert Approval.objects.filter(request=request).count() == 1
    assert verify_chain().ok


def test_approve_racing_cancel(make_request, people):
    outcomes = set()
    for _ in range(ROUNDS):
        request = make_request()
        services.request_approve(request, actor=people["it"])
        vote, cancel = race(
            lambda r=request: services.request_approve(_fresh(r.pk), actor=people["biz"]),
            lambda r=request: services.request_cancel(_fresh(r.pk), actor=people["op"]),
        )
        request.refresh_from_db()
        # Either order ends cancelled: approve-then-cancel is legal, cancel-then-approve refused.
        assert request.state == "cancelled"
        assert not isinstance(cancel, BaseException), cancel
        if isinstance(vote, Approval):
            outcomes.add("approved first")
            assert Approval.objects.filter(request=request).count() == 2
            assert AuditEvent.objects.filter(
                action="request.approved", object_id=str(request.pk)
            ).exists()
        else:
            outcomes.add("cancelled first")
            assert isinstance(vote, IllegalTransition), vote
            assert vote.current_state == "cancelled"
            assert Approval.objects.filter(request=request).count() == 1
        _path_is_legal(request)
    assert verify_chain().ok
    assert outcomes  # which orders happened is up to the scheduler


def test_sweep_racing_a_vote_on_an_overdue_request(make_request, people):
    from datetime import timedelta

    from django.utils import timezone

    for _ in range(ROUNDS):
        request = make_request()
        services.request_approve(request, actor=people["it"])
        ExecutionRequest.objects.filter(pk=request.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
        race(
            services.requests_expire_due,
            lambda r=request: services.request_approve(_fresh(r.pk), actor=people["biz"]),
        )
        request.refresh_from_db()
        # Whatever the order, an overdue request ends expired and never approved-and-startable.
        assert request.state == "expired"
        _path_is_legal(request)
    assert verify_chain().ok
