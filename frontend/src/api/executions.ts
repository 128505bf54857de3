import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from './client';
import { POLL } from './queryClient';
import type { Execution, ExecutionState, Page } from './types';

const LIVE: ExecutionState[] = ['queued', 'running', 'paused'];

export function useExecution(id: number) {
  return useQuery({
    queryKey: ['executions', id],
    queryFn: ({ signal }) => api<Execution>(`executions/${id}/`, { signal }),
    refetchInterval: (query) => {
      const state = query.state.data?.state;
      return state === undefined || LIVE.includes(state) ? POLL.execution : false;
    },
  });
}

/** The executions of one request, newest first. `?request=` narrows the list where the API
 * supports it; the result is filtered here as well so the answer is right either way. */
export function useExecutionsForRequest(requestId: number, enabled = true) {
  return useQuery({
    queryKey: ['executions', 'for-request', requestId],
    queryFn: async ({ signal }) => {
      const page = await api<Page<Execution>>('executions/', {
        query: { request: requestId, page_size: 100 },
        signal,
      });
      return page.results
        .filter((execution) => execution.request === requestId)
        .sort((a, b) => b.id - a.id);
    },
    enabled,
    refetchInterval: POLL.detail,
  });
}

export function useContinue(id: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api<Execution>(`executions/${id}/continue/`, { method: 'POST' }),
    onSuccess: (execution) => client.setQueryData(['executions', id], execution),
  });
}
