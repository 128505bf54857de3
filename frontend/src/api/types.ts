// Names for the generated OpenAPI types (src/api/schema.d.ts, `npm run gen:types`).
import type { components } from './schema';

type S = components['schemas'];

export type Site = S['Site'];
export type Resource = S['Resource'];
export type ResourceStatus = S['Status'];
export type Reason = S['Reason'];
export type Group = S['Group'];
export type GroupStatus = S['GroupStatus'];
export type GroupMember = S['Member'];
export type History = S['History'];
export type HistoryPoint = S['HistoryPoint'];
export type StatusSummary = S['StatusSummary'];
// Enums by the field that uses them: drf-spectacular's enum names can change between schemas.
export type RequestKind = S['Request']['kind'];
export type RequestState = S['Request']['state'];
export type RequestRow = S['Request'];
export type RequestDetail = S['RequestDetail'];
export type RequestCreate = S['RequestCreateRequest'];
export type ApprovalRow = S['ApprovalRow'];
export type ApprovalsRequired = S['ApprovalsRequired'];
export type PolicySummary = S['PolicySummary'];
export type PolicyPreview = S['PolicyPreview'];
export type Execution = S['Execution'];
export type ExecutionState = NonNullable<S['Execution']['state']>;
export type Step = S['Step'];
export type StepState = NonNullable<S['Step']['state']>;
export type StartBody = S['StartRequest'];
export type Started = S['Started'];

export interface Page<T> {
  count: number;
  next: string | null;
  previous: string | null;
  results: T[];
}

/** What the status board shows for a state: resources use green/yellow/red. */
export type State = 'green' | 'yellow' | 'red';

export const PLATFORMS = ['postgres', 'mongodb', 'mssql', 'snowflake'] as const;
export const ENVIRONMENTS = ['production', 'staging', 'development', 'test'] as const;
export const TIERS = [1, 2, 3] as const;
export const REQUEST_KINDS: RequestKind[] = ['failover', 'switchover', 'failback', 'drill'];
export const REQUEST_STATES: RequestState[] = [
  'pending_approval',
  'approved',
  'rejected',
  'expired',
  'cancelled',
  'running',
  'succeeded',
  'failed',
];

/** One member's readiness as recorded with an approval (approvals/scope.py). */
export interface Readiness {
  resource?: number;
  name?: string;
  state?: string;
  visibility?: string;
  lag_seconds?: number | null;
  lag_bytes?: number | null;
  reasons?: string[];
  observed_at?: string | null;
}

/** The precheck report of POST requests/{id}/prechecks/ (executions/prechecks.py). */
export interface PrecheckResult {
  resource: string;
  name: string;
  description?: string;
  ok: boolean;
  detail: string;
  overridable?: boolean;
  seconds?: number;
}

export interface PrecheckReport {
  supported: boolean;
  ok: boolean;
  reason?: string;
  ran_at?: string;
  results: PrecheckResult[];
}

/** Execution.evidence once finished (executions/runner.py). */
export interface EvidenceSummary {
  total_seconds?: number;
  resources?: Record<
    string,
    { outcome?: string; conclusion?: { code?: string; text?: string }; evidence?: unknown }
  >;
}

/** The current user (GET /api/v1/me/ when it exists, else the page's bootstrap data). */
export interface Me {
  username: string;
  roles: string[];
  display_name?: string;
  /** From /api/v1/me/: approver roles held back because the login lacked the required MFA. */
  approver_mfa?: { required: boolean; ok: boolean; reason: string; withheld_roles: string[] };
}
