import { QueryCache, QueryClient } from '@tanstack/react-query';
import { ApiError } from './client';
import { session } from './session';

/** Polling periods (ms). Live screens poll; a failed poll keeps the last data on screen. */
export const POLL = { board: 5000, detail: 5000, history: 60000, execution: 2000 } as const;

function retry(failureCount: number, error: unknown): boolean {
  // A 4xx will not change by asking again; the next poll retries anything else anyway.
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 1;
}

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    queryCache: new QueryCache({
      onError: (error) => {
        if (error instanceof ApiError && error.status === 401) session.expire();
      },
    }),
    defaultOptions: {
      queries: { retry, retryDelay: 1000, staleTime: 2000, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
}
