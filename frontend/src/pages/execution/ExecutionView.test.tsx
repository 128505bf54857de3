import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { Route, Routes } from 'react-router';
import { describe, expect, it } from 'vitest';
import type { Execution, Step } from '../../api/types';
import { mockFetch, renderWithProviders, setBootstrap } from '../../test/render';
import { ExecutionView } from './ExecutionView';

function step(position: number, overrides: Partial<Step> = {}): Step {
  return {
    position,
    resource: 'orders-pg',
    name: `step_${position}`,
    description: `Step number ${position}`,
    phase: 'step',
    state: 'pending',
    started_at: null,
    finished_at: null,
    duration_seconds: null,
    detail: '',
    attempts: 0,
    ...overrides,
  };
}

function execution(overrides: Partial<Execution> = {}): Execution {
  return {
    id: 31,
    request: 7,
    kind: 'switchover',
    state: 'running',
    state_reason: '',
    started_by: 'olive',
    created_at: '2026-11-20T10:00:00Z',
    started_at: '2026-11-20T10:00:01Z',
    finished_at: null,
    overrides: [],
    override_reason: '',
    evidence: {},
    runs: 1,
    steps: [
      step(1, {
        phase: 'precheck',
        state: 'succeeded',
        duration_seconds: 0.4,
        detail: 'standby caught up',
      }),
      step(2, { state: 'running', started_at: new Date(Date.now() - 3000).toISOString() }),
      step(3, { phase: 'postcheck' }),
    ],
    ...overrides,
  };
}

function show(body: Execution, extra?: Parameters<typeof mockFetch>[0]) {
  const mock = mockFetch((url, init) => {
    const answer = extra?.(url, init);
    if (answer) return answer;
    if (url.pathname === `/api/v1/executions/${body.id}/`) return { body };
    return undefined;
  });
  renderWithProviders(
    <Routes>
      <Route path="/executions/:id" element={<ExecutionView />} />
    </Routes>,
    { route: `/executions/${body.id}` },
  );
  return mock;
}

describe('ExecutionView', () => {
  it('shows steps by phase with their state, duration and live progress', async () => {
    show(execution());
    expect(
      await screen.findByText(/1 of 3 steps finished — now: Step number 2/),
    ).toBeInTheDocument();
    const table = screen.getByRole('table', { name: /Steps/ });
    expect(within(table).getByRole('rowheader', { name: 'Prechecks' })).toBeInTheDocument();
    const running = within(table).getByRole('row', { name: /Step number 2/ });
    expect(running).toHaveAttribute('aria-current', 'step');
    expect(running).toHaveTextContent(/Running/);
    expect(running).toHaveTextContent(/s so far/);
    expect(within(table).getByRole('row', { name: /Step number 1/ })).toHaveTextContent(
      /Succeeded.*0\.4 s.*standby caught up/,
    );
    expect(screen.getByRole('progressbar')).toHaveAttribute('value', '1');
  });

  it('lets an operator continue a paused execution', async () => {
    const paused = execution({
      state: 'paused',
      steps: [
        step(1, { state: 'succeeded', duration_seconds: 1 }),
        step(2, { pause_before: true }),
      ],
    });
    const { calls } = show(paused, (url) =>
      url.pathname.endsWith('/continue/') ? { body: { ...paused, state: 'running' } } : undefined,
    );
    const user = userEvent.setup();
    expect(
      await screen.findByText(/Paused for an operator before “Step number 2”/),
    ).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Continue' }));
    expect(calls.some((c) => c.url.pathname === '/api/v1/executions/31/continue/')).toBe(true);
  });

  it('gives the data-loss conclusion when finished, and says when the evidence report is missing', async () => {
    setBootstrap({ endpoints: { evidence: false } });
    const { calls } = show(
      execution({
        state: 'succeeded',
        finished_at: '2026-11-20T10:00:09Z',
        steps: [step(1, { state: 'succeeded', duration_seconds: 8 })],
        evidence: {
          total_seconds: 8.2,
          resources: {
            'orders-pg': {
              outcome: 'done',
              conclusion: {
                code: 'caught_up',
                text: 'Caught up to marker 0/3000060: no committed data was lost.',
              },
            },
          },
        },
      }),
    );
    expect(await screen.findByText(/no committed data was lost/)).toBeInTheDocument();
    expect(screen.getByText('Total time: 8.2 s')).toBeInTheDocument();
    expect(screen.getByText(/evidence report is not available/)).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: /Evidence report/ })).not.toBeInTheDocument();
    expect(screen.getByRole('heading', { level: 1 })).toHaveTextContent(/Succeeded/);
    // The page said the endpoint is missing: nothing asked for it (a 404 is a console error).
    expect(calls.some((c) => c.url.pathname.includes('/evidence/'))).toBe(false);
  });

  it('links the printable evidence report once finished, without probing it', async () => {
    setBootstrap({ endpoints: { evidence: true } });
    const { calls } = show(
      execution({ state: 'failed', finished_at: '2026-11-20T10:00:09Z', steps: [] }),
    );
    const link = await screen.findByRole('link', { name: /Evidence report for request #7/ });
    expect(link).toHaveAttribute('href', '/api/v1/requests/7/evidence/?format=html');
    expect(calls.some((c) => c.url.pathname.includes('/evidence/'))).toBe(false);
  });

  it('has no evidence link while the execution runs', async () => {
    show(execution());
    await screen.findByText(/1 of 3 steps finished/);
    expect(screen.queryByRole('link', { name: /Evidence report/ })).not.toBeInTheDocument();
  });
});
