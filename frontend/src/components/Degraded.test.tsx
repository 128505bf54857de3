// Degraded mode as bcservice/degraded.py answers it: the page-wide banner, values marked as last
// known, and refused actions that say whether they were applied.
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { AppRoutes } from '../App';
import { ApiError, api } from '../api/client';
import { degraded } from '../api/degraded';
import { formatClock, formatTime } from '../lib/format';
import { MESSAGES, noCopy, refused, staleCopy, unconfirmed } from '../test/degraded';
import { group, page, requestDetail, resource } from '../test/fixtures';
import { mockFetch, renderWithProviders, setBootstrap } from '../test/render';

const SNAPSHOT_AT = '2026-11-20T10:00:05.123456+00:00'; // Python's isoformat()
const BANNER = /bcservice cannot reach its own database: showing the last known status from/;

const orders = resource({ id: 1, name: 'orders-pg', status: { state: 'green', age_seconds: 4 } });
const ledger = resource({ id: 2, name: 'ledger-pg', status: { state: 'red' } });
const stack = group({ id: 10, name: 'payments-stack' });

function app(route: string) {
  setBootstrap({ user: { username: 'olga', roles: ['operator'] }, me_url: null });
  return renderWithProviders(<AppRoutes />, { route });
}

const banner = () => screen.getByText(BANNER).closest('[role="alert"]') as HTMLElement;

describe('degraded mode', () => {
  it('shows a page-wide banner and marks the last known status on the board', async () => {
    const outage = { on: true };
    mockFetch((url) => {
      const live = url.pathname === '/api/v1/resources/' ? page([orders, ledger]) : page([stack]);
      if (!['/api/v1/resources/', '/api/v1/groups/'].includes(url.pathname)) return undefined;
      return outage.on ? staleCopy(live, SNAPSHOT_AT, 95) : { body: live };
    });
    const { client } = app('/');
    await screen.findByText(BANNER);
    expect(banner()).toHaveTextContent(
      `bcservice cannot reach its own database: showing the last known status from ${formatTime(SNAPSHOT_AT)}; actions are refused.`,
    );
    // Every state on screen says it is the last known one, in words.
    const table = await screen.findByRole('table', { name: /^Resources/ });
    const row = within(table).getByRole('link', { name: 'orders-pg' }).closest('tr')!;
    expect(row).toHaveTextContent(/Green\s*\(last known\)/);
    expect(row).toHaveClass('row-lost');
    // The copy was 95 s old when it arrived: its age counts on from there, not from 4 s.
    expect(row).toHaveTextContent(/1 min 3\d s/);
    const groups = screen.getByRole('table', { name: /^Resource groups/ });
    expect(within(groups).getByText('(last known)')).toBeVisible();
    expect(screen.getAllByRole('note').map((n) => n.textContent)).toContain(
      `Last known status from ${formatTime(SNAPSHOT_AT)}, not live: bcservice cannot reach its own database.`,
    );
    expect(screen.getByText('Not live: last known copy')).toBeInTheDocument();

    // The database is back: the next live answer ends it.
    outage.on = false;
    await client.refetchQueries();
    await waitFor(() => expect(screen.queryByText(BANNER)).not.toBeInTheDocument());
    expect(screen.queryByText('(last known)')).not.toBeInTheDocument();
  });

  it('marks the resource detail of a copy as last known', async () => {
    mockFetch((url) => {
      if (url.pathname === '/api/v1/resources/1/') return staleCopy(orders, SNAPSHOT_AT, 30);
      if (url.pathname === '/api/v1/requests/') return noCopy();
      return undefined;
    });
    app('/resources/1');
    const heading = await screen.findByRole('heading', { level: 1, name: /orders-pg/ });
    expect(heading).toHaveTextContent(/Green\s*\(last known\)/);
    const observation = screen.getByRole('region', { name: 'Current observation' });
    expect(observation).toHaveTextContent('1.5 s (last known)');
    expect(await screen.findByText(BANNER)).toBeInTheDocument();
  });

  it('keeps the data of the last live answer, marked, when a poll gets 503 without a copy', async () => {
    const outage = { on: false };
    mockFetch((url) => {
      if (url.pathname === '/api/v1/resources/') {
        return outage.on ? noCopy() : { body: page([orders]) };
      }
      if (url.pathname === '/api/v1/groups/') return { body: page([]) };
      return undefined;
    });
    const { client } = app('/');
    await screen.findByRole('link', { name: 'orders-pg' });
    const liveAt = client.getQueryState(['resources'])?.dataUpdatedAt ?? 0;
    outage.on = true;
    await client.refetchQueries({ queryKey: ['resources'] }).catch(() => undefined);
    await screen.findByText(BANNER);
    expect(banner()).toHaveTextContent(`last known status from ${formatClock(liveAt)}`);
    const row = screen.getByRole('link', { name: 'orders-pg' }).closest('tr')!;
    expect(row).toHaveTextContent(/Green\s*\(last known\)/);
  });

  it('says an approval was refused and not applied, in the server’s words', async () => {
    const outage = { on: false };
    mockFetch((url) => {
      if (url.pathname === '/api/v1/requests/7/approve/') {
        outage.on = true;
        return refused('POST');
      }
      // requests/ is not a status read: no copy is kept, so during the outage it is a 503 too.
      if (url.pathname === '/api/v1/requests/7/') {
        return outage.on ? noCopy() : { body: requestDetail() };
      }
      return undefined;
    });
    app('/requests/7');
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: 'Approve' }));
    const error = await screen.findByText(MESSAGES.REFUSED('POST'), { exact: false });
    expect(error).toHaveTextContent(`Not done: nothing was changed. ${MESSAGES.REFUSED('POST')}`);
    expect(screen.queryByText(/something went wrong/i)).not.toBeInTheDocument();
    expect(screen.queryByText('Recorded.')).not.toBeInTheDocument();
    expect(await screen.findByText(BANNER)).toBeInTheDocument();
  });

  it('says a start may or may not have been applied when the outage came mid-way', async () => {
    const detail = requestDetail({ state: 'approved', can_start: true, why_not_start: '' });
    mockFetch((url) => {
      if (url.pathname.endsWith('/prechecks/')) {
        return { body: { supported: true, ok: true, results: [] } };
      }
      if (url.pathname.endsWith('/start/')) return unconfirmed('POST');
      if (url.pathname === '/api/v1/requests/7/') return { body: detail };
      return undefined;
    });
    app('/requests/7');
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: 'Run prechecks' }));
    await user.type(await screen.findByLabelText(/to confirm/), 'orders-pg');
    await user.click(screen.getByRole('button', { name: 'Start switchover' }));
    const error = await screen.findByText(MESSAGES.UNCONFIRMED('POST'), { exact: false });
    expect(error).toHaveTextContent(
      'Not confirmed: the change may or may not have been applied. ' +
        "The service's own database became unreachable while this POST was being handled. " +
        "Its change was not confirmed: check the object's state before repeating it.",
    );
    expect(error).toHaveAttribute('role', 'alert');
  });

  it('says a new request was refused and not created', async () => {
    mockFetch((url, init) => {
      if (url.pathname === '/api/v1/resources/') return { body: page([orders]) };
      if (url.pathname === '/api/v1/groups/') return { body: page([]) };
      if (url.pathname === '/api/v1/sites/') {
        return { body: page([{ id: 2, name: 'dublin', region: 'eu-west-1', role: 'dr' }]) };
      }
      if (url.pathname === '/api/v1/requests/' && init.method === 'POST') return refused('POST');
      return undefined;
    });
    app('/requests/new?resource=1');
    const user = userEvent.setup();
    await screen.findByRole('option', { name: 'orders-pg (tier 1)' });
    await user.selectOptions(screen.getByLabelText('Kind'), 'failover');
    await user.type(screen.getByLabelText('Reason'), 'Primary lost');
    await user.click(screen.getByRole('button', { name: 'Create request' }));
    const error = await screen.findByText(/refused and nothing was changed/);
    expect(error).toHaveTextContent(/^Not done: nothing was changed\. The service's own database/);
    expect(screen.getByRole('heading', { name: 'New request' })).toBeInTheDocument();
  });
});

describe('the client in degraded mode', () => {
  it('marks a copy from its headers when the body has no member, and a 503 as degraded', async () => {
    mockFetch((url) => {
      if (url.pathname === '/api/v1/status/summary/') {
        const { headers } = staleCopy({}, SNAPSHOT_AT, 3);
        return { body: { red: 1 }, headers };
      }
      return refused('DELETE');
    });
    const summary = await api<Record<string, unknown>>('status/summary/');
    expect(summary.degraded).toMatchObject({ stale: true, snapshot_at: SNAPSHOT_AT });
    expect(degraded.state).toMatchObject({ active: true, snapshotAt: SNAPSHOT_AT });
    const error = await api('sites/1/', { method: 'DELETE' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).degraded).toBe(true);
    expect((error as ApiError).outcome).toBe('not_applied');
    expect((error as ApiError).message).toBe(MESSAGES.REFUSED('DELETE'));
  });

  it('keeps the oldest copy time while degraded and forgets it once live', () => {
    degraded.report('2026-11-20T10:00:05+00:00');
    degraded.report('2026-11-20T09:59:00+00:00');
    degraded.report('2026-11-20T10:01:00+00:00');
    expect(degraded.state.snapshotAt).toBe('2026-11-20T09:59:00+00:00');
    degraded.live(1000);
    expect(degraded.state).toEqual({ active: false, snapshotAt: null, lastLiveAt: 1000 });
  });
});
