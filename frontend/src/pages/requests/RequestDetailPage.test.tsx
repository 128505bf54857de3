import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Route, Routes } from 'react-router';
import { describe, expect, it } from 'vitest';
import type { RequestDetail } from '../../api/types';
import { page, requestDetail } from '../../test/fixtures';
import { mockFetch, renderWithProviders } from '../../test/render';
import { RequestDetailPage } from './RequestDetailPage';

function show(detail: RequestDetail, extra?: Parameters<typeof mockFetch>[0]) {
  const mock = mockFetch((url, init) => {
    const answer = extra?.(url, init);
    if (answer) return answer;
    if (url.pathname === `/api/v1/requests/${detail.id}/`) return { body: detail };
    return undefined;
  });
  renderWithProviders(
    <Routes>
      <Route path="/requests/:id" element={<RequestDetailPage />} />
      <Route path="/executions/:id" element={<p>execution page {'ok'}</p>} />
    </Routes>,
    { route: `/requests/${detail.id}` },
  );
  return mock;
}

describe('RequestDetailPage', () => {
  it('shows approvals so far, what is still required and readiness at each approval', async () => {
    show(requestDetail());
    const panel = await screen.findByRole('region', { name: 'Approvals' });
    expect(panel).toHaveTextContent('1 of 2 distinct approvers — 1 more needed.');
    const roles = within(panel).getByRole('list', { name: 'Roles that must be covered' });
    expect(roles).toHaveTextContent(/IT approver: \W*covered by ivan/);
    expect(roles).toHaveTextContent(/Business approver: \W*still required/);
    const vote = within(panel).getByRole('row', { name: /ivan/ });
    expect(vote).toHaveTextContent('Approved');
    expect(vote).toHaveTextContent(/orders-pg:.*Green.*lag 1 s/);
  });

  it('disables approve and deny with the reason when the user may not act', async () => {
    show(
      requestDetail({
        can_approve: false,
        why_not: 'You requested this; a requester never approves their own request.',
        can_deny: false,
        why_not_deny: 'You requested this; a requester never approves their own request.',
      }),
    );
    const approve = await screen.findByRole('button', { name: 'Approve' });
    expect(approve).toBeDisabled();
    expect(approve).toHaveAccessibleDescription(/requester never approves their own request/);
    expect(screen.getByRole('button', { name: 'Deny' })).toBeDisabled();
    expect(screen.getByText(/You cannot approve: You requested this/)).toBeVisible();
  });

  it('approves with the comment typed', async () => {
    const detail = requestDetail();
    const voted = { ...detail, can_approve: false, why_not: 'You have already voted.' };
    let current = detail;
    const { calls } = show(detail, (url) => {
      if (url.pathname.endsWith('/approve/')) {
        current = voted;
        return { body: voted };
      }
      return url.pathname === '/api/v1/requests/7/' ? { body: current } : undefined;
    });
    const user = userEvent.setup();
    await user.type(await screen.findByLabelText('Comment'), 'Checked the lag');
    await user.click(screen.getByRole('button', { name: 'Approve' }));
    await screen.findByText('Recorded.');
    const post = calls.find((c) => c.url.pathname.endsWith('/approve/'));
    expect(post?.init.method).toBe('POST');
    expect(post?.init.body).toBe('{"comment":"Checked the lag"}');
    expect(screen.getByRole('button', { name: 'Approve' })).toBeDisabled();
  });

  it('starts only after prechecks and the typed name', async () => {
    const detail = requestDetail({
      state: 'approved',
      can_start: true,
      why_not_start: '',
      approvals_required: {
        ...requestDetail().approvals_required,
        satisfied: true,
        still_needed: 0,
      },
    });
    const { calls } = show(detail, (url) => {
      if (url.pathname.endsWith('/prechecks/')) {
        return {
          body: {
            supported: true,
            ok: true,
            ran_at: '2026-11-20T10:10:00Z',
            results: [
              {
                resource: 'orders-pg',
                name: 'standby_caught_up',
                description: 'Standby is caught up',
                ok: true,
                detail: 'lag 0 s',
              },
            ],
          },
        };
      }
      if (url.pathname.endsWith('/start/'))
        return { status: 202, body: { execution: 31, state: 'queued' } };
      return undefined;
    });
    const user = userEvent.setup();
    await screen.findByRole('heading', { name: 'Start' });
    expect(screen.queryByLabelText(/to confirm/)).not.toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Run prechecks' }));
    expect(await screen.findByText('Standby is caught up')).toBeInTheDocument();
    const confirm = screen.getByLabelText(/Type orders-pg to confirm/);
    const start = screen.getByRole('button', { name: 'Start switchover' });
    await user.type(confirm, 'orders');
    expect(start).toBeDisabled();
    await user.type(confirm, '-pg');
    expect(start).toBeEnabled();
    await user.click(start);
    await screen.findByText('execution page ok');
    const post = calls.find((c) => c.url.pathname.endsWith('/start/'));
    expect(JSON.parse(String(post?.init.body))).toEqual({
      confirm: 'orders-pg',
      overrides: [],
      override_reason: '',
    });
  });

  it('says why a start is not allowed', async () => {
    show(
      requestDetail({
        state: 'approved',
        can_start: false,
        why_not_start: 'Another execution holds orders-pg.',
      }),
      (url) =>
        url.pathname.endsWith('/prechecks/')
          ? { body: { supported: true, ok: true, results: [] } }
          : undefined,
    );
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: 'Run prechecks' }));
    await waitFor(() =>
      expect(screen.getByText(/You cannot start: Another execution holds orders-pg/)).toBeVisible(),
    );
    await user.type(screen.getByLabelText(/to confirm/), 'orders-pg');
    expect(screen.getByRole('button', { name: 'Start switchover' })).toBeDisabled();
  });

  it('links the executions and, once finished, the printable evidence report', async () => {
    const detail = requestDetail({ state: 'succeeded' });
    show(detail, (url) =>
      url.pathname === '/api/v1/executions/'
        ? { body: page([{ id: 31, request: detail.id, state: 'succeeded' }]) }
        : undefined,
    );
    const execution = await screen.findByRole('link', { name: 'Execution #31' });
    expect(execution).toHaveAttribute('href', '/executions/31');
    const report = screen.getByRole('link', { name: /Evidence report for request #7/ });
    expect(report).toHaveAttribute('href', '/api/v1/requests/7/evidence/?format=html');
  });

  it('has no evidence link before the request has run', async () => {
    show(requestDetail());
    await screen.findByRole('region', { name: 'Approvals' });
    expect(screen.queryByRole('link', { name: /Evidence report/ })).not.toBeInTheDocument();
  });
});
