import { useId, useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { ApiError } from '../../api/client';
import { serverHas } from '../../api/me';
import { usePrechecks, useStart } from '../../api/requests';
import type { RequestDetail } from '../../api/types';
import { ActionError } from '../../components/ActionError';
import { NotAvailable } from '../../components/Banner';
import { FieldError } from '../../components/FieldError';
import { PrecheckTable } from './PrecheckTable';

/** Start with confirmation: prechecks first, then the operator types the scope's name. */
export function StartPanel({ request, name }: { request: RequestDetail; name: string }) {
  const navigate = useNavigate();
  const prechecks = usePrechecks(request.id);
  const start = useStart(request.id);
  const [typed, setTyped] = useState('');
  const [overrides, setOverrides] = useState<string[]>([]);
  const [overrideReason, setOverrideReason] = useState('');
  const ids = { confirm: useId(), why: useId(), reason: useId() };
  if (request.state !== 'approved') return null;

  const report = prechecks.data;
  const precheckMissing =
    !serverHas('prechecks') ||
    (prechecks.error instanceof ApiError && prechecks.error.notAvailable);
  const prechecksSeen = report !== undefined || precheckMissing;
  const errors = start.error instanceof ApiError ? start.error.fieldErrors : {};
  const matches = typed.trim() === name;
  const needsReason = overrides.length > 0 && !overrideReason.trim();
  const blocked = report !== undefined && !report.supported;
  const toggle = (step: string) =>
    setOverrides((now) => (now.includes(step) ? now.filter((s) => s !== step) : [...now, step]));

  const submit = (event: FormEvent) => {
    event.preventDefault();
    start.mutate(
      { confirm: typed.trim(), overrides, override_reason: overrideReason.trim() },
      { onSuccess: (started) => void navigate(`/executions/${started.execution}`) },
    );
  };

  return (
    <section aria-labelledby="start-title" className="panel panel-wide">
      <h2 id="start-title">Start</h2>
      <h3>1. Prechecks</h3>
      <p className="meta">Read-only checks of the targets, run now. Nothing changes.</p>
      <button
        type="button"
        onClick={() => prechecks.mutate()}
        disabled={prechecks.isPending || !serverHas('prechecks')}
      >
        {prechecks.isPending
          ? 'Running prechecks…'
          : report
            ? 'Run prechecks again'
            : 'Run prechecks'}
      </button>
      {precheckMissing ? <NotAvailable what="Running prechecks on demand" /> : null}
      {prechecks.isError && !precheckMissing ? <ActionError error={prechecks.error} /> : null}
      {report ? (
        <PrecheckTable report={report} overrides={overrides} onToggleOverride={toggle} />
      ) : null}

      <h3>2. Confirm and start</h3>
      {!prechecksSeen ? (
        <p className="muted">
          Run the prechecks first; the confirmation appears with their results.
        </p>
      ) : (
        <form onSubmit={submit} className="form">
          {overrides.length ? (
            <div className="field">
              <label htmlFor={ids.reason}>
                Why proceed despite the failed checks ({overrides.join(', ')})?
              </label>
              <textarea
                id={ids.reason}
                rows={2}
                required
                value={overrideReason}
                onChange={(e) => setOverrideReason(e.target.value)}
              />
              <FieldError id={`${ids.reason}-err`} messages={errors.override_reason} />
            </div>
          ) : null}
          <div className="field">
            <label htmlFor={ids.confirm}>
              Type <strong className="confirm-name">{name}</strong> to confirm
            </label>
            <input
              id={ids.confirm}
              value={typed}
              onChange={(e) => setTyped(e.target.value)}
              autoComplete="off"
              spellCheck={false}
              aria-invalid={typed !== '' && !matches}
              aria-describedby={request.can_start ? undefined : ids.why}
            />
            <FieldError
              id={`${ids.confirm}-err`}
              messages={errors.confirm ?? errors.overrides ?? errors.kind}
            />
          </div>
          {!request.can_start ? (
            <p id={ids.why} className="why-not">
              You cannot start: {request.why_not_start || 'not allowed now'}
            </p>
          ) : null}
          <button
            type="submit"
            className="button-danger"
            disabled={!request.can_start || !matches || needsReason || blocked || start.isPending}
          >
            {start.isPending ? 'Starting…' : `Start ${request.kind}`}
          </button>
          {start.isError && !(start.error instanceof ApiError && start.error.status === 400) ? (
            <ActionError error={start.error} />
          ) : null}
        </form>
      )}
    </section>
  );
}
