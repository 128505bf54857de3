import { ApiError, errorMessage } from '../api/client';

const OUTCOMES = {
  not_applied: 'Not done: nothing was changed.',
  unconfirmed: 'Not confirmed: the change may or may not have been applied.',
} as const;

/** Why an action (approve, start, create…) failed, in the server's words. In degraded mode the
 * server also says whether the action was applied; that comes first, in words. */
export function ActionError({ error, id }: { error: unknown; id?: string }) {
  const outcome = error instanceof ApiError ? error.outcome : null;
  return (
    <p role="alert" id={id} className="error-text action-error">
      {outcome ? (
        <strong className={`outcome outcome-${outcome}`}>{OUTCOMES[outcome]} </strong>
      ) : null}
      {errorMessage(error)}
    </p>
  );
}
