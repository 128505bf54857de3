// A state is always shown as a symbol and a word, never by colour alone.

const STATES: Record<string, { symbol: string; label: string }> = {
  green: { symbol: '✓', label: 'Green' },
  yellow: { symbol: '▲', label: 'Yellow' },
  red: { symbol: '✕', label: 'Red' },
};

export function stateLabel(state: string): string {
  return STATES[state]?.label ?? state;
}

/** `lost`: no visibility (dashed, "(last known)" for screen readers); `lastKnown`: a copy the
 * server kept while it cannot reach its own database ("(last known)" written out). */
export function StateBadge({
  state,
  lost = false,
  lastKnown = false,
}: {
  state: string;
  lost?: boolean;
  lastKnown?: boolean;
}) {
  const known = STATES[state];
  const label = known?.label ?? (state || 'Unknown');
  const stale = lost || lastKnown;
  return (
    <>
      <span className={`badge state-${known ? state : 'unknown'}${stale ? ' badge-stale' : ''}`}>
        <span aria-hidden="true">{known?.symbol ?? '?'}</span> {label}
        {lost && !lastKnown ? <span className="visually-hidden"> (last known)</span> : null}
      </span>
      {lastKnown ? <span className="last-known"> (last known)</span> : null}
    </>
  );
}

const TONES: Record<string, string> = {
  pending_approval: 'yellow',
  approved: 'blue',
  running: 'blue',
  queued: 'blue',
  paused: 'yellow',
  succeeded: 'green',
  rejected: 'red',
  failed: 'red',
  expired: 'grey',
  cancelled: 'grey',
  skipped: 'grey',
  pending: 'grey',
  overridden: 'yellow',
  approve: 'green',
  deny: 'red',
};

const WORDS: Record<string, string> = {
  pending_approval: 'Pending approval',
  overridden: 'Failed, overridden',
  skipped: 'Not run',
  approve: 'Approved',
  deny: 'Denied',
};

/** Request, execution and step states: a word on a tinted background. */
export function PhaseBadge({ state }: { state: string }) {
  const word = WORDS[state] ?? state.charAt(0).toUpperCase() + state.slice(1).replace(/_/g, ' ');
  return <span className={`badge tone-${TONES[state] ?? 'grey'}`}>{word}</span>;
}
