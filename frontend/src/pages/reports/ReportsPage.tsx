import { useId, useState, type FormEvent } from 'react';
import { ApiError } from '../../api/client';
import {
  type ReadinessPeriod,
  type ReadinessReport,
  readinessUrl,
  useReadiness,
} from '../../api/reports';
import { TIERS } from '../../api/types';
import { ErrorMessage, Loading, NotAvailable } from '../../components/Banner';
import { FieldError } from '../../components/FieldError';
import { formatTime } from '../../lib/format';
import { usePageTitle } from '../../lib/usePageTitle';
import { defaultDates, periodOf } from './period';

/** The readiness report's links once the server has accepted the period. */
function ReportLinks({ period, data }: { period: ReadinessPeriod; data: ReadinessReport }) {
  const { since, until, tier } = data.report;
  return (
    <section aria-labelledby="report-ready" className="panel">
      <h2 id="report-ready">
        Readiness {tier ? `of tier ${tier} ` : ''}from {formatTime(since)} to {formatTime(until)}
      </h2>
      <p className="meta">
        {data.resources.length} resources you may see · {data.drills.length} drills run ·{' '}
        {data.drill_overdue.length} with a drill overdue
      </p>
      <ul className="report-links">
        <li>
          <a href={readinessUrl(period, 'html')}>Open the printable report</a>
        </li>
        <li>
          <a href={readinessUrl(period, 'csv')} download>
            Download CSV
          </a>{' '}
          <span className="muted">(one row per resource, then per tier)</span>
        </li>
        <li>
          <a href={readinessUrl(period, 'json')} download="readiness.json">
            Download JSON
          </a>
        </li>
      </ul>
    </section>
  );
}

/** Readiness over a period (executions/api/reports.py; docs/audit.md "Readiness report"). */
export function ReportsPage() {
  usePageTitle('Reports');
  const [dates, setDates] = useState(defaultDates);
  const [tier, setTier] = useState('');
  const [period, setPeriod] = useState<ReadinessPeriod | null>(null);
  const report = useReadiness(period);
  const ids = { from: useId(), to: useId(), tier: useId() };
  const error = report.error;
  const errors = error instanceof ApiError ? error.fieldErrors : {};
  const general = [...(errors.format ?? []), ...(errors.non_field_errors ?? [])];

  const submit = (event: FormEvent) => {
    event.preventDefault();
    setPeriod(periodOf(dates.from, dates.to, tier));
  };
  const described = (field: string, id: string) =>
    errors[field] ? { 'aria-invalid': true, 'aria-describedby': `${id}-err` } : {};

  return (
    <section aria-labelledby="reports-title">
      <h1 id="reports-title">Reports</h1>
      <p className="meta">
        Readiness over a period: time in each state, RPO breaches and DR drills of the resources you
        may see. Days are in your browser&apos;s time zone; a period may be up to 92 days.
      </p>
      <form className="form panel filters" onSubmit={submit} aria-label="Readiness report">
        <div className="field">
          <label htmlFor={ids.from}>From</label>
          <input
            id={ids.from}
            type="date"
            value={dates.from}
            onChange={(e) => setDates({ ...dates, from: e.target.value })}
            {...described('since', ids.from)}
          />
          <FieldError id={`${ids.from}-err`} messages={errors.since} />
        </div>
        <div className="field">
          <label htmlFor={ids.to}>To (inclusive)</label>
          <input
            id={ids.to}
            type="date"
            value={dates.to}
            onChange={(e) => setDates({ ...dates, to: e.target.value })}
            {...described('until', ids.to)}
          />
          <FieldError id={`${ids.to}-err`} messages={errors.until} />
        </div>
        <div className="field">
          <label htmlFor={ids.tier}>Tier</label>
          <select
            id={ids.tier}
            value={tier}
            onChange={(e) => setTier(e.target.value)}
            {...described('tier', ids.tier)}
          >
            <option value="">All tiers</option>
            {TIERS.map((t) => (
              <option key={t} value={String(t)}>
                Tier {t}
              </option>
            ))}
          </select>
          <FieldError id={`${ids.tier}-err`} messages={errors.tier} />
        </div>
        <button type="submit" disabled={report.isFetching}>
          {report.isFetching ? 'Preparing…' : 'Show report'}
        </button>
      </form>
      <FieldError id="reports-general-err" messages={general} />
      {error instanceof ApiError && error.notAvailable ? (
        <NotAvailable what="The readiness report" />
      ) : error && !(error instanceof ApiError && error.status === 400) ? (
        <ErrorMessage error={error} />
      ) : null}
      {period && report.isFetching && !report.data ? <Loading what="the report" /> : null}
      {period && report.data && !error ? <ReportLinks period={period} data={report.data} /> : null}
    </section>
  );
}
