import { Link } from 'react-router';
import type { RequestRow } from '../../api/types';
import { PhaseBadge } from '../../components/StateBadge';
import { formatTime, humanise, roleName } from '../../lib/format';

export function scopeName(r: Pick<RequestRow, 'resource_name' | 'group_name'>): string {
  return r.resource_name || (r.group_name ? `${r.group_name} (group)` : '—');
}

export function approvalsText(r: RequestRow): string {
  const a = r.approvals_required;
  if (!a) return '—';
  if (a.count === 0 && a.roles.length === 0) return 'None needed';
  const roles = a.missing_roles.length
    ? `; missing ${a.missing_roles.map(roleName).join(', ')}`
    : '';
  return `${a.received} of ${a.count}${roles}`;
}

export function RequestTable({ requests, caption }: { requests: RequestRow[]; caption: string }) {
  return (
    <div className="table-wrap">
      <table>
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Request</th>
            <th scope="col">Kind</th>
            <th scope="col">Scope</th>
            <th scope="col">Target site</th>
            <th scope="col">State</th>
            <th scope="col">Approvals</th>
            <th scope="col">Requested by</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {requests.map((r) => (
            <tr key={r.id}>
              <th scope="row">
                <Link to={`/requests/${r.id}`}>#{r.id}</Link>
              </th>
              <td>{humanise(r.kind)}</td>
              <td>{scopeName(r)}</td>
              <td>{r.target_site}</td>
              <td>
                <PhaseBadge state={r.state} />
              </td>
              <td>{approvalsText(r)}</td>
              <td>{r.requested_by}</td>
              <td>{formatTime(r.created_at)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
