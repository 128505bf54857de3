import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { MemoryRouter } from 'react-router';
import { vi } from 'vitest';

export function testClient(): QueryClient {
  return new QueryClient({
    defaultOptions: { queries: { retry: false, staleTime: 0 }, mutations: { retry: false } },
  });
}

export function renderWithProviders(ui: ReactElement, { route = '/', client = testClient() } = {}) {
  const result = render(
    <QueryClientProvider client={client}>
      <MemoryRouter initialEntries={[route]}>{ui}</MemoryRouter>
    </QueryClientProvider>,
  );
  return { ...result, client };
}

type Answer = { status?: number; body?: unknown; headers?: Record<string, string> };
type Handler = (url: URL, init: RequestInit) => Answer | undefined;

/** Replaces fetch: each call goes to `handler`, which answers by path; unknown paths get 404. */
export function mockFetch(handler: Handler) {
  const calls: { url: URL; init: RequestInit }[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://localhost');
    calls.push({ url, init });
    const answer = handler(url, init) ?? { status: 404, body: { detail: 'Not found.' } };
    const status = answer.status ?? 200;
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status,
      headers: { 'Content-Type': 'application/json', ...answer.headers },
    });
  });
  vi.stubGlobal('fetch', fn);
  return { fn, calls };
}

/** Embeds the page's bootstrap data (frontend/views.py) as the server would; setup.ts removes it
 * after each test. */
export function setBootstrap(data: Record<string, unknown>): void {
  document.getElementById('bc-bootstrap')?.remove();
  const node = document.createElement('script');
  node.id = 'bc-bootstrap';
  node.type = 'application/json';
  node.textContent = JSON.stringify(data);
  document.head.appendChild(node);
}
