"""The request state machine: every pair of states, legal or not, through the one function."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from approvals.choices import ACTIVE, TERMINAL, TRANSITIONS, RequestState
from approvals.models import ExecutionRequest
from approvals.services import transition
from audit.models import AuditEvent
from bcservice.api.exceptions import IllegalTransition

STATES = list(RequestState.values)
PAIRS = list(itertools.product(STATES, STATES))


def test_groups_partition_the_states():
    assert set(STATES) == ACTIVE | TERMINAL and not ACTIVE & TERMINAL
    assert set(TRANSITIONS) == set(STATES)
    assert all(not TRANSITIONS[s] for s in TERMINAL)  # a failed request is never reused


def _in_state(make_request, state: str) -> ExecutionRequest:
    request = make_request()
    # Test setup only: put the row in the starting state without going through the machine.
    ExecutionRequest.objects.filter(pk=request.pk).update(state=state)
    request.refresh_from_db()
    return request


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition(make_request, people, source, target):
    request = _in_state(make_request, source)
    events = AuditEvent.objects.filter(action=f"request.{target}").count()
    if target in TRANSITIONS[source]:
        transition(request, target, actor=people["admin"], reason="test")
        request.refresh_from_db()
        assert request.state == target
        event = AuditEvent.objects.filter(action=f"request.{target}").latest("seq")
        assert event.before == {"state": source}
        assert event.after["state"] == target and event.object_id == str(request.pk)
    else:
        with pytest.raises(IllegalTransition) as err:
            transition(request, target, actor=people["admin"], reason="test")
        assert err.value.current_state == source
        request.refresh_from_db()
        assert request.state == source
        assert AuditEvent.objects.filter(action=f"request.{target}").count() == events


@pytest.mark.django_db
def test_stale_copy_cannot_make_an_illegal_move(make_request, people):
    """Legality is judged on the locked row, not on the caller's (stale) instance."""
    request = make_request()
    stale = ExecutionRequest.objects.get(pk=request.pk)
    transition(request, RequestState.CANCELLED, actor=people["op"], reason="x")
    with pytest.raises(IllegalTransition) as err:
        transition(stale, RequestState.APPROVED, actor=people["admin"], reason="x")
    assert err.value.current_state == "cancelled"


@pytest.mark.django_db
def test_transition_keeps_timestamps(make_request, people):
    request = make_request()
    transition(request, RequestState.RUNNING, actor=people["op"], reason="x")
    assert request.started_at is not None
    transition(request, RequestState.FAILED, actor="worker", reason="boom")
    request.refresh_from_db()
    assert request.finished_at is not None and request.state_reason == "boom"
    assert request.history.count() >= 3


def test_only_the_transition_module_assigns_state():
    root = Path(__file__).resolve().parents[2] / "approvals"
    offenders = []
    for path in root.rglob("*.py"):
        if "migrations" in path.parts or path.name == "transitions.py":
            continue
        text = path.read_text()
        # attribute assignment, or a bulk update of the state column
        if re.search(r"\.state\s*=(?!=)", text) or re.search(r"update\([^)]*\bstate\s*=", text):
            offenders.append(str(path))
    assert not offenders
