import { formatDuration } from '../lib/format';

/** Visibility: "Visible", or loss of visibility marked distinctly with the age of what is shown. */
export function Visibility({
  visibility,
  ageSeconds,
}: {
  visibility: string;
  ageSeconds: number | null;
}) {
  if (visibility !== 'lost') {
    return <span className="visible">Visible</span>;
  }
  return (
    <span className="lost" role="note">
      <strong>
        <span aria-hidden="true">⊘ </span>No visibility
      </strong>
      {' — '}
      {ageSeconds === null
        ? 'no values ever observed'
        : `last known values ${formatDuration(ageSeconds)} old`}
    </span>
  );
}
