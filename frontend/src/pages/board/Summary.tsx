import type { Resource } from '../../api/types';

/** Counts of what is on screen, each with its word (a screen reader reads the same). */
export function Summary({ resources }: { resources: Resource[] }) {
  const count = (predicate: (r: Resource) => boolean) => resources.filter(predicate).length;
  const items: [string, string, number][] = [
    ['red', 'Red', count((r) => r.status.state === 'red')],
    ['yellow', 'Yellow', count((r) => r.status.state === 'yellow')],
    ['green', 'Green', count((r) => r.status.state === 'green')],
    ['lost', 'No visibility', count((r) => r.status.visibility === 'lost')],
    ['away', 'Away from home', count((r) => r.away_from_home === true)],
  ];
  return (
    <ul className="summary" aria-label="Resources by state">
      {items.map(([key, label, n]) => (
        <li key={key} className={`summary-${key}`}>
          {key === 'away' ? <span aria-hidden="true">⇄ </span> : null}
          <span className="summary-count">{n}</span> {label}
        </li>
      ))}
    </ul>
  );
}
