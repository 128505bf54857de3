import { useQuery } from '@tanstack/react-query';
import { api, apiUrl } from './client';

/** GET reports/readiness/ (executions/api/reports.py): every role, scoped to what they may see. */
export const READINESS_PATH = 'reports/readiness/';

export type ReportFormat = 'html' | 'csv' | 'json';

/** The query of a readiness report; an absent bound takes the server's default (until: now,
 * since: 30 days before until). */
export interface ReadinessPeriod {
  since?: string;
  until?: string;
  tier?: string;
}

export function readinessUrl(period: ReadinessPeriod, format: ReportFormat): string {
  return apiUrl(READINESS_PATH, {
    format,
    since: period.since,
    until: period.until,
    tier: period.tier,
  });
}

/** The parts of the JSON report the page shows (executions/reports/readiness.py). */
export interface ReadinessReport {
  report: { since: string; until: string; generated_at: string; tier: number | null };
  resources: unknown[];
  drills: unknown[];
  drill_overdue: { resource: string; tier: number; message: string }[];
}

/** The JSON report for a submitted period: the server checks the period (400 with field
 * errors) before the page offers the printable page and the downloads. */
export function useReadiness(period: ReadinessPeriod | null) {
  return useQuery({
    queryKey: ['reports', 'readiness', period],
    queryFn: ({ signal }) =>
      api<ReadinessReport>(READINESS_PATH, {
        query: { format: 'json', ...period },
        signal,
      }),
    enabled: period !== null,
    staleTime: 60_000,
    retry: false,
  });
}
