// Answers shaped exactly as bcservice/degraded.py makes them while the service cannot reach its
// own database (`_stale_response`, `_unavailable`; tests/bcservice/test_degraded.py).

const RETRY_SECONDS = '5'; // BC_DEGRADED_RECHECK_SECONDS

/** 200: the last copy served to this credential, with the `degraded` member and headers. */
export function staleCopy<T extends object>(body: T, snapshotAt: string, ageSeconds: number) {
  return {
    status: 200,
    body: {
      ...body,
      degraded: {
        stale: true,
        reason: 'database_unreachable',
        snapshot_at: snapshotAt,
        age_seconds: ageSeconds,
        detail: "Last known copy: the service's own database is unreachable.",
      },
    },
    headers: {
      'X-BC-Degraded': 'database-unreachable',
      'X-BC-Snapshot-At': snapshotAt,
      Warning: '110 - "Response is Stale"',
      'Cache-Control': 'no-store',
    },
  };
}

const REFUSED = (method: string) =>
  `The service's own database is unreachable, so this ${method} was refused and nothing was ` +
  'changed. Repeat it when /readyz answers 200.';
const UNCONFIRMED = (method: string) =>
  `The service's own database became unreachable while this ${method} was being handled. ` +
  "Its change was not confirmed: check the object's state before repeating it.";
const NO_SNAPSHOT =
  "The service's own database is unreachable and no recent copy of this page was served to " +
  'you by this instance. Try again when /readyz answers 200.';

function unavailable(detail: string, outcome: 'not_applied' | 'unconfirmed') {
  return {
    status: 503,
    body: { detail, code: 'service_degraded', reason: 'database_unreachable', outcome },
    headers: {
      'Retry-After': RETRY_SECONDS,
      'X-BC-Degraded': 'database-unreachable',
      'Cache-Control': 'no-store',
    },
  };
}

/** 503: an action refused before it wrote anything. */
export const refused = (method = 'POST') => unavailable(REFUSED(method), 'not_applied');
/** 503: the database went away after the action had written: unknown whether it committed. */
export const unconfirmed = (method = 'POST') => unavailable(UNCONFIRMED(method), 'unconfirmed');
/** 503: a read with no recent copy for this credential and URL. */
export const noCopy = () => unavailable(NO_SNAPSHOT, 'not_applied');

export const MESSAGES = { REFUSED, UNCONFIRMED, NO_SNAPSHOT };
