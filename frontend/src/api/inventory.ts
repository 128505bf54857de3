import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { api } from './client';
import { serverHas } from './me';
import { POLL } from './queryClient';
import type { Group, History, Page, Resource, Site } from './types';

/** Large enough for every resource a user may see in one page; the board says if cut. */
export const BOARD_PAGE_SIZE = 1000;

export function useResources() {
  return useQuery({
    queryKey: ['resources'],
    queryFn: ({ signal }) =>
      api<Page<Resource>>('resources/', { query: { page_size: BOARD_PAGE_SIZE }, signal }),
    refetchInterval: POLL.board,
  });
}

export function useGroups() {
  return useQuery({
    queryKey: ['groups'],
    queryFn: ({ signal }) =>
      api<Page<Group>>('groups/', { query: { page_size: BOARD_PAGE_SIZE }, signal }),
    refetchInterval: POLL.board,
  });
}

export function useSites() {
  return useQuery({
    queryKey: ['sites'],
    queryFn: ({ signal }) => api<Page<Site>>('sites/', { query: { page_size: 1000 }, signal }),
    staleTime: 5 * 60_000,
  });
}

export function useResource(id: number) {
  return useQuery({
    queryKey: ['resources', id],
    queryFn: ({ signal }) => api<Resource>(`resources/${id}/`, { signal }),
    enabled: Number.isInteger(id) && id > 0,
    refetchInterval: POLL.detail,
  });
}

export const HISTORY_HOURS = 24;

export function useHistory(id: number) {
  return useQuery({
    queryKey: ['resources', id, 'history'],
    queryFn: ({ signal }) => {
      const since = new Date(Date.now() - HISTORY_HOURS * 3600_000).toISOString();
      return api<History>(`resources/${id}/history/`, { query: { since }, signal });
    },
    enabled: serverHas('history'),
    refetchInterval: POLL.history,
  });
}

export function useCollectNow(id: number) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: () => api<unknown>(`resources/${id}/collect/`, { method: 'POST', body: {} }),
    onSettled: () => client.invalidateQueries({ queryKey: ['resources'] }),
  });
}
