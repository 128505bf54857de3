import type { Step } from '../../api/types';
import { PhaseBadge } from '../../components/StateBadge';
import { formatClock, formatDuration, formatTime, secondsSince } from '../../lib/format';

const PHASES: [string, string][] = [
  ['precheck', 'Prechecks'],
  ['step', 'Steps'],
  ['postcheck', 'Postchecks'],
];

function Duration({ step, now }: { step: Step; now: number }) {
  if (step.duration_seconds !== null && step.duration_seconds !== undefined) {
    return <>{formatDuration(step.duration_seconds)}</>;
  }
  if (step.state === 'running') {
    return <>{formatDuration(secondsSince(step.started_at, now))} so far</>;
  }
  return <span className="muted">—</span>;
}

export function StepsTable({ steps, now }: { steps: Step[]; now: number }) {
  const ordered = [...steps].sort((a, b) => a.position - b.position);
  return (
    <div className="table-wrap">
      <table className="steps">
        <caption className="visually-hidden">Steps in the order they run</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Step</th>
            <th scope="col">Resource</th>
            <th scope="col">State</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        {PHASES.map(([phase, label]) => {
          const rows = ordered.filter((s) => s.phase === phase);
          if (!rows.length) return null;
          return (
            <tbody key={phase}>
              <tr className="phase-row">
                <th scope="rowgroup" colSpan={7}>
                  {label}
                </th>
              </tr>
              {rows.map((s) => (
                <tr
                  key={s.position}
                  className={`step-${s.state ?? 'pending'}`}
                  aria-current={s.state === 'running' ? 'step' : undefined}
                >
                  <td className="num">{s.position}</td>
                  <th scope="row">
                    {s.description || s.name}
                    {s.description ? (
                      <div className="sub">
                        <code>{s.name}</code>
                      </div>
                    ) : null}
                    {s.pause_before ? (
                      <div className="sub">Pauses for an operator before running</div>
                    ) : null}
                  </th>
                  <td className="nowrap">{s.resource}</td>
                  <td>
                    <PhaseBadge state={s.state ?? 'pending'} />
                    {(s.attempts ?? 0) > 1 ? (
                      <div className="sub">{s.attempts} attempts</div>
                    ) : null}
                  </td>
                  <td className="nowrap" title={formatTime(s.started_at)}>
                    {s.started_at ? formatClock(new Date(s.started_at).getTime()) : '—'}
                  </td>
                  <td className="num">
                    <Duration step={s} now={now} />
                  </td>
                  <td className="detail">{s.detail || <span className="muted">—</span>}</td>
                </tr>
              ))}
            </tbody>
          );
        })}
      </table>
    </div>
  );
}
