// Test data shaped exactly like the API's (the generated types check it).
import type { Group, Page, RequestDetail, Resource, ResourceStatus } from '../api/types';

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
    current_site: rest.primary_site ?? 'london',
    away_from_home: false,
    current_site_changed_at: null,
    last_passed_drill_at: null,
    drill_cadence_days: 90,
    drill_due_at: null,
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

export function requestDetail(overrides: Partial<RequestDetail> = {}): RequestDetail {
  return {
    id: 7,
    kind: 'switchover',
    resource: 1,
    resource_name: 'orders-pg',
    group: null,
    group_name: '',
    target_site: 'dublin',
    target_site_id: 2,
    reason: 'Quarterly test',
    change_ticket: 'CHG0012345',
    requested_by: 'olive',
    requested_by_id: 1,
    state: 'pending_approval',
    state_reason: '',
    state_changed_at: null,
    created_at: '2026-11-20T10:00:00Z',
    expires_at: '2026-11-20T14:00:00Z',
    approved_at: null,
    started_at: null,
    finished_at: null,
    breakglass_grant: null,
    policy: {
      id: 1,
      name: 'Tier 1 (default)',
      tier: 1,
      kind: null,
      environment: null,
      min_approvers: 2,
      required_roles: ['approver_it', 'approver_business'],
      require_change_ticket: true,
      change_ticket_pattern: '^CHG\\d+$',
      approval_validity_seconds: 14400,
      flap_window_seconds: 0,
    },
    policy_fingerprint: 'abc',
    approvals_required: {
      count: 2,
      roles: ['approver_it', 'approver_business'],
      received: 1,
      covered: { approver_it: 'ivan' },
      missing_roles: ['approver_business'],
      still_needed: 1,
      satisfied: false,
    },
    approvals: [
      {
        id: 1,
        approver: 'ivan',
        approver_id: 3,
        decision: 'approve',
        roles: ['approver_it'],
        role_counted: 'approver_it',
        comment: 'ok',
        at: '2026-11-20T10:05:00Z',
        readiness: [
          { resource: 1, name: 'orders-pg', state: 'green', visibility: 'ok', lag_seconds: 1 },
        ],
        policy_fingerprint: 'abc',
        valid: true,
        voided_at: null,
        void_reason: '',
      },
    ],
    flapping: {
      window_seconds: 0,
      last_move_at: null,
      window_ends_at: null,
      acknowledged: false,
      blocked: false,
    },
    flap_acknowledged_by: '',
    flap_acknowledged_at: null,
    flap_acknowledgement: '',
    can_approve: true,
    why_not: '',
    can_deny: true,
    why_not_deny: '',
    can_cancel: false,
    can_start: false,
    why_not_start: 'The request is not approved.',
    start_blocker: 'not_approved',
    ...overrides,
  };
}
