import { useId, useState } from 'react';
import { type RequestAction, useRequestAction } from '../../api/requests';
import type { RequestDetail } from '../../api/types';
import { ActionError } from '../../components/ActionError';

/** Approve or deny with a comment; each button is disabled with the API's reason when the
 * user may not act (e.g. their own request). Cancel only appears for those who may cancel. */
export function VotePanel({ request }: { request: RequestDetail }) {
  const [comment, setComment] = useState('');
  const act = useRequestAction(request.id);
  const ids = { comment: useId(), approve: useId(), deny: useId() };
  const pending = request.state === 'pending_approval';
  if (!pending && !request.can_cancel) {
    // The vote that completed (or ended) the approval still gets its confirmation.
    return act.isSuccess ? (
      <p role="status" className="panel">
        Recorded.
      </p>
    ) : null;
  }

  const run = (action: RequestAction) =>
    act.mutate({ action, comment: comment.trim() }, { onSuccess: () => setComment('') });

  return (
    <section aria-labelledby="vote-title" className="panel">
      <h2 id="vote-title">{pending ? 'Your decision' : 'Cancel'}</h2>
      <div className="field">
        <label htmlFor={ids.comment}>Comment</label>
        <textarea
          id={ids.comment}
          rows={3}
          value={comment}
          onChange={(e) => setComment(e.target.value)}
        />
      </div>
      <div className="actions">
        {pending ? (
          <>
            <button
              type="button"
              className="button-approve"
              disabled={!request.can_approve || act.isPending}
              aria-describedby={request.can_approve ? undefined : ids.approve}
              onClick={() => run('approve')}
            >
              Approve
            </button>
            <button
              type="button"
              className="button-deny"
              disabled={!request.can_deny || act.isPending}
              aria-describedby={request.can_deny ? undefined : ids.deny}
              onClick={() => run('deny')}
            >
              Deny
            </button>
          </>
        ) : null}
        {request.can_cancel ? (
          <button
            type="button"
            className="button-secondary"
            disabled={act.isPending}
            onClick={() => run('cancel')}
          >
            Cancel request
          </button>
        ) : null}
      </div>
      {pending && !request.can_approve && request.why_not ? (
        <p id={ids.approve} className="why-not">
          You cannot approve: {request.why_not}
        </p>
      ) : null}
      {pending &&
      !request.can_deny &&
      request.why_not_deny &&
      request.why_not_deny !== request.why_not ? (
        <p id={ids.deny} className="why-not">
          You cannot deny: {request.why_not_deny}
        </p>
      ) : pending && !request.can_deny ? (
        <span id={ids.deny} className="visually-hidden">
          You cannot deny: {request.why_not_deny || request.why_not}
        </span>
      ) : null}
      {act.isError ? <ActionError error={act.error} /> : null}
      {act.isSuccess ? <p role="status">Recorded.</p> : null}
    </section>
  );
}
