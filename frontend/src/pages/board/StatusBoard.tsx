import { useSearchParams } from 'react-router';
import { BOARD_PAGE_SIZE, useGroups, useResources } from '../../api/inventory';
import { POLL } from '../../api/queryClient';
import { ErrorMessage, Loading, NotAvailable, StaleDataBanner } from '../../components/Banner';
import { LastKnownNote, lastKnownOf } from '../../components/LastKnown';
import { ApiError } from '../../api/client';
import { formatClock } from '../../lib/format';
import { useNow } from '../../lib/useNow';
import { Filters } from './Filters';
import {
  type BoardFilters,
  EMPTY_FILTERS,
  filterGroups,
  filterResources,
  filtersFrom,
  siteNames,
  sortGroups,
  sortResources,
} from './filtering';
import { GroupTable } from './GroupTable';
import { ResourceTable } from './ResourceTable';
import { Summary } from './Summary';
import { usePageTitle } from '../../lib/usePageTitle';

export function StatusBoard() {
  usePageTitle('Status board');
  const [params, setParams] = useSearchParams();
  const filters = filtersFrom(params);
  const resources = useResources();
  const groups = useGroups();
  const now = useNow(1000);

  // Cheap enough to recompute on every render (each second, for the ages).
  const allResources = resources.data?.results ?? [];
  const shown = sortResources(filterResources(allResources, filters));
  const shownGroups = sortGroups(filterGroups(groups.data?.results ?? [], allResources, filters));

  const update = (key: keyof BoardFilters, value: string) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
  };
  const clear = () => {
    const next = new URLSearchParams(params);
    for (const key of Object.keys(EMPTY_FILTERS)) next.delete(key);
    setParams(next, { replace: true });
  };

  const resourcesKnown = lastKnownOf(resources);
  const groupsKnown = lastKnownOf(groups);
  // A last-known copy was already old when it arrived: its ages count on from the copy's time.
  const elapsed =
    (resources.dataUpdatedAt ? Math.max(0, (now - resources.dataUpdatedAt) / 1000) : 0) +
    resourcesKnown.offsetSeconds;
  const total = resources.data?.count ?? 0;

  return (
    <section aria-labelledby="board-title">
      <div className="page-head">
        <h1 id="board-title">Status board</h1>
        <p className="live" aria-live="off">
          {resourcesKnown.lastKnown
            ? 'Not live: last known copy'
            : resources.dataUpdatedAt
              ? `Updated ${formatClock(resources.dataUpdatedAt)} · refreshes every ${POLL.board / 1000} s`
              : null}
        </p>
      </div>
      {resources.isError && resources.data && !resourcesKnown.lastKnown ? (
        <StaleDataBanner
          what="resources"
          error={resources.error}
          updatedAt={resources.dataUpdatedAt}
        />
      ) : null}
      {groups.isError && groups.data && !groupsKnown.lastKnown ? (
        <StaleDataBanner what="groups" error={groups.error} updatedAt={groups.dataUpdatedAt} />
      ) : null}
      <Filters
        filters={filters}
        sites={siteNames(allResources)}
        onChange={update}
        onClear={clear}
      />

      <h2>
        Resources{' '}
        <span className="count">
          {shown.length} of {total}
        </span>
      </h2>
      {resources.isPending ? <Loading what="resources" /> : null}
      {resources.isError && !resources.data ? <ErrorMessage error={resources.error} /> : null}
      {resources.data ? (
        <>
          <LastKnownNote state={resourcesKnown} updatedAt={resources.dataUpdatedAt} />
          <Summary resources={shown} />
          {total > allResources.length ? (
            <p className="note">
              Showing the first {BOARD_PAGE_SIZE} of {total} resources.
            </p>
          ) : null}
          {shown.length ? (
            <ResourceTable
              resources={shown}
              elapsed={elapsed}
              lastKnown={resourcesKnown.lastKnown}
            />
          ) : (
            <p className="empty">No resource matches these filters.</p>
          )}
        </>
      ) : null}

      <h2>
        Groups{' '}
        <span className="count">
          {groups.data ? `${shownGroups.length} of ${groups.data.count}` : ''}
        </span>
      </h2>
      {groups.isPending ? <Loading what="groups" /> : null}
      {groups.isError && !groups.data ? (
        groups.error instanceof ApiError && groups.error.notAvailable ? (
          <NotAvailable what="The group list" />
        ) : (
          <ErrorMessage error={groups.error} />
        )
      ) : null}
      {groups.data ? <LastKnownNote state={groupsKnown} updatedAt={groups.dataUpdatedAt} /> : null}
      {groups.data ? (
        shownGroups.length ? (
          <GroupTable groups={shownGroups} lastKnown={groupsKnown.lastKnown} />
        ) : (
          <p className="empty">No group matches these filters.</p>
        )
      ) : null}
    </section>
  );
}
