import { screen, within } from '@testing-library/react';
import { Route, Routes } from 'react-router';
import { describe, expect, it } from 'vitest';
import type { Resource } from '../../api/types';
import { page, resource } from '../../test/fixtures';
import { mockFetch, renderWithProviders, setBootstrap } from '../../test/render';
import { ResourceDetail } from './ResourceDetail';

function show(body: Resource) {
  // No history or collect endpoint: this test is about the observation and the site.
  setBootstrap({ endpoints: { history: false, collect: false } });
  mockFetch((url) => {
    if (url.pathname === `/api/v1/resources/${body.id}/`) return { body };
    if (url.pathname === '/api/v1/requests/') return { body: page([]) };
    return undefined;
  });
  renderWithProviders(
    <Routes>
      <Route path="/resources/:id" element={<ResourceDetail />} />
    </Routes>,
    { route: `/resources/${body.id}` },
  );
}

describe('ResourceDetail', () => {
  it('says plainly when the resource runs away from its home site', async () => {
    show(
      resource({
        id: 41,
        name: 'orders-pg',
        primary_site: 'london',
        dr_site: 'dublin',
        current_site: 'dublin',
        away_from_home: true,
        current_site_changed_at: '2026-11-20T09:00:00Z',
        last_passed_drill_at: '2026-08-01T10:00:00Z',
        drill_due_at: '2026-10-30T10:00:00Z',
        status: {
          state: 'yellow',
          reasons: [
            {
              code: 'drill_overdue',
              message: 'last passed drill 111 days ago; tier 1 cadence is 90 days',
            },
          ],
        },
      }),
    );
    const banner = await screen.findByRole('status');
    expect(banner).toHaveTextContent(
      /Away from home — runs at dublin since .+, home is london; a failback returns it there/,
    );
    expect(screen.getByText(/london → dublin · now at dublin/)).toBeInTheDocument();
    const reasons = screen.getByRole('region', { name: 'Reasons' });
    expect(within(reasons).getByRole('listitem')).toHaveTextContent(
      'DR drill overdue: last passed drill 111 days ago; tier 1 cadence is 90 days',
    );
    const observation = screen.getByRole('region', { name: 'Current observation' });
    expect(observation).toHaveTextContent(/Next drill due.*2026.*every 90 days for tier 1/);
  });

  it('shows the home site quietly when the resource is at home', async () => {
    show(resource({ id: 42, name: 'catalog-mongo', primary_site: 'london', dr_site: 'dublin' }));
    const observation = await screen.findByRole('region', { name: 'Current observation' });
    expect(observation).toHaveTextContent('Primary role atRuns at london (home)');
    expect(screen.queryByText(/Away from home/)).not.toBeInTheDocument();
    expect(screen.getByText(/london → dublin · at home/)).toBeInTheDocument();
    expect(within(observation).getByText('Last passed drill').nextSibling).toHaveTextContent('—');
  });
});
