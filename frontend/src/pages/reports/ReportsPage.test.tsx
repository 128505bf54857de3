import { fireEvent, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { AppRoutes } from '../../App';
import { mockFetch, renderWithProviders, setBootstrap } from '../../test/render';
import { defaultDates, localDate, periodOf } from './period';

const report = (since: string, until: string, tier: number | null = null) => ({
  report: { format: 'bcservice-readiness', version: 1, generated_at: until, since, until, tier },
  resources: [{ resource: 'orders-pg' }, { resource: 'ledger-pg' }],
  tiers: [],
  drills: [{ resource: 'orders-pg', result: 'pass' }],
  drill_overdue: [],
});

function open(answer: (url: URL) => { status?: number; body?: unknown }, roles = ['auditor']) {
  setBootstrap({ user: { username: 'aud', roles }, me_url: null, endpoints: { reports: true } });
  const mock = mockFetch((url) =>
    url.pathname === '/api/v1/reports/readiness/' ? answer(url) : undefined,
  );
  renderWithProviders(<AppRoutes />, { route: '/reports' });
  return mock;
}

describe('ReportsPage', () => {
  it('defaults to the last 30 days and links the printable page, CSV and JSON', async () => {
    const { calls } = open((url) => ({
      body: report(url.searchParams.get('since') ?? '', new Date().toISOString()),
    }));
    const user = userEvent.setup();
    expect(await screen.findByRole('link', { name: 'Reports' })).toHaveAttribute(
      'href',
      '/reports',
    );
    const { from, to } = defaultDates();
    expect(screen.getByLabelText('From')).toHaveValue(from);
    expect(screen.getByLabelText('To (inclusive)')).toHaveValue(to);
    await user.click(screen.getByRole('button', { name: 'Show report' }));
    const html = await screen.findByRole('link', { name: 'Open the printable report' });
    const since = periodOf(from, to, '').since!;
    // Today's "to" leaves the end to the server (now); the start is local midnight 30 days ago.
    expect(calls[0]?.url.search).toBe(`?format=json&since=${encodeURIComponent(since)}`);
    const query = `since=${encodeURIComponent(since)}`;
    expect(html).toHaveAttribute('href', `/api/v1/reports/readiness/?format=html&${query}`);
    expect(screen.getByRole('link', { name: 'Download CSV' })).toHaveAttribute(
      'href',
      `/api/v1/reports/readiness/?format=csv&${query}`,
    );
    expect(screen.getByRole('link', { name: 'Download JSON' })).toHaveAttribute(
      'href',
      `/api/v1/reports/readiness/?format=json&${query}`,
    );
    expect(screen.getByText(/2 resources you may see · 1 drills run · 0 with/)).toBeVisible();
  });

  it('builds the links of a chosen period and tier (the end day included)', async () => {
    open((url) =>
      url.searchParams.get('tier') === '1'
        ? { body: report('2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z', 1) }
        : { status: 400, body: { tier: ['Wrong.'] } },
    );
    const user = userEvent.setup();
    fireEvent.change(screen.getByLabelText('From'), { target: { value: '2026-10-01' } });
    fireEvent.change(screen.getByLabelText('To (inclusive)'), { target: { value: '2026-10-31' } });
    await user.selectOptions(screen.getByLabelText('Tier'), '1');
    await user.click(screen.getByRole('button', { name: 'Show report' }));
    const csv = await screen.findByRole('link', { name: 'Download CSV' });
    const since = new Date(2026, 9, 1).toISOString();
    const until = new Date(2026, 10, 1).toISOString(); // exclusive: the midnight after the 31st
    const expected = new URLSearchParams({ format: 'csv', since, until, tier: '1' });
    expect(csv).toHaveAttribute('href', `/api/v1/reports/readiness/?${expected}`);
    expect(csv).toHaveAttribute('download');
    expect(screen.getByRole('heading', { name: /Readiness of tier 1 from/ })).toBeVisible();
  });

  it('shows the API’s field errors next to the fields when the period is invalid', async () => {
    open(() => ({ status: 400, body: { until: ['Must be after since.'] } }));
    const user = userEvent.setup();
    fireEvent.change(screen.getByLabelText('From'), { target: { value: '2026-10-31' } });
    fireEvent.change(screen.getByLabelText('To (inclusive)'), { target: { value: '2026-10-01' } });
    await user.click(screen.getByRole('button', { name: 'Show report' }));
    expect(await screen.findByText('Must be after since.')).toBeVisible();
    const to = screen.getByLabelText('To (inclusive)');
    expect(to).toHaveAttribute('aria-invalid', 'true');
    expect(to).toHaveAccessibleDescription('Must be after since.');
    expect(screen.getByLabelText('From')).not.toHaveAttribute('aria-invalid');
    expect(screen.queryByRole('link', { name: /printable report|Download/ })).toBeNull();
  });

  it('puts a too-long period’s error on From', async () => {
    const message = 'The period may be at most 92 days (history is kept for 90 days).';
    open(() => ({ status: 400, body: { since: [message] } }));
    const user = userEvent.setup();
    fireEvent.change(screen.getByLabelText('From'), { target: { value: '2026-01-01' } });
    await user.click(screen.getByRole('button', { name: 'Show report' }));
    expect(await screen.findByText(message)).toBeVisible();
    expect(screen.getByLabelText('From')).toHaveAccessibleDescription(message);
  });

  it('is offered in the header to every role, not to a user without one', async () => {
    open(() => ({ body: {} }), []);
    expect(await screen.findByText('(no role)')).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: 'Reports' })).toBeNull();
  });
});

describe('periodOf', () => {
  it('takes local days: start of From, the midnight after To, and today as "now"', () => {
    const now = new Date(2026, 10, 23, 15, 30);
    expect(localDate(now)).toBe('2026-11-23');
    expect(defaultDates(now)).toEqual({ from: '2026-10-24', to: '2026-11-23' });
    expect(periodOf('2026-10-24', '2026-11-23', '', now)).toEqual({
      since: new Date(2026, 9, 24).toISOString(),
      until: undefined,
      tier: undefined,
    });
    expect(periodOf('', '2026-11-01', '3', now)).toEqual({
      since: undefined,
      until: new Date(2026, 10, 2).toISOString(),
      tier: '3',
    });
  });
});
