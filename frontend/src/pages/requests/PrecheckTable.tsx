import type { PrecheckReport } from '../../api/types';
import { formatDuration, formatTime } from '../../lib/format';

interface Props {
  report: PrecheckReport;
  overrides: string[];
  onToggleOverride: (name: string) => void;
}

export function PrecheckTable({ report, overrides, onToggleOverride }: Props) {
  if (!report.supported) {
    return (
      <p role="alert" className="error-text">
        This request cannot run here: {report.reason ?? 'not supported'}.
      </p>
    );
  }
  return (
    <>
      <p className={report.ok ? 'ok-text' : 'warn-text'} role="status">
        <strong>{report.ok ? '✓ Every precheck passed' : '✕ Some prechecks failed'}</strong>
        {report.ran_at ? ` (run ${formatTime(report.ran_at)})` : ''}
      </p>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Precheck results</caption>
          <thead>
            <tr>
              <th scope="col">Resource</th>
              <th scope="col">Check</th>
              <th scope="col">Result</th>
              <th scope="col">Detail</th>
              <th scope="col">Override</th>
            </tr>
          </thead>
          <tbody>
            {report.results.map((r) => (
              <tr key={`${r.resource}-${r.name}`}>
                <td>{r.resource}</td>
                <th scope="row">
                  {r.description || r.name}
                  {r.description ? (
                    <div className="sub">
                      <code>{r.name}</code>
                    </div>
                  ) : null}
                </th>
                <td>
                  <span className={`badge tone-${r.ok ? 'green' : 'red'}`}>
                    <span aria-hidden="true">{r.ok ? '✓' : '✕'}</span> {r.ok ? 'Passed' : 'Failed'}
                  </span>
                  {r.seconds !== undefined ? (
                    <div className="sub">{formatDuration(r.seconds)}</div>
                  ) : null}
                </td>
                <td>{r.detail}</td>
                <td>
                  {!r.ok && r.overridable ? (
                    <label className="radio">
                      <input
                        type="checkbox"
                        checked={overrides.includes(r.name)}
                        onChange={() => onToggleOverride(r.name)}
                      />{' '}
                      Proceed anyway
                    </label>
                  ) : (
                    <span className="muted">{r.ok ? '—' : 'Not overridable'}</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}
