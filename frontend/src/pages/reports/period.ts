// The period picker's dates (the browser's calendar days) as the report API's bounds.
import type { ReadinessPeriod } from '../../api/reports';

export const DEFAULT_DAYS = 30;

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** YYYY-MM-DD of a moment, in the browser's time zone (what a date input shows). */
export function localDate(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function dayStart(value: string, plusDays = 0): Date | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!match) return null;
  const [, y, m, d] = match.map(Number) as [number, number, number, number];
  return new Date(y, m - 1, d + plusDays);
}

/** The last 30 days: from 30 days ago to today. */
export function defaultDates(now: Date = new Date()): { from: string; to: string } {
  const from = new Date(now.getFullYear(), now.getMonth(), now.getDate() - DEFAULT_DAYS);
  return { from: localDate(from), to: localDate(now) };
}

/** From the start of `from` to the end of `to` (until is exclusive: the next midnight); a `to`
 * of today or later leaves `until` to the server (now). Empty fields take the server's defaults;
 * the server checks the rest and answers field errors. */
export function periodOf(
  from: string,
  to: string,
  tier: string,
  now: Date = new Date(),
): ReadinessPeriod {
  // A value that is not a date goes as typed: the server's field error says what is wrong.
  const since = from ? (dayStart(from)?.toISOString() ?? from) : undefined;
  const until = to && to < localDate(now) ? (dayStart(to, 1)?.toISOString() ?? to) : undefined;
  return { since, until, tier: tier || undefined };
}
