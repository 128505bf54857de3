// Lag over time as a small dependency-free SVG: the line, gaps where nothing was seen (shaded,
// labelled "no visibility"), and the yellow and red thresholds drawn across.
import type { HistoryPoint } from '../api/types';
import { formatDuration, niceCeil } from '../lib/format';

const W = 800;
const H = 240;
const PAD = { left: 56, right: 16, top: 12, bottom: 28 };

interface Props {
  points: HistoryPoint[];
  since: number;
  until: number;
  yellow?: number;
  red?: number;
}

function maxOf(values: number[]): number {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  return max;
}

function hhmm(ms: number): string {
  return new Date(ms).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function summarise(points: HistoryPoint[], red?: number): string {
  const lags = points.map((p) => p.lag_seconds).filter((v): v is number => v !== null);
  if (!lags.length) return 'No lag was measured in this period.';
  const max = maxOf(lags);
  const last = lags[lags.length - 1] ?? 0;
  const lost = points.filter((p) => !p.visible).length;
  const overRed = red !== undefined ? lags.filter((v) => v > red).length : 0;
  return [
    `Latest lag ${formatDuration(last)}, highest ${formatDuration(max)}.`,
    red !== undefined ? `${overRed} of ${lags.length} samples above the red threshold.` : '',
    lost ? `${lost} sample${lost === 1 ? '' : 's'} without visibility.` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

export function LagChart({ points, since, until, yellow, red }: Props) {
  const lags = points.map((p) => p.lag_seconds ?? 0);
  const top = niceCeil(Math.max(1, maxOf(lags), (red ?? 0) * 1.1, (yellow ?? 0) * 1.1));
  const span = Math.max(1, until - since);
  const x = (ms: number) => PAD.left + ((ms - since) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const times = points.map((p) => new Date(p.at).getTime());

  // Line segments broken wherever a point was not visible or has no lag.
  const segments: string[] = [];
  let current: string[] = [];
  const gaps: [number, number][] = [];
  points.forEach((p, i) => {
    const t = times[i] ?? since;
    if (!p.visible || p.lag_seconds === null) {
      if (current.length) segments.push(current.join(' '));
      current = [];
      if (!p.visible) gaps.push([t, times[i + 1] ?? until]);
      return;
    }
    current.push(`${x(t).toFixed(1)},${y(p.lag_seconds).toFixed(1)}`);
  });
  if (current.length) segments.push(current.join(' '));

  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => since + f * span);
  const yTicks = [0, top / 4, top / 2, (3 * top) / 4, top];

  return (
    <figure className="chart">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Lag over time. ${summarise(points, red)}`}
      >
        <rect
          x={PAD.left}
          y={PAD.top}
          width={W - PAD.left - PAD.right}
          height={H - PAD.top - PAD.bottom}
          className="chart-bg"
        />
        {gaps.map(([a, b], i) => (
          <rect
            key={i}
            x={x(a)}
            y={PAD.top}
            width={Math.max(2, x(b) - x(a))}
            height={H - PAD.top - PAD.bottom}
            className="chart-gap"
          >
            <title>No visibility</title>
          </rect>
        ))}
        {yTicks.map((v) => (
          <g key={v}>
            <line x1={PAD.left} x2={W - PAD.right} y1={y(v)} y2={y(v)} className="chart-grid" />
            <text x={PAD.left - 6} y={y(v) + 4} textAnchor="end" className="chart-label">
              {formatDuration(v)}
            </text>
          </g>
        ))}
        {ticks.map((t) => (
          <text key={t} x={x(t)} y={H - 8} textAnchor="middle" className="chart-label">
            {hhmm(t)}
          </text>
        ))}
        {yellow !== undefined ? (
          <g className="threshold threshold-yellow">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(yellow)} y2={y(yellow)} />
            <text x={W - PAD.right - 4} y={y(yellow) - 4} textAnchor="end">
              Yellow {formatDuration(yellow)}
            </text>
          </g>
        ) : null}
        {red !== undefined ? (
          <g className="threshold threshold-red">
            <line x1={PAD.left} x2={W - PAD.right} y1={y(red)} y2={y(red)} />
            <text x={W - PAD.right - 4} y={y(red) - 4} textAnchor="end">
              Red {formatDuration(red)}
            </text>
          </g>
        ) : null}
        {segments.map((s, i) =>
          s.includes(' ') ? (
            <polyline key={i} points={s} className="chart-line" />
          ) : (
            <circle
              key={i}
              cx={s.split(',')[0]}
              cy={s.split(',')[1]}
              r={2.5}
              className="chart-dot"
            />
          ),
        )}
      </svg>
      <figcaption>
        {summarise(points, red)} Shaded: no visibility. Dashed lines: yellow and red lag thresholds.
      </figcaption>
    </figure>
  );
}
