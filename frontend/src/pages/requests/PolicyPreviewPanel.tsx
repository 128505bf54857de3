import { ApiError } from '../../api/client';
import { usePolicyPreview, type Scope } from '../../api/requests';
import type { PolicySummary, RequestKind } from '../../api/types';
import { ErrorMessage, Loading, NotAvailable } from '../../components/Banner';
import { formatDuration, humanise, roleName } from '../../lib/format';

export function PolicyFacts({ policy }: { policy: PolicySummary }) {
  const approvers = policy.min_approvers ?? 0;
  return (
    <dl className="facts">
      <dt>Policy</dt>
      <dd>{policy.name ?? 'Unnamed policy'}</dd>
      <dt>Approvers needed</dt>
      <dd>
        {approvers === 0
          ? 'None'
          : `${approvers} distinct ${approvers === 1 ? 'person' : 'people'}, not the requester`}
      </dd>
      <dt>Roles to cover</dt>
      <dd>
        {policy.required_roles.length
          ? policy.required_roles.map(roleName).join(', ')
          : 'Any approver'}
      </dd>
      <dt>Change ticket</dt>
      <dd>
        {policy.require_change_ticket ? 'Required' : 'Optional'}
        {policy.change_ticket_pattern ? (
          <>
            {' '}
            (format <code>{policy.change_ticket_pattern}</code>)
          </>
        ) : null}
      </dd>
      <dt>Approvals stay valid for</dt>
      <dd>{formatDuration(policy.approval_validity_seconds)}</dd>
      {policy.flap_window_seconds ? (
        <>
          <dt>Anti-flapping window</dt>
          <dd>{formatDuration(policy.flap_window_seconds)}</dd>
        </>
      ) : null}
    </dl>
  );
}

/** The policy a request with this kind and scope would be bound to, asked of the server. */
export function PolicyPreviewPanel({ kind, scope }: { kind: RequestKind | ''; scope: Scope }) {
  const preview = usePolicyPreview(kind, scope);
  let body;
  if (kind === '' || (scope.resource === undefined && scope.group === undefined)) {
    body = <p className="muted">Choose a kind and a scope to see which policy applies.</p>;
  } else if (preview.isPending) {
    body = <Loading what="the policy" />;
  } else if (preview.isError) {
    body =
      preview.error instanceof ApiError && preview.error.notAvailable ? (
        <NotAvailable what="The policy preview" />
      ) : (
        <ErrorMessage error={preview.error} />
      );
  } else if (!preview.data.policy) {
    body = (
      <p role="alert" className="error-text">
        No approval policy applies to a {humanise(preview.data.resolved_for.kind).toLowerCase()} in
        tier {preview.data.resolved_for.tier}, {preview.data.resolved_for.environment}: ask an admin
        before creating this request.
      </p>
    );
  } else {
    const r = preview.data.resolved_for;
    body = (
      <>
        <p className="meta">
          For a {humanise(r.kind).toLowerCase()} in tier {r.tier}, {r.environment}:
        </p>
        <PolicyFacts policy={preview.data.policy} />
      </>
    );
  }
  return (
    <aside className="panel" aria-labelledby="preview-title" aria-live="polite">
      <h2 id="preview-title">Policy that will apply</h2>
      {body}
    </aside>
  );
}
