import type { ApprovalRow, Readiness, RequestDetail } from '../../api/types';
import { PhaseBadge, StateBadge } from '../../components/StateBadge';
import { formatDuration, formatTime, humanise, roleName } from '../../lib/format';

function asReadiness(rows: ApprovalRow['readiness']): Readiness[] {
  return rows.map((row) => row as Readiness);
}

function ReadinessList({ rows }: { rows: Readiness[] }) {
  if (!rows.length) return <span className="muted">Not recorded</span>;
  return (
    <ul className="readiness">
      {rows.map((r, i) => (
        <li key={r.resource ?? i}>
          {r.name ?? `#${r.resource ?? '?'}`}:{' '}
          <StateBadge state={r.state ?? ''} lost={r.visibility === 'lost'} />
          {r.visibility === 'lost' ? <strong className="lost-inline"> No visibility</strong> : null}
          {r.lag_seconds !== null && r.lag_seconds !== undefined
            ? ` lag ${formatDuration(r.lag_seconds)}`
            : ''}
          {r.reasons?.length ? (
            <span className="sub"> ({r.reasons.map(humanise).join(', ')})</span>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

function Required({ request }: { request: RequestDetail }) {
  const a = request.approvals_required;
  return (
    <div>
      <p>
        <strong>
          {a.received} of {a.count} distinct approver{a.count === 1 ? '' : 's'}
        </strong>
        {a.satisfied ? ' — requirements met.' : ` — ${a.still_needed} more needed.`}
      </p>
      {a.roles.length ? (
        <ul className="roles-needed" aria-label="Roles that must be covered">
          {a.roles.map((role) => (
            <li key={role}>
              {roleName(role)}:{' '}
              {a.covered[role] ? (
                <span className="ok-text">
                  <span aria-hidden="true">✓ </span>covered by {a.covered[role]}
                </span>
              ) : (
                <span className="warn-text">
                  <span aria-hidden="true">… </span>still required
                </span>
              )}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

export function ApprovalsPanel({ request }: { request: RequestDetail }) {
  return (
    <section aria-labelledby="approvals-title" className="panel panel-wide">
      <h2 id="approvals-title">Approvals</h2>
      <Required request={request} />
      {request.approvals.length ? (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">
              Votes so far, with readiness when each was given
            </caption>
            <thead>
              <tr>
                <th scope="col">Who</th>
                <th scope="col">Decision</th>
                <th scope="col">Counted as</th>
                <th scope="col">When</th>
                <th scope="col">Comment</th>
                <th scope="col">Readiness at that time</th>
              </tr>
            </thead>
            <tbody>
              {request.approvals.map((a) => (
                <tr key={a.id} className={a.valid ? undefined : 'row-void'}>
                  <th scope="row">{a.approver}</th>
                  <td>
                    <PhaseBadge state={a.decision} />
                    {!a.valid ? (
                      <div className="sub warn-text">
                        Void{a.voided_at ? ` since ${formatTime(a.voided_at)}` : ''}
                        {a.void_reason ? `: ${a.void_reason}` : ''}
                      </div>
                    ) : null}
                  </td>
                  <td>{a.role_counted ? roleName(a.role_counted) : '—'}</td>
                  <td>{formatTime(a.at)}</td>
                  <td>{a.comment || <span className="muted">—</span>}</td>
                  <td>
                    <ReadinessList rows={asReadiness(a.readiness)} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="empty">No vote yet.</p>
      )}
    </section>
  );
}
