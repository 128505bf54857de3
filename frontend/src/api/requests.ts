import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from './client';
import { POLL } from './queryClient';
import type {
  Page,
  PolicyPreview,
  PrecheckReport,
  RequestCreate,
  RequestDetail,
  RequestKind,
  RequestRow,
  RequestState,
  StartBody,
  Started,
} from './types';

export interface RequestFilters {
  state?: RequestState | '';
  kind?: RequestKind | '';
  resource?: number;
  group?: number;
  waitingForMe?: boolean;
  pageSize?: number;
}

const ACTIVE: string[] = ['pending_approval', 'approved', 'running'];

export function useRequests(filters: RequestFilters, poll = POLL.board) {
  return useQuery({
    queryKey: ['requests', 'list', filters],
    queryFn: ({ signal }) =>
      api<Page<RequestRow>>('requests/', {
        query: {
          state: filters.state,
          kind: filters.kind,
          resource: filters.resource,
          group: filters.group,
          waiting_for_me: filters.waitingForMe ? 1 : undefined,
          page_size: filters.pageSize ?? 100,
        },
        signal,
      }),
    refetchInterval: poll,
    placeholderData: keepPreviousData,
  });
}

export function useRequest(id: number) {
  return useQuery({
    queryKey: ['requests', 'detail', id],
    queryFn: ({ signal }) => api<RequestDetail>(`requests/${id}/`, { signal }),
    refetchInterval: (query) => {
      const state = query.state.data?.state;
      return state === undefined || ACTIVE.includes(state) ? POLL.detail : false;
    },
  });
}

export interface Scope {
  resource?: number;
  group?: number;
}

export function usePolicyPreview(kind: RequestKind | '', scope: Scope) {
  const ready = kind !== '' && (scope.resource !== undefined || scope.group !== undefined);
  return useQuery({
    queryKey: ['policies', 'preview', kind, scope.resource ?? null, scope.group ?? null],
    queryFn: ({ signal }) =>
      api<PolicyPreview>('policies/preview/', {
        query: { kind, resource: scope.resource, group: scope.group },
        signal,
      }),
    enabled: ready,
    staleTime: 30_000,
  });
}

export function useCreateRequest() {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: RequestCreate) => api<RequestDetail>('requests/', { method: 'POST', body }),
    onSuccess: (created) => {
      client.setQueryData(['requests', 'detail', created.id], created);
      void client.invalidateQueries({ queryKey: ['requests', 'list'] });
    },
  });
}

export type RequestAction = 'approve' | 'deny' | 'cancel';

export function useRequestAction(id: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ action, comment }: { action: RequestAction; comment: string }) =>
      api<RequestDetail>(`requests/${id}/${action}/`, { method: 'POST', body: { comment } }),
    onSuccess: (detail) => client.setQueryData(['requests', 'detail', id], detail),
    onSettled: () => client.invalidateQueries({ queryKey: ['requests'] }),
  });
}

export function usePrechecks(id: number) {
  return useMutation({
    mutationFn: () => api<PrecheckReport>(`requests/${id}/prechecks/`, { method: 'POST' }),
  });
}

export function useStart(id: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (body: StartBody) =>
      api<Started>(`requests/${id}/start/`, { method: 'POST', body }),
    onSettled: () => client.invalidateQueries({ queryKey: ['requests'] }),
  });
}
