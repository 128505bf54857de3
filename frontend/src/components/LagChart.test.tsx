import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { HistoryPoint } from '../api/types';
import { LagChart, summarise } from './LagChart';

const t0 = Date.parse('2026-11-20T00:00:00Z');
const point = (minutes: number, lag: number | null, visible = true): HistoryPoint => ({
  at: new Date(t0 + minutes * 60_000).toISOString(),
  lag_seconds: lag,
  lag_bytes: null,
  state: 'green',
  visible,
  resolution_seconds: 0,
  samples: 1,
});

describe('LagChart', () => {
  const points = [
    point(0, 5),
    point(60, 40),
    point(120, null, false),
    point(180, 200),
    point(240, 10),
  ];

  it('draws the yellow and red thresholds with their values', () => {
    const { container } = render(
      <LagChart points={points} since={t0} until={t0 + 24 * 3600_000} yellow={30} red={120} />,
    );
    expect(container.querySelector('.threshold-yellow line')).not.toBeNull();
    expect(container.querySelector('.threshold-red line')).not.toBeNull();
    expect(screen.getByText('Yellow 30 s')).toBeInTheDocument();
    expect(screen.getByText('Red 2 min')).toBeInTheDocument();
  });

  it('breaks the line and shades the time without visibility', () => {
    const { container } = render(<LagChart points={points} since={t0} until={t0 + 5 * 3600_000} />);
    expect(container.querySelectorAll('.chart-line')).toHaveLength(2);
    expect(container.querySelectorAll('.chart-gap')).toHaveLength(1);
    expect(screen.getByRole('img')).toHaveAccessibleName(
      /Lag over time\. Latest lag 10 s, highest 3 min 20 s/,
    );
  });

  it('summarises in words', () => {
    expect(summarise(points, 120)).toBe(
      'Latest lag 10 s, highest 3 min 20 s. 1 of 4 samples above the red threshold. 1 sample without visibility.',
    );
    expect(summarise([])).toBe('No lag was measured in this period.');
  });
});
