// A tiny store for "the session has ended" (an API call answered 401), shown as a banner.
import { useSyncExternalStore } from 'react';
import { bootstrap } from './me';

let expired = false;
const listeners = new Set<() => void>();

export const session = {
  expire(): void {
    if (expired) return;
    expired = true;
    listeners.forEach((listener) => listener());
  },
  reset(): void {
    expired = false;
    listeners.forEach((listener) => listener());
  },
  subscribe(listener: () => void): () => void {
    listeners.add(listener);
    return () => listeners.delete(listener);
  },
  get expired(): boolean {
    return expired;
  },
};

export function useSessionExpired(): boolean {
  return useSyncExternalStore(session.subscribe, () => session.expired);
}

export function loginUrl(next: string = window.location.pathname + window.location.search): string {
  const base = bootstrap().login_url ?? '/admin/login/';
  return `${base}${base.includes('?') ? '&' : '?'}next=${encodeURIComponent(next)}`;
}

export function logoutUrl(): string {
  return bootstrap().logout_url ?? '/app/logout/';
}
