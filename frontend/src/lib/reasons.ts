// How a status reason reads on screen. The API's messages are either whole sentences ("Both
// sides report the primary role (split brain).") or details that need the code's name to make
// sense ("last passed drill 120 days ago; tier 1 cadence is 90 days"): the latter get a title.
// Messages are never re-cased: many start with a resource name.

export interface ReasonLike {
  code: string;
  message: string;
}

const TITLES: Record<string, string> = {
  drill_overdue: 'DR drill overdue',
  unexpected_primary_site: 'Primary at an unexpected site',
  stale: 'Stale',
};

export function reasonText(reason: ReasonLike): string {
  const title = TITLES[reason.code];
  return title ? `${title}: ${reason.message}` : reason.message;
}
