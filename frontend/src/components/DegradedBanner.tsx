import { useDegraded } from '../api/degraded';
import { formatClock, formatTime } from '../lib/format';

/** Page-wide while the service cannot reach its own database (bcservice/degraded.py): what is on
 * screen is the last known status, and actions are refused (each says whether it was applied). */
export function DegradedBanner() {
  const state = useDegraded();
  if (!state.active) return null;
  const from = state.snapshotAt
    ? formatTime(state.snapshotAt)
    : state.lastLiveAt
      ? formatClock(state.lastLiveAt)
      : 'before the outage';
  return (
    <div className="banner banner-error banner-degraded" role="alert">
      <strong>
        bcservice cannot reach its own database: showing the last known status from {from}; actions
        are refused.
      </strong>{' '}
      Nothing you ask for now is carried out. This page keeps checking and the notice goes away when
      the database is back.
    </div>
  );
}
