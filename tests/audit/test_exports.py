"""Exports: streamed JSONL/CSV that round-trip through the standalone verifier, CSV escaping,
a stable snapshot while events arrive, and configuration history."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from audit import exports, selectors, services
from audit.checkpoints import checkpoint_create
from audit.models import AuditEvent

HOSTILE = [
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@import",
    "\tTAB",
    "\rCR",
    'quote " inside, and a comma',
    "two\nlines\r\nand more",
    "plain",
]


def _download(client, query: str = "format=jsonl") -> bytes:
    response = client.get(reverse("audit-events") + "?" + query)
    assert response.status_code == 200 and response.streaming
    return b"".join(response.streaming_content)


def _run_verifier(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "audit.verify", *args],
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # no DJANGO_SETTINGS_MODULE: it must not need one
    )


@pytest.fixture
def exported(client_for, users, signing_keys, tmp_path) -> Path:
    for i in range(6):
        services.record(action="export.event", object_name=HOSTILE[i], after={"i": i, "s": HOSTILE})
    checkpoint_create()
    services.record(action="export.event", object_name="after the checkpoint")
    path = tmp_path / "events.jsonl"
    path.write_bytes(_download(client_for(users["auditor"])))
    return path


@pytest.mark.django_db
def test_jsonl_export_has_header_events_and_a_trailer_with_its_checkpoint(exported):
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    header, events, trailer = lines[0], lines[1:-1], lines[-1]
    assert header["record"] == "header" and header["format"] == "bcservice.audit.events"
    assert header["filtered"] is False
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) == AuditEvent.objects.count()
    assert trailer["record"] == "trailer" and trailer["events"] == len(events)
    last_checkpointed = AuditEvent.objects.order_by("-seq")[1]
    assert trailer["checkpoint"]["seq"] == last_checkpointed.seq


@pytest.mark.django_db
def test_export_round_trips_through_the_standalone_verifier(exported, signing_keys):
    done = _run_verifier(str(exported), "--public-key", str(signing_keys[1]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "VERIFIED" in done.stdout and "signature verified" in done.stdout
    assert "matches event" in done.stdout


@pytest.mark.django_db
def test_verifier_json_output_and_separate_checkpoint_file(exported, signing_keys, audit_storage):
    checkpoint = next((audit_storage / "checkpoints").glob("*.json"))
    done = _run_verifier(
        str(exported),
        "--checkpoint",
        str(checkpoint),
        "--public-key",
        str(signing_keys[1]),
        "--json",
    )
    result = json.loads(done.stdout)
    assert (
        done.returncode == 0
        and result["ok"]
        and result["covered_through"] == result["last_seq"] - 1
    )


@pytest.mark.django_db
def test_verifier_names_a_changed_event(exported, signing_keys):
    lines = exported.read_text().splitlines()
    event = json.loads(lines[3])
    event["object_name"] = "forged"
    lines[3] = json.dumps(event)
    exported.write_text("\n".join(lines) + "\n")
    done = _run_verifier(str(exported), "--public-key", str(signing_keys[1]))
    assert done.returncode == 1
    assert f"chain broken at seq {event['seq']}" in done.stdout


@pytest.mark.django_db
def test_verifier_catches_a_rewritten_file_with_recomputed_hashes(exported, signing_keys):
    from audit.chain import event_hash

    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    events = lines[1:-1]
    target, checkpointed = events[2]["seq"], lines[-1]["checkpoint"]["seq"]
    prev = None
    for record in events:
        if record["seq"] == target:
            record["object_name"] = "forged"
        if record["seq"] >= target:
            record["prev_hash"] = prev
            record["hash"] = event_hash(record)
        prev = record["hash"]
    exported.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    done = _run_verifier(str(exported), "--public-key", str(signing_keys[1]))
    assert done.returncode == 1
    assert f"chain broken at seq {checkpointed}" in done.stdout
    assert "signed checkpoint" in done.stdout and "trailer counts" not in done.stdout


@pytest.mark.django_db
def test_verifier_refuses_a_cut_off_download(exported):
    data = exported.read_bytes()
    exported.write_bytes(b"\n".join(data.splitlines()[:-2]) + b"\n")
    done = _run_verifier(str(exported))
    assert done.returncode == 1 and "incomplete" in done.stdout
    exported.write_bytes(data[: len(data) // 2])  # cut in the middle of a line
    done = _run_verifier(str(exported))
    assert done.returncode == 1 and "cut off" in done.stdout and "incomplete" in done.stdout


@pytest.mark.django_db
def test_verifier_reports_a_forged_checkpoint(exported, signing_keys):
    lines = exported.read_text().splitlines()
    trailer = json.loads(lines[-1])
    trailer["checkpoint"]["hash"] = "f" * 64
    lines[-1] = json.dumps(trailer)
    exported.write_text("\n".join(lines) + "\n")
    done = _run_verifier(str(exported), "--public-key", str(signing_keys[1]))
    assert done.returncode == 1 and "forged" in done.stdout


@pytest.mark.django_db
def test_verifier_unreadable_input_exits_2(tmp_path):
    (tmp_path / "bad.jsonl").write_text("not json\n")
    assert _run_verifier(str(tmp_path / "bad.jsonl")).returncode == 1
    assert _run_verifier(str(tmp_path / "missing.jsonl")).returncode == 2
    assert (
        _run_verifier(str(tmp_path / "bad.jsonl"), "--public-key", "/nonexistent").returncode == 2
    )


def test_standalone_verifier_imports_nothing_from_django():
    code = (
        "import sys, audit.verify; "
        "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=django_settings.BASE_DIR, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db
def test_filtered_export_verifies_with_gaps(client_for, users, signing_keys, tmp_path):
    for i in range(6):
        services.record(action="even" if i % 2 == 0 else "odd", object_id=i)
    path = tmp_path / "even.jsonl"
    path.write_bytes(_download(client_for(users["auditor"]), "format=jsonl&kind=even"))
    assert json.loads(path.read_text().splitlines()[0])["filtered"] is True
    done = _run_verifier(str(path))
    assert done.returncode == 0, done.stdout
    assert "filtered export" in done.stdout


@pytest.mark.django_db
def test_export_is_a_snapshot_of_the_head_at_its_start():
    for i in range(5):
        services.record(action="snap.event", object_id=i)
    export = exports.events_export(selectors.events(), filters={}, filtered=False)
    chunks = exports.jsonl_chunks(export, batch=1)
    first_two = [next(chunks), next(chunks)]
    services.record(action="snap.event", object_id="late")  # arrives mid-download
    rest = b"".join(chunks)
    lines = [json.loads(x) for x in b"".join([*first_two, rest]).splitlines()]
    assert lines[-1]["last_seq"] == lines[0]["head_seq"] == 5
    assert "late" not in [line.get("object_id") for line in lines]


@pytest.mark.django_db
def test_csv_escapes_hostile_values(client_for, users):
    for value in HOSTILE:
        services.record(action="csv.event", object_name=value, actor=value, after={"v": value})
    body = _download(client_for(users["auditor"]), "format=csv&kind=csv.").decode()
    rows = list(csv.reader(io.StringIO(body, newline="")))
    header, events, meta = rows[0], rows[1:-1], rows[-1]
    assert header[:4] == ["seq", "at", "actor_id", "actor_name"]
    names = [dict(zip(header, row))["object_name"] for row in events]
    for value, cell in zip(HOSTILE, names, strict=True):
        if value[0] in "=+-@\t\r":
            assert cell == "'" + value  # shown as text, never evaluated
        else:
            assert cell == value  # quotes, commas and newlines survive intact
    assert all(not c.startswith(("=", "+", "-", "@")) for row in events for c in row)
    assert meta[0] == "# export" and json.loads(meta[1])["events"] == len(HOSTILE)
    assert len(meta) == len(header)


@pytest.mark.django_db
def test_config_history_says_who_changed_what_and_when(client_for, users, make_user):
    from inventory.models import Site

    carol = make_user("admin", username="carol")
    site = Site(name="paris", region="eu-west-3", role="dr")
    site._history_user = carol
    site.save()
    site.region = "eu-south-1"
    site._history_user = carol
    site.save()
    client = client_for(users["auditor"])
    sources = {s["name"] for s in client.get(reverse("audit-config-history")).json()}
    assert {"site", "resource", "group", "policy"} <= sources
    url = reverse("audit-config-history-detail", args=["site"])
    records = client.get(url + f"?object_id={site.pk}").json()["results"]
    assert [r["action"] for r in records] == ["created", "changed"]
    assert records[1]["actor_name"] == "carol"
    assert records[1]["changes"] == [{"field": "region", "old": "eu-west-3", "new": "eu-south-1"}]
    # The streamed export says the same, one record per line.
    response = client.get(url + "?format=jsonl&actor=carol")
    lines = [json.loads(x) for x in b"".join(response.streaming_content).splitlines()]
    assert lines[0]["source"] == "site" and lines[-1]["records"] == 2
    assert lines[2]["changes"][0]["field"] == "region"
    assert client.get(reverse("audit-config-history-detail", args=["nope"])).status_code == 404
    assert client.get(url + "?since=never").status_code == 400


def test_history_registry_skips_models_that_are_not_installed():
    from audit import history

    history.register_history("ghost", "nosuchapp.Ghost")
    assert "ghost" not in {s.name for s, _ in history.sources()}
    assert history.source("ghost") is None
