import type { ReactNode } from 'react';
import { errorMessage } from '../api/client';
import { formatClock } from '../lib/format';

/** A non-blocking notice: the screen underneath keeps working. */
export function Banner({
  tone = 'warning',
  children,
}: {
  tone?: 'warning' | 'error' | 'info';
  children: ReactNode;
}) {
  return (
    <div className={`banner banner-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}

/** Shown when a poll failed but earlier data is still on screen. */
export function StaleDataBanner({
  what,
  error,
  updatedAt,
}: {
  what: string;
  error: unknown;
  updatedAt: number;
}) {
  return (
    <Banner tone="warning">
      <strong>Live updates of {what} failed:</strong> {errorMessage(error)} Showing data from{' '}
      {updatedAt ? formatClock(updatedAt) : 'earlier'}; retrying automatically.
    </Banner>
  );
}

export function NotAvailable({ what }: { what: string }) {
  return (
    <p className="not-available" role="note">
      {what} is not available on this server yet.
    </p>
  );
}

export function ErrorMessage({ error }: { error: unknown }) {
  return <Banner tone="error">{errorMessage(error)}</Banner>;
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" aria-live="polite">
      Loading {what}…
    </p>
  );
}
