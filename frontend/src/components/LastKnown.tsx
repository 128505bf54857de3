import { ApiError } from '../api/client';
import { type DegradedMarker, degradedOf } from '../api/degraded';
import { formatClock, formatTime } from '../lib/format';

export interface LastKnown {
  /** The values on screen are not live: a copy the server kept, or data from before a refusal. */
  lastKnown: boolean;
  marker: DegradedMarker | null;
  /** Seconds the values were already old when fetched (add to ages counted since the fetch). */
  offsetSeconds: number;
}

/** Whether a query's data is a degraded-mode copy (bcservice/degraded.py), or older data kept on
 * screen because the server refused to answer while its database is unreachable. */
export function lastKnownOf(query: {
  data?: unknown;
  isError: boolean;
  error: unknown;
}): LastKnown {
  const marker = degradedOf(query.data);
  const refused = query.isError && query.error instanceof ApiError && query.error.degraded;
  return {
    lastKnown: marker !== null || (refused && query.data !== undefined),
    marker,
    offsetSeconds: marker?.age_seconds ?? 0,
  };
}

/** A note above values that are not live, saying from when they are. */
export function LastKnownNote({ state, updatedAt }: { state: LastKnown; updatedAt: number }) {
  if (!state.lastKnown) return null;
  const from = state.marker?.snapshot_at
    ? formatTime(state.marker.snapshot_at)
    : updatedAt
      ? formatClock(updatedAt)
      : 'earlier';
  return (
    <p className="last-known-note" role="note">
      <strong>Last known status from {from}</strong>, not live: bcservice cannot reach its own
      database.
    </p>
  );
}
