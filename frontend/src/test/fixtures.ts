// Test data shaped exactly like the API's (the generated types check it).
import type { Group, Page, Resource, ResourceStatus } from '../api/types';

export function status(overrides: Partial<ResourceStatus> = {}): ResourceStatus {
  return {
    state: 'green',
    visibility: 'ok',
    reasons: [],
    observed_at: '2026-11-20T10:00:00Z',
    age_seconds: 4,
    evaluated_at: '2026-11-20T10:00:00Z',
    lag_seconds: 1.5,
    lag_bytes: 2048,
    primary_marker: '0/3000060',
    dr_marker: '0/3000060',
    heartbeat_at: '2026-11-20T09:59:58Z',
    replication: 'streaming',
    primary_role: 'primary',
    dr_role: 'standby',
    last_attempt_at: '2026-11-20T10:00:00Z',
    ...overrides,
  };
}

let nextId = 1;

export function resource(
  overrides: Partial<Omit<Resource, 'status'>> & { status?: Partial<ResourceStatus> } = {},
): Resource {
  const { status: statusOverrides, ...rest } = overrides;
  const id = rest.id ?? nextId++;
  return {
    id,
    name: `db-${id}`,
    platform: 'postgres',
    tier: 1,
    environment: 'production',
    owner: 'payments',
    primary_site: 'london',
    dr_site: 'dublin',
    rpo_target_seconds: 60,
    yellow_lag_seconds: 30,
    red_lag_seconds: 120,
    freshness_seconds: 60,
    enabled: true,
    created_at: '2026-11-01T00:00:00Z',
    updated_at: '2026-11-01T00:00:00Z',
    ...rest,
    status: status(statusOverrides),
  };
}

export function group(overrides: Partial<Group> = {}): Group {
  return {
    id: nextId++,
    name: 'payments-stack',
    tier: 1,
    description: '',
    members: [],
    status: { state: 'green', visibility: 'ok', reasons: [] },
    ...overrides,
  };
}

export function page<T>(results: T[]): Page<T> {
  return { count: results.length, next: null, previous: null, results };
}
