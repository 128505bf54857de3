import { Link, useSearchParams } from 'react-router';
import { useRequests } from '../../api/requests';
import {
  REQUEST_KINDS,
  REQUEST_STATES,
  type RequestKind,
  type RequestState,
} from '../../api/types';
import { ErrorMessage, Loading, StaleDataBanner } from '../../components/Banner';
import { PhaseBadge } from '../../components/StateBadge';
import { humanise } from '../../lib/format';
import { RequestTable } from './RequestTable';
import { usePageTitle } from '../../lib/usePageTitle';

function asState(value: string | null): RequestState | '' {
  return REQUEST_STATES.find((s) => s === value) ?? '';
}

function asKind(value: string | null): RequestKind | '' {
  return REQUEST_KINDS.find((k) => k === value) ?? '';
}

export function RequestList({ waitingForMe = false }: { waitingForMe?: boolean }) {
  const [params, setParams] = useSearchParams();
  const state = asState(params.get('state'));
  const kind = asKind(params.get('kind'));
  const query = useRequests({ state, kind, waitingForMe });
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const title = waitingForMe ? 'Waiting for me' : 'Requests';
  usePageTitle(title);
  return (
    <section aria-labelledby="requests-title">
      <div className="page-head">
        <h1 id="requests-title">{title}</h1>
        <Link className="button-link" to="/requests/new">
          New request
        </Link>
      </div>
      {waitingForMe ? (
        <p className="meta">
          Requests you could approve or deny now: not your own and not already voted on.
        </p>
      ) : null}
      <form className="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter requests">
        <div className="field">
          <label htmlFor="req-state">State</label>
          <select id="req-state" value={state} onChange={(e) => set('state', e.target.value)}>
            <option value="">All</option>
            {REQUEST_STATES.map((s) => (
              <option key={s} value={s}>
                {humanise(s)}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="req-kind">Kind</label>
          <select id="req-kind" value={kind} onChange={(e) => set('kind', e.target.value)}>
            <option value="">All</option>
            {REQUEST_KINDS.map((k) => (
              <option key={k} value={k}>
                {humanise(k)}
              </option>
            ))}
          </select>
        </div>
      </form>
      {query.isError && query.data ? (
        <StaleDataBanner what="requests" error={query.error} updatedAt={query.dataUpdatedAt} />
      ) : null}
      {query.isPending ? <Loading what="requests" /> : null}
      {query.isError && !query.data ? <ErrorMessage error={query.error} /> : null}
      {query.data ? (
        query.data.results.length ? (
          <>
            <p className="count" aria-live="polite">
              {query.data.count} request{query.data.count === 1 ? '' : 's'}
              {state ? (
                <>
                  {' '}
                  in state <PhaseBadge state={state} />
                </>
              ) : null}
            </p>
            <RequestTable requests={query.data.results} caption={title} />
          </>
        ) : (
          <p className="empty">
            {waitingForMe ? 'Nothing is waiting for you.' : 'No request matches these filters.'}
          </p>
        )
      ) : null}
    </section>
  );
}
