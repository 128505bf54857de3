import { Link, useParams } from 'react-router';
import { ApiError } from '../../api/client';
import { useCollectNow, useResource } from '../../api/inventory';
import { hasRole, serverHas, useMe } from '../../api/me';
import { useRequests } from '../../api/requests';
import type { Resource } from '../../api/types';
import { ActionError } from '../../components/ActionError';
import { Banner, ErrorMessage, Loading, StaleDataBanner } from '../../components/Banner';
import { CurrentSite } from '../../components/CurrentSite';
import { LastKnownNote, lastKnownOf } from '../../components/LastKnown';
import { StateBadge } from '../../components/StateBadge';
import { formatClock, humanise } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { platformName } from '../board/Filters';
import { ageNow } from '../board/ResourceTable';
import { RequestTable } from '../requests/RequestTable';
import { HistorySection } from './HistorySection';
import { Observation, Reasons } from './Observation';
import { usePageTitle } from '../../lib/usePageTitle';

function CollectNow({ resource }: { resource: Resource }) {
  const me = useMe();
  const collect = useCollectNow(resource.id);
  if (!hasRole(me.data, 'operator', 'admin') || !serverHas('collect')) return null;
  return (
    <div className="inline-action">
      <button type="button" onClick={() => collect.mutate()} disabled={collect.isPending}>
        {collect.isPending ? 'Collecting…' : 'Collect now'}
      </button>
      {collect.isError ? (
        collect.error instanceof ApiError && collect.error.notAvailable ? (
          <span role="alert" className="error-text">
            Collecting on demand is not available on this server yet.
          </span>
        ) : (
          <ActionError error={collect.error} />
        )
      ) : null}
      {collect.isSuccess ? (
        <span role="status">Collected at {formatClock(Date.now())}.</span>
      ) : null}
    </div>
  );
}

function RecentRequests({ resource }: { resource: Resource }) {
  const requests = useRequests({ resource: resource.id, pageSize: 10 });
  return (
    <section aria-labelledby="recent-title" className="panel panel-wide">
      <div className="section-head">
        <h2 id="recent-title">Recent requests</h2>
        <Link className="button-link" to={`/requests/new?resource=${resource.id}`}>
          New request for {resource.name}
        </Link>
      </div>
      {requests.isPending ? <Loading what="requests" /> : null}
      {requests.isError && !requests.data ? <ErrorMessage error={requests.error} /> : null}
      {requests.data ? (
        requests.data.results.length ? (
          <RequestTable
            requests={requests.data.results}
            caption={`Recent requests for ${resource.name}`}
          />
        ) : (
          <p className="empty">No request for this resource yet.</p>
        )
      ) : null}
    </section>
  );
}

export function ResourceDetail() {
  const id = Number(useParams().id);
  const query = useResource(id);
  usePageTitle(query.data ? `${query.data.name} (${query.data.status.state})` : 'Resource');
  const now = useNow(1000);
  if (!Number.isInteger(id)) return <Banner tone="error">Not a resource id.</Banner>;
  if (query.isPending) return <Loading what="the resource" />;
  if (query.isError && !query.data) {
    return query.error instanceof ApiError && query.error.status === 404 ? (
      <Banner tone="error">
        No such resource, or it is outside what you may see. <Link to="/">Back to the board</Link>.
      </Banner>
    ) : (
      <ErrorMessage error={query.error} />
    );
  }
  const resource = query.data;
  const known = lastKnownOf(query);
  const elapsed =
    (query.dataUpdatedAt ? (now - query.dataUpdatedAt) / 1000 : 0) + known.offsetSeconds;
  const age = ageNow(resource.status.age_seconds, elapsed);
  return (
    <article aria-labelledby="resource-title">
      <p className="breadcrumb">
        <Link to="/">Status board</Link> › {resource.name}
      </p>
      <div className="page-head">
        <h1 id="resource-title">
          {resource.name}{' '}
          <StateBadge
            state={resource.status.state}
            lost={resource.status.visibility === 'lost'}
            lastKnown={known.lastKnown}
          />
        </h1>
        <CollectNow resource={resource} />
      </div>
      <p className="meta">
        {platformName(resource.platform)} · Tier {resource.tier} · {humanise(resource.environment)}{' '}
        · {resource.primary_site} → {resource.dr_site} ·{' '}
        {resource.away_from_home ? `now at ${resource.current_site}` : 'at home'}
        {resource.owner ? ` · Owner ${resource.owner}` : ''}
        {resource.enabled === false ? ' · Monitoring disabled' : ''}
      </p>
      {resource.away_from_home ? (
        <Banner tone="warning">
          <CurrentSite resource={resource} long />.
        </Banner>
      ) : null}
      <LastKnownNote state={known} updatedAt={query.dataUpdatedAt} />
      {query.isError && !known.lastKnown ? (
        <StaleDataBanner what="this resource" error={query.error} updatedAt={query.dataUpdatedAt} />
      ) : null}
      <div className="grid grid-2">
        <Observation resource={resource} age={age} lastKnown={known.lastKnown} />
        <Reasons resource={resource} />
        <HistorySection resource={resource} />
        <RecentRequests resource={resource} />
      </div>
    </article>
  );
}
