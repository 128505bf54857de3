import { Link, useParams } from 'react-router';
import { ApiError } from '../../api/client';
import { useExecutionsForRequest } from '../../api/executions';
import { serverHas } from '../../api/me';
import { useRequest } from '../../api/requests';
import type { RequestDetail } from '../../api/types';
import { Banner, ErrorMessage, Loading, StaleDataBanner } from '../../components/Banner';
import { EvidenceLink } from '../../components/EvidenceLink';
import { PhaseBadge } from '../../components/StateBadge';
import { formatTime, humanise } from '../../lib/format';
import { ApprovalsPanel } from './ApprovalsPanel';
import { PolicyFacts } from './PolicyPreviewPanel';
import { StartPanel } from './StartPanel';
import { VotePanel } from './VotePanel';
import { usePageTitle } from '../../lib/usePageTitle';

const HAS_EXECUTION = ['running', 'succeeded', 'failed'];
const FINISHED = ['succeeded', 'failed'];

function Executions({ request }: { request: RequestDetail }) {
  const shown = HAS_EXECUTION.includes(request.state) && serverHas('executions');
  const executions = useExecutionsForRequest(request.id, shown);
  if (!shown) return null;
  if (executions.isPending) return <Loading what="the execution" />;
  if (executions.isError) return <ErrorMessage error={executions.error} />;
  if (!executions.data.length) return <p className="muted">No execution found for this request.</p>;
  return (
    <>
      <ul className="executions">
        {executions.data.map((e) => (
          <li key={e.id}>
            <Link to={`/executions/${e.id}`}>Execution #{e.id}</Link>{' '}
            <PhaseBadge state={e.state ?? 'queued'} />
          </li>
        ))}
      </ul>
      {FINISHED.includes(request.state) ? (
        <p>
          <EvidenceLink requestId={request.id} />
        </p>
      ) : null}
    </>
  );
}

function Summary({ request }: { request: RequestDetail }) {
  const scope = request.resource ? (
    <Link to={`/resources/${request.resource}`}>{request.resource_name}</Link>
  ) : (
    <>{request.group_name} (group)</>
  );
  return (
    <section aria-labelledby="summary-title" className="panel">
      <h2 id="summary-title">Request</h2>
      <dl className="facts">
        <dt>Kind</dt>
        <dd>{request.kind === 'drill' ? 'DR drill' : humanise(request.kind)}</dd>
        <dt>Scope</dt>
        <dd>{scope}</dd>
        <dt>Target site</dt>
        <dd>{request.target_site}</dd>
        <dt>Requested by</dt>
        <dd>{request.requested_by}</dd>
        <dt>Reason</dt>
        <dd>{request.reason}</dd>
        <dt>Change ticket</dt>
        <dd>{request.change_ticket || '—'}</dd>
        <dt>Created</dt>
        <dd>{formatTime(request.created_at)}</dd>
        {request.expires_at ? (
          <>
            <dt>Expires</dt>
            <dd>{formatTime(request.expires_at)}</dd>
          </>
        ) : null}
        {request.breakglass_grant ? (
          <>
            <dt>Break-glass</dt>
            <dd>Started under grant #{request.breakglass_grant}</dd>
          </>
        ) : null}
      </dl>
      <h3>Policy</h3>
      <PolicyFacts policy={request.policy} />
    </section>
  );
}

export function RequestDetailPage() {
  const id = Number(useParams().id);
  const query = useRequest(id);
  usePageTitle(
    query.data ? `Request #${id} (${query.data.state.replace(/_/g, ' ')})` : `Request #${id}`,
  );
  if (query.isPending) return <Loading what="the request" />;
  if (query.isError && !query.data) {
    return query.error instanceof ApiError && query.error.status === 404 ? (
      <Banner tone="error">
        No such request, or it is outside what you may see. <Link to="/requests">All requests</Link>
        .
      </Banner>
    ) : (
      <ErrorMessage error={query.error} />
    );
  }
  const request = query.data;
  const name = request.resource_name || request.group_name || '';
  const flap = request.flapping;
  return (
    <article aria-labelledby="request-title">
      <p className="breadcrumb">
        <Link to="/requests">Requests</Link> › #{request.id}
      </p>
      <div className="page-head">
        <h1 id="request-title">
          {humanise(request.kind)} of {name} to {request.target_site}{' '}
          <PhaseBadge state={request.state} />
        </h1>
      </div>
      {request.state_reason ? <p className="meta">{request.state_reason}</p> : null}
      {query.isError ? (
        <StaleDataBanner what="this request" error={query.error} updatedAt={query.dataUpdatedAt} />
      ) : null}
      {flap.blocked ? (
        <Banner tone="warning">
          Anti-flapping: the last move was at {formatTime(flap.last_move_at)}; a new one needs an
          admin acknowledgement until {formatTime(flap.window_ends_at)}.
        </Banner>
      ) : null}
      <Executions request={request} />
      <div className="grid grid-2">
        <Summary request={request} />
        <VotePanel request={request} />
        <ApprovalsPanel request={request} />
        <StartPanel request={request} name={name} />
      </div>
    </article>
  );
}
