import { useQuery } from '@tanstack/react-query';
import { ApiError, api } from './client';
import type { Me } from './types';

export interface Bootstrap {
  user?: Me;
  login_url?: string;
  logout_url?: string;
  me_url?: string | null;
  /** Which optional endpoints this server has (frontend/views.py OPTIONAL_ENDPOINTS). */
  endpoints?: Record<string, boolean>;
}

/** The page's bootstrap data: frontend/views.py embeds who is logged in, their roles and
 * where to log in and out. */
export function bootstrap(doc: Document = document): Bootstrap {
  const node = doc.getElementById('bc-bootstrap');
  if (!node?.textContent) return {};
  try {
    return JSON.parse(node.textContent) as Bootstrap;
  } catch {
    return {};
  }
}

/** False when the page says the server lacks this endpoint; true when it has it or cannot say. */
export function serverHas(endpoint: string): boolean {
  return bootstrap().endpoints?.[endpoint] ?? true;
}

export function bootstrapUser(doc: Document = document): Me | null {
  return bootstrap(doc).user ?? null;
}

function normalise(raw: unknown): Me | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const record = raw as Record<string, unknown>;
  const username = typeof record.username === 'string' ? record.username : null;
  if (!username) return null;
  const roles = Array.isArray(record.roles) ? record.roles.map(String) : [];
  const display = [record.display_name, record.full_name, record.name].find(
    (value): value is string => typeof value === 'string' && value !== '',
  );
  const mfa = record.approver_mfa as Me['approver_mfa'] | undefined;
  return { username, roles, display_name: display, approver_mfa: mfa ?? undefined };
}

/** GET /api/v1/me/ when the server has it (the page says so); the bootstrap data otherwise. */
export function useMe() {
  return useQuery({
    queryKey: ['me'],
    queryFn: async ({ signal }) => {
      const meUrl = bootstrap().me_url;
      if (meUrl) {
        try {
          const me = normalise(await api<unknown>(meUrl, { signal }));
          if (me) return me;
        } catch (error) {
          // Degraded mode without a copy of /me/: the page's own data still names the user.
          if (!(error instanceof ApiError && (error.notAvailable || error.degraded))) throw error;
        }
      }
      const fallback = bootstrapUser();
      if (!fallback) throw new ApiError(0, null, 'Who is logged in is not known.');
      return fallback;
    },
    staleTime: 5 * 60_000,
  });
}

export function hasRole(me: Me | undefined, ...roles: string[]): boolean {
  return !!me && me.roles.some((role) => roles.includes(role));
}
