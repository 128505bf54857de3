import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { Group, Resource } from '../../api/types';
import { group, page, resource } from '../../test/fixtures';
import { mockFetch, renderWithProviders } from '../../test/render';
import { StatusBoard } from './StatusBoard';

const green = resource({ id: 1, name: 'orders-pg', platform: 'postgres', tier: 1 });
const yellow = resource({
  id: 2,
  name: 'catalog-mongo',
  platform: 'mongodb',
  tier: 2,
  environment: 'staging',
  primary_site: 'paris',
  dr_site: 'frankfurt',
  status: {
    state: 'yellow',
    lag_seconds: 45,
    reasons: [{ code: 'lag_high', message: 'Lag 45 s is above the yellow threshold (30 s).' }],
  },
});
const red = resource({
  id: 3,
  name: 'ledger-mssql',
  platform: 'mssql',
  status: {
    state: 'red',
    lag_seconds: 300,
    reasons: [{ code: 'lag_critical', message: 'Lag above the red threshold.' }],
  },
});
const lost = resource({
  id: 4,
  name: 'warehouse-snow',
  platform: 'snowflake',
  tier: 3,
  status: {
    state: 'red',
    visibility: 'lost',
    age_seconds: 125,
    lag_seconds: 12,
    reasons: [{ code: 'unreachable', message: 'The primary cannot be reached.' }],
  },
});
const stack = group({
  id: 10,
  name: 'payments-stack',
  members: [
    { id: 1, name: 'orders-pg', position: 0, state: 'green', visibility: 'ok' },
    { id: 3, name: 'ledger-mssql', position: 1, state: 'red', visibility: 'ok' },
  ],
  status: {
    state: 'red',
    visibility: 'ok',
    reasons: [{ code: 'member_red', message: 'ledger-mssql is red.' }],
  },
});

function serve(resources: Resource[] = [green, yellow, red, lost], groups: Group[] = [stack]) {
  const state = { fail: false };
  const mock = mockFetch((url) => {
    if (state.fail) return { status: 503, body: { detail: 'Service unavailable.' } };
    if (url.pathname === '/api/v1/resources/') return { body: page(resources) };
    if (url.pathname === '/api/v1/groups/') return { body: page(groups) };
    return undefined;
  });
  return { ...mock, state };
}

const resourceTable = () => screen.getByRole('table', { name: /^Resources/ });
const loaded = () => screen.findByRole('table', { name: /^Resources/ });

function row(name: string): HTMLElement {
  const link = within(resourceTable()).getByRole('link', { name });
  const tr = link.closest('tr');
  if (!tr) throw new Error(`no row for ${name}`);
  return tr;
}

describe('StatusBoard', () => {
  it('shows every state as text, not colour alone', async () => {
    serve();
    renderWithProviders(<StatusBoard />);
    await loaded();
    expect(within(row('orders-pg')).getByText(/Green/)).toBeInTheDocument();
    expect(within(row('catalog-mongo')).getByText(/Yellow/)).toBeInTheDocument();
    expect(within(row('ledger-mssql')).getByText(/Red/)).toBeInTheDocument();
    expect(
      within(row('catalog-mongo')).getByText(/above the yellow threshold/),
    ).toBeInTheDocument();
    // Lag and RPO target are shown in words.
    expect(within(row('catalog-mongo')).getByText('45 s')).toBeInTheDocument();
    expect(within(row('orders-pg')).getByText('1 min')).toBeInTheDocument();
  });

  it('orders the worst first: no visibility, red, yellow, green', async () => {
    serve();
    renderWithProviders(<StatusBoard />);
    await loaded();
    const names = within(resourceTable())
      .getAllByRole('link')
      .map((a) => a.textContent);
    expect(names).toEqual(['warehouse-snow', 'ledger-mssql', 'catalog-mongo', 'orders-pg']);
  });

  it('marks loss of visibility distinctly, with the age of the last known values', async () => {
    serve();
    renderWithProviders(<StatusBoard />);
    await loaded();
    const lostRow = row('warehouse-snow');
    expect(lostRow).toHaveClass('row-lost');
    expect(within(lostRow).getByText(/No visibility/)).toBeInTheDocument();
    expect(within(lostRow).getByText(/last known values 2 min \d+ s old/)).toBeInTheDocument();
    const lagCell = within(lostRow).getAllByRole('cell')[2];
    expect(lagCell).toHaveTextContent('12 s (last known)');
    // The visible ones say so, and are not marked lost.
    expect(within(row('orders-pg')).getByText('Visible')).toBeInTheDocument();
    expect(within(row('orders-pg')).queryByText(/No visibility/)).not.toBeInTheDocument();
    expect(screen.getByRole('list', { name: 'Resources by state' })).toHaveTextContent(
      '1 No visibility',
    );
  });

  it('filters by platform, tier, state and search text', async () => {
    serve();
    const user = userEvent.setup();
    renderWithProviders(<StatusBoard />);
    await loaded();
    const names = () =>
      within(resourceTable())
        .getAllByRole('link')
        .map((a) => a.textContent);

    await user.selectOptions(screen.getByLabelText('Platform'), 'mongodb');
    expect(names()).toEqual(['catalog-mongo']);
    expect(screen.getByText('1 of 4')).toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText('Platform'), '');
    await user.selectOptions(screen.getByLabelText('State'), 'lost');
    expect(names()).toEqual(['warehouse-snow']);

    await user.selectOptions(screen.getByLabelText('State'), 'red');
    expect(names()).toEqual(['warehouse-snow', 'ledger-mssql']);

    await user.selectOptions(screen.getByLabelText('Tier'), '1');
    expect(names()).toEqual(['ledger-mssql']);

    await user.click(screen.getByRole('button', { name: 'Clear filters' }));
    await user.type(screen.getByLabelText('Search'), 'paris');
    expect(names()).toEqual(['catalog-mongo']);

    await user.clear(screen.getByLabelText('Search'));
    await user.selectOptions(screen.getByLabelText('Site'), 'frankfurt');
    expect(names()).toEqual(['catalog-mongo']);
    await user.selectOptions(screen.getByLabelText('Environment'), 'production');
    expect(screen.getByText('No resource matches these filters.')).toBeInTheDocument();
  });

  it('shows groups with their rolled-up state and members in order', async () => {
    serve();
    renderWithProviders(<StatusBoard />);
    const groups = await screen.findByRole('table', { name: /Resource groups/ });
    const groupRow = within(groups).getByText('payments-stack').closest('tr') as HTMLElement;
    expect(within(groupRow).getByText(/ledger-mssql is red/)).toBeInTheDocument();
    const members = within(groupRow)
      .getAllByRole('listitem')
      .map((li) => li.textContent);
    expect(members[0]).toMatch(/^orders-pg.*Green/);
    expect(members[1]).toMatch(/^ledger-mssql.*Red/);
  });

  it('keeps the last data and shows a non-blocking banner when a poll fails', async () => {
    const server = serve();
    const { client } = renderWithProviders(<StatusBoard />);
    await loaded();
    server.state.fail = true;
    await act(() => client.refetchQueries());
    await waitFor(() =>
      expect(screen.getAllByRole('status').map((banner) => banner.textContent)).toContainEqual(
        expect.stringMatching(/Live updates of resources failed: Service unavailable/),
      ),
    );
    // The data is still there and the filters still work.
    expect(row('warehouse-snow')).toBeInTheDocument();
    expect(within(row('ledger-mssql')).getByText(/Red/)).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();

    server.state.fail = false;
    await act(() => client.refetchQueries());
    await waitFor(() =>
      expect(screen.queryByText(/Live updates of resources failed/)).not.toBeInTheDocument(),
    );
  });

  it('says so when the first load fails', async () => {
    mockFetch(() => ({ status: 500, body: { detail: 'Boom.' } }));
    renderWithProviders(<StatusBoard />);
    expect(await screen.findAllByRole('alert')).not.toHaveLength(0);
    expect(screen.getAllByText('Boom.').length).toBeGreaterThan(0);
  });

  it('marks a resource that runs away from its home site, and says why a drill is due', async () => {
    const away = resource({
      id: 5,
      name: 'billing-pg',
      primary_site: 'london',
      dr_site: 'dublin',
      current_site: 'dublin',
      away_from_home: true,
      current_site_changed_at: '2026-11-20T09:00:00Z',
      status: {
        state: 'yellow',
        reasons: [
          {
            code: 'drill_overdue',
            message: 'last passed drill 120 days ago; tier 1 cadence is 90 days',
          },
        ],
      },
    });
    serve([green, away], []);
    renderWithProviders(<StatusBoard />);
    await loaded();
    const marker = within(row('billing-pg')).getByRole('note');
    expect(marker).toHaveTextContent('Away from home — runs at dublin, home is london');
    expect(row('billing-pg')).toHaveTextContent(
      'DR drill overdue: last passed drill 120 days ago; tier 1 cadence is 90 days',
    );
    expect(row('orders-pg')).toHaveTextContent('Runs at london (home)');
    expect(within(row('orders-pg')).queryByText(/Away from home/)).not.toBeInTheDocument();
  });

  it('counts resources away from home in words and filters them (a group by its members)', async () => {
    const moved = (id: number, name: string) =>
      resource({
        id,
        name,
        primary_site: 'london',
        dr_site: 'dublin',
        current_site: 'dublin',
        away_from_home: true,
      });
    const billing = moved(5, 'billing-pg');
    const invoices = moved(6, 'invoices-pg');
    const movedStack = group({
      id: 11,
      name: 'billing-stack',
      members: [{ id: 5, name: 'billing-pg', position: 0, state: 'green', visibility: 'ok' }],
    });
    serve([green, yellow, billing, invoices], [stack, movedStack]);
    const user = userEvent.setup();
    renderWithProviders(<StatusBoard />, { route: '/?away=1' });
    await loaded();
    const chips = screen.getByRole('list', { name: 'Resources by state' });
    expect(chips).toHaveTextContent('2 Away from home');
    const names = () =>
      within(resourceTable())
        .getAllByRole('link')
        .map((a) => a.textContent);
    // From the query string: only the two that run away from home, and the group holding one.
    expect(screen.getByLabelText('Runs at')).toHaveValue('1');
    expect(names()).toEqual(['billing-pg', 'invoices-pg']);
    const groups = screen.getByRole('table', { name: /Resource groups/ });
    expect(within(groups).getByText('billing-stack')).toBeInTheDocument();
    expect(within(groups).queryByText('payments-stack')).not.toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText('Runs at'), '0');
    expect(names()).toEqual(['catalog-mongo', 'orders-pg']);
    expect(chips).toHaveTextContent('0 Away from home');
    await user.click(screen.getByRole('button', { name: 'Clear filters' }));
    expect(names()).toHaveLength(4);
    expect(chips).toHaveTextContent('2 Away from home');
  });
});
