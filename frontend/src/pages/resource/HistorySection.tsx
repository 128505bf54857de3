import { ApiError } from '../../api/client';
import { HISTORY_HOURS, useHistory } from '../../api/inventory';
import { serverHas } from '../../api/me';
import type { Resource } from '../../api/types';
import { ErrorMessage, Loading, NotAvailable, StaleDataBanner } from '../../components/Banner';
import { LagChart } from '../../components/LagChart';

export function HistorySection({ resource }: { resource: Resource }) {
  const history = useHistory(resource.id);
  const body = (() => {
    if (!serverHas('history')) return <NotAvailable what="Lag history" />;
    if (history.isPending) return <Loading what="lag history" />;
    if (history.isError && !history.data) {
      return history.error instanceof ApiError && history.error.notAvailable ? (
        <NotAvailable what="Lag history" />
      ) : (
        <ErrorMessage error={history.error} />
      );
    }
    const data = history.data;
    if (!data) return null;
    return (
      <>
        {history.isError ? (
          <StaleDataBanner
            what="lag history"
            error={history.error}
            updatedAt={history.dataUpdatedAt}
          />
        ) : null}
        {data.points.length ? (
          <LagChart
            points={data.points}
            since={new Date(data.since).getTime()}
            until={new Date(data.until).getTime()}
            yellow={resource.yellow_lag_seconds}
            red={resource.red_lag_seconds}
          />
        ) : (
          <p className="empty">No observation was recorded in the last {HISTORY_HOURS} hours.</p>
        )}
        {data.truncated ? (
          <p className="note">Only the first {data.count} points are drawn.</p>
        ) : null}
      </>
    );
  })();
  return (
    <section aria-labelledby="history-title" className="panel panel-wide">
      <h2 id="history-title">Lag over the last {HISTORY_HOURS} hours</h2>
      {body}
    </section>
  );
}
