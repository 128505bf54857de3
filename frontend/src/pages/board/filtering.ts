// Pure filtering and ordering for the status board (tested in StatusBoard.test.tsx).
import type { Group, Resource } from '../../api/types';

export interface BoardFilters {
  platform: string;
  tier: string;
  environment: string;
  site: string;
  state: string; // green | yellow | red | lost (no visibility) | ''
  away: string; // '1' away from home (a move left in place) | '0' at home | ''
  q: string;
}

export const FILTER_KEYS = [
  'platform',
  'tier',
  'environment',
  'site',
  'state',
  'away',
  'q',
] as const;

export const EMPTY_FILTERS: BoardFilters = {
  platform: '',
  tier: '',
  environment: '',
  site: '',
  state: '',
  away: '',
  q: '',
};

export function filtersFrom(params: URLSearchParams): BoardFilters {
  const out = { ...EMPTY_FILTERS };
  for (const key of FILTER_KEYS) out[key] = params.get(key) ?? '';
  return out;
}

export function isFiltered(filters: BoardFilters): boolean {
  return FILTER_KEYS.some((key) => filters[key] !== '');
}

function matchesState(state: string, visibility: string, wanted: string): boolean {
  if (!wanted) return true;
  if (wanted === 'lost') return visibility === 'lost';
  return state === wanted;
}

function includesText(haystack: (string | null | undefined)[], q: string): boolean {
  const needle = q.trim().toLowerCase();
  if (!needle) return true;
  return haystack.some((value) => (value ?? '').toLowerCase().includes(needle));
}

/** Filters that describe the resource itself (no state, no search). */
function matchesAttributes(resource: Resource, f: BoardFilters): boolean {
  return (
    (!f.platform || resource.platform === f.platform) &&
    (!f.tier || String(resource.tier) === f.tier) &&
    (!f.environment || resource.environment === f.environment) &&
    (!f.site || resource.primary_site === f.site || resource.dr_site === f.site) &&
    (!f.away || (resource.away_from_home === true) === (f.away === '1'))
  );
}

export function filterResources(resources: Resource[], f: BoardFilters): Resource[] {
  return resources.filter(
    (r) =>
      matchesAttributes(r, f) &&
      matchesState(r.status.state, r.status.visibility, f.state) &&
      includesText([r.name, r.owner, r.primary_site, r.dr_site, r.platform], f.q),
  );
}

/** A group passes platform/environment/site when one of its members does. */
export function filterGroups(groups: Group[], resources: Resource[], f: BoardFilters): Group[] {
  const byId = new Map(resources.map((r) => [r.id, r]));
  const memberFilter = f.platform || f.environment || f.site || f.away;
  return groups.filter((g) => {
    if (f.tier && String(g.tier) !== f.tier) return false;
    if (!matchesState(g.status.state, g.status.visibility, f.state)) return false;
    if (!includesText([g.name, g.description, ...g.members.map((m) => m.name)], f.q)) return false;
    if (!memberFilter) return true;
    return g.members.some((m) => {
      const r = byId.get(m.id);
      return r !== undefined && matchesAttributes(r, { ...f, tier: '' });
    });
  });
}

const SEVERITY: Record<string, number> = { red: 0, yellow: 1, green: 2 };

function severity(state: string, visibility: string): number {
  return visibility === 'lost' ? -1 : (SEVERITY[state] ?? -1);
}

/** Worst first: no visibility, red, yellow, green; then tier, then name. */
export function sortResources(resources: Resource[]): Resource[] {
  return [...resources].sort(
    (a, b) =>
      severity(a.status.state, a.status.visibility) -
        severity(b.status.state, b.status.visibility) ||
      a.tier - b.tier ||
      a.name.localeCompare(b.name),
  );
}

export function sortGroups(groups: Group[]): Group[] {
  return [...groups].sort(
    (a, b) =>
      severity(a.status.state, a.status.visibility) -
        severity(b.status.state, b.status.visibility) ||
      a.tier - b.tier ||
      a.name.localeCompare(b.name),
  );
}

export function siteNames(resources: Resource[]): string[] {
  const names = new Set<string>();
  for (const r of resources) {
    if (r.primary_site) names.add(r.primary_site);
    if (r.dr_site) names.add(r.dr_site);
  }
  return [...names].sort((a, b) => a.localeCompare(b));
}
