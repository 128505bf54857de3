import type { ReactNode } from 'react';
import type { Resource } from '../../api/types';
import { CurrentSite } from '../../components/CurrentSite';
import { Visibility } from '../../components/Visibility';
import { formatBytes, formatDuration, formatTime, humanise } from '../../lib/format';
import { reasonText } from '../../lib/reasons';

function Row({ term, children }: { term: string; children: ReactNode }) {
  return (
    <>
      <dt>{term}</dt>
      <dd>{children}</dd>
    </>
  );
}

export function Observation({
  resource,
  age,
  lastKnown = false,
}: {
  resource: Resource;
  age: number | null;
  lastKnown?: boolean;
}) {
  const s = resource.status;
  const lost = s.visibility === 'lost' || lastKnown;
  const stale = lost ? ' (last known)' : '';
  return (
    <section aria-labelledby="obs-title" className="panel">
      <h2 id="obs-title">Current observation</h2>
      {s.visibility === 'lost' ? (
        <p className="lost-block">
          <Visibility visibility={s.visibility} ageSeconds={age} /> The values below are the last
          ones seen, not current.
        </p>
      ) : null}
      <dl className={`facts${lost ? ' stale' : ''}`}>
        <Row term="Lag">
          {formatDuration(s.lag_seconds)}
          {stale}
        </Row>
        <Row term="Lag (bytes)">
          {formatBytes(s.lag_bytes)}
          {stale}
        </Row>
        <Row term="RPO target">{formatDuration(resource.rpo_target_seconds)}</Row>
        <Row term="Observed at">{formatTime(s.observed_at)}</Row>
        <Row term="Age">{formatDuration(age)}</Row>
        <Row term="Last attempt">{formatTime(s.last_attempt_at)}</Row>
        <Row term="Replication">{s.replication ? humanise(s.replication) : '—'}</Row>
        <Row term="Roles seen">
          {s.primary_role || s.dr_role
            ? `${resource.primary_site}: ${s.primary_role || '—'}; ${resource.dr_site}: ${s.dr_role || '—'}`
            : '—'}
        </Row>
      </dl>
      <h3>Markers</h3>
      <dl className={`facts${lost ? ' stale' : ''}`}>
        <Row term={`Primary (${resource.primary_site})`}>
          <code>{s.primary_marker || '—'}</code>
        </Row>
        <Row term={`DR (${resource.dr_site})`}>
          <code>{s.dr_marker || '—'}</code>
        </Row>
        <Row term="Heartbeat">{formatTime(s.heartbeat_at)}</Row>
      </dl>
      <h3>Site and drills</h3>
      <dl className="facts">
        <Row term="Primary role at">
          <CurrentSite resource={resource} long />
        </Row>
        <Row term="Last passed drill">{formatTime(resource.last_passed_drill_at)}</Row>
        <Row term="Next drill due">
          {resource.drill_due_at ? formatTime(resource.drill_due_at) : '—'} (every{' '}
          {resource.drill_cadence_days} days for tier {resource.tier})
        </Row>
      </dl>
    </section>
  );
}

export function Reasons({ resource }: { resource: Resource }) {
  const reasons = resource.status.reasons;
  return (
    <section aria-labelledby="reasons-title" className="panel">
      <h2 id="reasons-title">Reasons</h2>
      {reasons.length ? (
        <ul className="reasons">
          {reasons.map((r, i) => (
            <li key={`${r.code}-${i}`}>
              {reasonText(r)} <code className="muted">{r.code}</code>
            </li>
          ))}
        </ul>
      ) : (
        <p>No reason reported: every check passed.</p>
      )}
    </section>
  );
}
