import { Link } from 'react-router';
import type { Resource } from '../../api/types';
import { CurrentSite } from '../../components/CurrentSite';
import { StateBadge } from '../../components/StateBadge';
import { Visibility } from '../../components/Visibility';
import { formatDuration, humanise } from '../../lib/format';
import { reasonText } from '../../lib/reasons';
import { platformName } from './Filters';

/** Age of the values shown, counted on from when they were fetched. */
export function ageNow(
  ageSeconds: number | null | undefined,
  elapsedSeconds: number,
): number | null {
  return ageSeconds === null || ageSeconds === undefined ? null : ageSeconds + elapsedSeconds;
}

function Lag({ resource, lastKnown }: { resource: Resource; lastKnown: boolean }) {
  const { lag_seconds: lag, visibility } = resource.status;
  if (lag === null || lag === undefined) return <span className="muted">—</span>;
  const overRpo = resource.rpo_target_seconds !== undefined && lag > resource.rpo_target_seconds;
  const stale = visibility === 'lost' || lastKnown;
  return (
    <span className={stale ? 'stale' : undefined}>
      {formatDuration(lag)}
      {stale ? <span className="note"> (last known)</span> : null}
      {overRpo ? <span className="note over-rpo"> over RPO</span> : null}
    </span>
  );
}

interface RowProps {
  resource: Resource;
  elapsed: number;
  /** The server's last known copy (degraded mode): every value is marked as such. */
  lastKnown: boolean;
}

function ResourceRow({ resource, elapsed, lastKnown }: RowProps) {
  const { status } = resource;
  const lost = status.visibility === 'lost';
  const age = ageNow(status.age_seconds, elapsed);
  const reason = status.reasons[0];
  return (
    <tr
      className={lost || lastKnown ? 'row-lost' : undefined}
      data-testid={`resource-${resource.id}`}
    >
      <th scope="row">
        <Link to={`/resources/${resource.id}`}>{resource.name}</Link>
        <div className="sub">
          {platformName(resource.platform)} · {humanise(resource.environment)}
        </div>
      </th>
      <td>
        <StateBadge state={status.state} lost={lost} lastKnown={lastKnown} />
        {reason ? (
          <div className="sub" title={status.reasons.map(reasonText).join('\n')}>
            {reasonText(reason)}
            {status.reasons.length > 1 ? ` (+${status.reasons.length - 1} more)` : ''}
          </div>
        ) : null}
      </td>
      <td>
        <Visibility visibility={status.visibility} ageSeconds={age} />
      </td>
      <td className="num">
        <Lag resource={resource} lastKnown={lastKnown} />
      </td>
      <td className="num">{formatDuration(resource.rpo_target_seconds)}</td>
      <td className={`num${lost || lastKnown ? ' stale' : ''}`}>{formatDuration(age)}</td>
      <td className="num">{resource.tier}</td>
      <td className="sites">
        {resource.primary_site} <span aria-label="replicates to">→</span> {resource.dr_site}
        <div className="sub">
          <CurrentSite resource={resource} />
        </div>
      </td>
    </tr>
  );
}

export function ResourceTable({
  resources,
  elapsed,
  lastKnown = false,
}: {
  resources: Resource[];
  elapsed: number;
  lastKnown?: boolean;
}) {
  return (
    <div className="table-wrap">
      <table className="board">
        <caption className="visually-hidden">Resources, worst state first</caption>
        <thead>
          <tr>
            <th scope="col">Resource</th>
            <th scope="col">State</th>
            <th scope="col">Visibility</th>
            <th scope="col" className="num">
              Lag
            </th>
            <th scope="col" className="num">
              RPO target
            </th>
            <th scope="col" className="num">
              Age
            </th>
            <th scope="col" className="num">
              Tier
            </th>
            <th scope="col">Primary → DR, now</th>
          </tr>
        </thead>
        <tbody>
          {resources.map((r) => (
            <ResourceRow key={r.id} resource={r} elapsed={elapsed} lastKnown={lastKnown} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
