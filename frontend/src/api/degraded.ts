// Degraded mode (bcservice/degraded.py): while the service cannot reach its own database, status
// reads come back as the last copy it served (200, header X-BC-Degraded, a `degraded` member in
// JSON objects) or 503 {code: "service_degraded"}, and every action is refused with 503 and an
// `outcome` (not_applied | unconfirmed). The client reports what it sees here; the layout shows
// one page-wide banner while it lasts.
import { useSyncExternalStore } from 'react';

export const DEGRADED_HEADER = 'X-BC-Degraded';
export const SNAPSHOT_AT_HEADER = 'X-BC-Snapshot-At';
export const DEGRADED_CODE = 'service_degraded';

/** The `degraded` member of a last-known copy (degraded.py `_stale_response`). */
export interface DegradedMarker {
  stale: boolean;
  reason: string;
  snapshot_at: string;
  age_seconds: number;
  detail: string;
}

/** What an action refused in degraded mode says happened to it. */
export type Outcome = 'not_applied' | 'unconfirmed';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The marker of a last-known copy, or null for a live answer. */
export function degradedOf(data: unknown): DegradedMarker | null {
  if (!isRecord(data) || !isRecord(data.degraded)) return null;
  const marker = data.degraded;
  return marker.stale === true && typeof marker.snapshot_at === 'string'
    ? (marker as unknown as DegradedMarker)
    : null;
}

/** A marker from the headers alone (a copy whose JSON is not an object has no member). */
export function markerFromHeaders(headers: Headers): DegradedMarker | null {
  if (!headers.get(DEGRADED_HEADER)) return null;
  const at = headers.get(SNAPSHOT_AT_HEADER) ?? '';
  const saved = Date.parse(at);
  return {
    stale: true,
    reason: 'database_unreachable',
    snapshot_at: at,
    age_seconds: Number.isNaN(saved) ? 0 : Math.max(0, Math.round((Date.now() - saved) / 1000)),
    detail: "Last known copy: the service's own database is unreachable.",
  };
}

/** A 503 body of degraded mode: {detail, code: "service_degraded", reason, outcome}. */
export function isDegradedBody(body: unknown): body is { detail: string; outcome: Outcome } {
  return isRecord(body) && body.code === DEGRADED_CODE;
}

export interface DegradedState {
  /** Degraded mode seen and not yet over (a live 2xx answer ends it). */
  active: boolean;
  /** The oldest last-known copy on screen (ISO), when the server sent copies. */
  snapshotAt: string | null;
  /** When the app last had a live answer (ms), for pages the server had no copy of. */
  lastLiveAt: number | null;
}

let state: DegradedState = { active: false, snapshotAt: null, lastLiveAt: null };
const listeners = new Set<() => void>();

function set(next: DegradedState): void {
  if (
    next.active === state.active &&
    next.snapshotAt === state.snapshotAt &&
    next.lastLiveAt === state.lastLiveAt
  ) {
    return;
  }
  state = next;
  listeners.forEach((listener) => listener());
}

function older(a: string | null, b: string): string {
  if (a === null) return b;
  return Date.parse(b) < Date.parse(a) ? b : a;
}

export const degraded = {
  /** A last-known copy (snapshotAt) or a degraded 503 (no copy) was received. */
  report(snapshotAt: string | null = null): void {
    set({
      ...state,
      active: true,
      snapshotAt: snapshotAt
        ? older(state.active ? state.snapshotAt : null, snapshotAt)
        : state.snapshotAt,
    });
  },
  /** A live answer: the database is reachable again. */
  live(at: number = Date.now()): void {
    // Only the transition notifies; lastLiveAt is read when the banner appears.
    if (state.active) set({ active: false, snapshotAt: null, lastLiveAt: at });
    else state = { ...state, lastLiveAt: at };
  },
  reset(): void {
    set({ active: false, snapshotAt: null, lastLiveAt: null });
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  get state(): DegradedState {
    return state;
  },
};

export function useDegraded(): DegradedState {
  return useSyncExternalStore(degraded.subscribe, () => degraded.state);
}
