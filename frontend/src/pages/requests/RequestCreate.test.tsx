import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Route, Routes } from 'react-router';
import { describe, expect, it } from 'vitest';
import { page, requestDetail, resource } from '../../test/fixtures';
import { mockFetch, renderWithProviders } from '../../test/render';
import { RequestCreate } from './RequestCreate';

const orders = resource({ id: 1, name: 'orders-pg', primary_site: 'london', dr_site: 'dublin' });
const sites = [
  { id: 1, name: 'london', region: 'eu-west-2', role: 'primary' },
  { id: 2, name: 'dublin', region: 'eu-west-1', role: 'dr' },
];
const preview = {
  resolved_for: { tier: 1, environment: 'production', kind: 'switchover' },
  policy: {
    id: 1,
    name: 'Tier 1 (default)',
    tier: 1,
    kind: null,
    environment: null,
    min_approvers: 2,
    required_roles: ['approver_it', 'approver_business'],
    require_change_ticket: true,
    change_ticket_pattern: '^CHG\\d+$',
    approval_validity_seconds: 14400,
    flap_window_seconds: 1800,
  },
};

function serve(create: () => { status?: number; body?: unknown }) {
  return mockFetch((url, init) => {
    if (url.pathname === '/api/v1/resources/') return { body: page([orders]) };
    if (url.pathname === '/api/v1/groups/') return { body: page([]) };
    if (url.pathname === '/api/v1/sites/') return { body: page(sites) };
    if (url.pathname === '/api/v1/policies/preview/') return { body: preview };
    if (url.pathname === '/api/v1/requests/' && init.method === 'POST') return create();
    return undefined;
  });
}

function renderPage() {
  return renderWithProviders(
    <Routes>
      <Route path="/requests/new" element={<RequestCreate />} />
      <Route path="/requests/:id" element={<p>request page</p>} />
    </Routes>,
    { route: '/requests/new?resource=1' },
  );
}

describe('RequestCreate', () => {
  it('shows the policy that will apply before submitting, then creates the request', async () => {
    const { calls } = serve(() => ({ status: 201, body: requestDetail({ id: 9 }) }));
    const user = userEvent.setup();
    renderPage();
    const policy = screen.getByRole('complementary', { name: 'Policy that will apply' });
    expect(policy).toHaveTextContent('Choose a kind and a scope');
    await screen.findByRole('option', { name: 'orders-pg (tier 1)' });
    await user.selectOptions(screen.getByLabelText('Kind'), 'switchover');
    expect(await within(policy).findByText('Tier 1 (default)')).toBeInTheDocument();
    expect(policy).toHaveTextContent('2 distinct people, not the requester');
    expect(policy).toHaveTextContent('IT approver, Business approver');
    expect(policy).toHaveTextContent('Required (format ^CHG\\d+$)');
    const previewCall = calls.find((c) => c.url.pathname === '/api/v1/policies/preview/');
    expect(previewCall?.url.search).toBe('?kind=switchover&resource=1');

    // The DR site is suggested as the target of a switchover.
    expect(screen.getByLabelText('Target site')).toHaveValue('dublin');
    await user.type(screen.getByLabelText('Change ticket'), 'CHG0012345');
    await user.type(screen.getByLabelText('Reason'), 'Quarterly test');
    await user.click(screen.getByRole('button', { name: 'Create request' }));
    expect(await screen.findByText('request page')).toBeInTheDocument();
    const post = calls.find((c) => c.init.method === 'POST');
    expect(JSON.parse(String(post?.init.body))).toEqual({
      kind: 'switchover',
      resource: 1,
      target_site: 'dublin',
      change_ticket: 'CHG0012345',
      reason: 'Quarterly test',
    });
  });

  it('shows the field errors of a refused request next to the fields', async () => {
    serve(() => ({
      status: 400,
      body: { change_ticket: ['A change ticket like CHG0000000 is required.'] },
    }));
    const user = userEvent.setup();
    renderPage();
    await screen.findByRole('option', { name: 'orders-pg (tier 1)' });
    await user.selectOptions(screen.getByLabelText('Kind'), 'failover');
    await user.type(screen.getByLabelText('Reason'), 'Primary lost');
    await user.click(screen.getByRole('button', { name: 'Create request' }));
    const ticket = screen.getByLabelText('Change ticket');
    expect(
      await screen.findByText('A change ticket like CHG0000000 is required.'),
    ).toBeInTheDocument();
    expect(ticket).toHaveAttribute('aria-invalid', 'true');
    expect(ticket).toHaveAccessibleDescription('A change ticket like CHG0000000 is required.');
  });
});
