import { Link, useParams } from 'react-router';
import { ApiError } from '../../api/client';
import { ActionError } from '../../components/ActionError';
import { useContinue, useExecution } from '../../api/executions';
import type { Execution } from '../../api/types';
import { Banner, ErrorMessage, Loading, StaleDataBanner } from '../../components/Banner';
import { PhaseBadge } from '../../components/StateBadge';
import { formatDuration, formatTime, humanise, secondsSince } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { Evidence } from './Evidence';
import { StepsTable } from './StepsTable';
import { usePageTitle } from '../../lib/usePageTitle';

function Progress({ execution }: { execution: Execution }) {
  const total = execution.steps.length;
  const done = execution.steps.filter(
    (s) => s.state && !['pending', 'running'].includes(s.state),
  ).length;
  const running = execution.steps.find((s) => s.state === 'running');
  return (
    <div className="progress-wrap">
      <label htmlFor="exec-progress">
        {done} of {total} steps finished
        {running ? ` — now: ${running.description || running.name}` : ''}
      </label>
      <progress id="exec-progress" max={Math.max(1, total)} value={done} />
    </div>
  );
}

function Paused({ execution }: { execution: Execution }) {
  const go = useContinue(execution.id);
  if (execution.state !== 'paused') return null;
  const next = [...execution.steps]
    .sort((a, b) => a.position - b.position)
    .find((s) => s.state === 'pending');
  return (
    <Banner tone="warning">
      Paused for an operator
      {next ? ` before “${next.description || next.name}” on ${next.resource}` : ''}.{' '}
      <button type="button" onClick={() => go.mutate()} disabled={go.isPending}>
        {go.isPending ? 'Continuing…' : 'Continue'}
      </button>
      {go.isError ? <ActionError error={go.error} /> : null}
    </Banner>
  );
}

export function ExecutionView() {
  const id = Number(useParams().id);
  const query = useExecution(id);
  usePageTitle(
    query.data ? `Execution #${id} (${query.data.state ?? 'queued'})` : `Execution #${id}`,
  );
  const now = useNow(1000);
  if (query.isPending) return <Loading what="the execution" />;
  if (query.isError && !query.data) {
    return query.error instanceof ApiError && query.error.notAvailable ? (
      <Banner tone="error">No such execution, or it is outside what you may see.</Banner>
    ) : (
      <ErrorMessage error={query.error} />
    );
  }
  const execution = query.data;
  const state = execution.state ?? 'queued';
  const elapsed = execution.finished_at
    ? secondsSince(execution.started_at, new Date(execution.finished_at).getTime())
    : secondsSince(execution.started_at, now);
  return (
    <article aria-labelledby="exec-title">
      <p className="breadcrumb">
        <Link to={`/requests/${execution.request}`}>Request #{execution.request}</Link> › Execution
        #{execution.id}
      </p>
      <div className="page-head">
        <h1 id="exec-title">
          {humanise(execution.kind)} — execution #{execution.id} <PhaseBadge state={state} />
        </h1>
      </div>
      <p className="meta">
        Started by {execution.started_by} ·{' '}
        {formatTime(execution.started_at ?? execution.created_at)}
        {execution.finished_at ? ` · finished ${formatTime(execution.finished_at)}` : ''} ·{' '}
        {formatDuration(elapsed)}
        {execution.finished_at ? ' in total' : ' so far'}
      </p>
      {query.isError ? (
        <StaleDataBanner
          what="this execution"
          error={query.error}
          updatedAt={query.dataUpdatedAt}
        />
      ) : null}
      {Array.isArray(execution.overrides) && execution.overrides.length ? (
        <Banner tone="warning">
          Overridden prechecks: {execution.overrides.join(', ')}
          {execution.override_reason ? ` — ${execution.override_reason}` : ''}
        </Banner>
      ) : null}
      <Paused execution={execution} />
      <div aria-live="polite">
        <Progress execution={execution} />
      </div>
      <StepsTable steps={execution.steps} now={now} />
      <Evidence execution={execution} />
    </article>
  );
}
