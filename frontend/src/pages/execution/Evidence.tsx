import type { EvidenceSummary, Execution } from '../../api/types';
import { EvidenceLink } from '../../components/EvidenceLink';
import { formatDuration, humanise } from '../../lib/format';

function asEvidence(value: unknown): EvidenceSummary | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  return value as EvidenceSummary;
}

export function Evidence({ execution }: { execution: Execution }) {
  const finished = execution.state === 'succeeded' || execution.state === 'failed';
  if (!finished) return null;
  const evidence = asEvidence(execution.evidence);
  const resources = Object.entries(evidence?.resources ?? {});
  return (
    <section aria-labelledby="evidence-title" className="panel panel-wide">
      <h2 id="evidence-title">Data-loss conclusion</h2>
      {resources.length ? (
        <ul className="conclusions">
          {resources.map(([name, item]) => (
            <li key={name}>
              <strong>{name}</strong>
              {item.outcome ? ` (${item.outcome})` : ''}:{' '}
              {item.conclusion?.text ?? 'No conclusion recorded.'}
              {item.conclusion?.code ? (
                <code className="muted"> {item.conclusion.code}</code>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="muted">No evidence was recorded.</p>
      )}
      {evidence?.total_seconds !== undefined ? (
        <p>Total time: {formatDuration(evidence.total_seconds)}</p>
      ) : null}
      <p>
        <EvidenceLink requestId={execution.request} />
      </p>
      {execution.state_reason ? <p className="meta">{humanise(execution.state_reason)}</p> : null}
    </section>
  );
}
