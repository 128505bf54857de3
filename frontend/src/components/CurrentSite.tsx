import type { Resource } from '../api/types';
import { formatTime } from '../lib/format';

type Sites = Pick<
  Resource,
  'primary_site' | 'dr_site' | 'current_site' | 'away_from_home' | 'current_site_changed_at'
>;

/** Where the primary role is now. Away from home (a switchover or failover left in place) is a
 * marker with a symbol and words, never colour alone; at home it is a quiet note. */
export function CurrentSite({ resource, long = false }: { resource: Sites; long?: boolean }) {
  const since = resource.current_site_changed_at
    ? ` since ${formatTime(resource.current_site_changed_at)}`
    : '';
  if (!resource.away_from_home) {
    return (
      <span className="at-home">
        Runs at {resource.current_site} (home){long ? since : ''}
      </span>
    );
  }
  return (
    <span className="away" role="note">
      <strong>
        <span aria-hidden="true">⇄ </span>Away from home
      </strong>
      {' — '}runs at {resource.current_site}
      {long ? since : ''}, home is {resource.primary_site}
      {long ? '; a failback returns it there' : ''}
    </span>
  );
}
