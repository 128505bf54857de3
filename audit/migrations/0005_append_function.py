"""PostgreSQL: ``audit_append()``, which links and inserts an event in one statement.

Appends are serialised by a transaction-scoped advisory lock held until COMMIT. Linking in
Python meant holding that lock across two client round trips (read the head, then INSERT), and
under 8 concurrent writers the queue on the lock was the append latency. The function takes the
lock, reads the head, hashes and inserts inside the server, so the lock is held for one
statement plus the caller's COMMIT.

The hash is the same SHA-256 of the same canonical JSON as ``audit.chain.canonical``: the client
sends that text cut in four pieces around the three values only known under the lock (time,
previous hash, sequence number; see ``audit.chain.hash_template``), and the function joins them.
Every statement in a VOLATILE plpgsql function takes a new snapshot (READ COMMITTED), so the head
is read after the lock is granted.

SQLite needs nothing: it has a single writer, and ``audit.services`` links in Python there.
"""

from django.db import migrations

PG_UP = r"""
CREATE OR REPLACE FUNCTION audit_append(
    lock_key bigint,
    p_actor_id bigint, p_actor_name text, p_action text, p_object_type text, p_object_id text,
    p_object_name text, p_before jsonb, p_after jsonb, p_request_id text, p_context text,
    t_head text, t_after_at text, t_after_prev text, t_tail text,
    OUT r_seq bigint, OUT r_at timestamptz, OUT r_prev_hash text, OUT r_hash text
) LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(lock_key);
    SELECT e.seq + 1, e.hash INTO r_seq, r_prev_hash
        FROM audit_auditevent e ORDER BY e.seq DESC LIMIT 1;
    IF NOT FOUND THEN
        r_seq := 1;
        r_prev_hash := repeat('0', 64);
    END IF;
    r_at := clock_timestamp();
    -- audit.chain.format_time: UTC ISO 8601 with microseconds.
    r_hash := encode(sha256(convert_to(
        t_head || '"' || to_char(r_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')
        || '+00:00"' || t_after_at || '"' || r_prev_hash || '"' || t_after_prev
        || r_seq::text || t_tail, 'UTF8')), 'hex');
    INSERT INTO audit_auditevent (
        seq, at, actor_id, actor_name, action, object_type, object_id, object_name,
        before, after, request_id, context, prev_hash, hash
    ) VALUES (
        r_seq, r_at, p_actor_id, p_actor_name, p_action, p_object_type, p_object_id,
        p_object_name, p_before, p_after, p_request_id, p_context, r_prev_hash, r_hash
    );
END
$$;
"""
PG_DOWN = """
DROP FUNCTION IF EXISTS audit_append(
    bigint, bigint, text, text, text, text, text, jsonb, jsonb, text, text, text, text, text, text
);
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PG_DOWN, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_checkpoint_append_only")]
    operations = [migrations.RunPython(install, remove)]
