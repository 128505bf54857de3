import { useEffect, useRef } from 'react';
import { Outlet, useLocation } from 'react-router';
import { useMe } from '../api/me';
import { loginUrl, useSessionExpired } from '../api/session';
import { roleName } from '../lib/format';
import { Banner } from './Banner';
import { DegradedBanner } from './DegradedBanner';
import { Header } from './Header';

/** Approver roles withheld for want of a multi-factor login (the server decides; we say so). */
function MfaNotice() {
  const me = useMe();
  const mfa = me.data?.approver_mfa;
  if (!mfa || !mfa.required || mfa.ok) return null;
  const withheld = mfa.withheld_roles.map(roleName).join(', ');
  return (
    <Banner tone="warning">
      {withheld
        ? `Your ${withheld} role is not active in this session`
        : 'Approving is not possible in this session'}
      {mfa.reason ? `: ${mfa.reason}` : '.'} <a href={loginUrl()}>Log in again</a> with multi-factor
      authentication to approve.
    </Banner>
  );
}

/** After a navigation inside the app, keyboard and screen-reader users start at the content. */
function useFocusOnNavigate() {
  const { pathname } = useLocation();
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById('main')?.focus();
  }, [pathname]);
}

export function Layout() {
  const expired = useSessionExpired();
  useFocusOnNavigate();
  return (
    <>
      <Header />
      <main id="main" tabIndex={-1}>
        {expired ? (
          <Banner tone="error">
            Your session has ended. <a href={loginUrl()}>Log in again</a> to keep working; what is
            on screen may be out of date.
          </Banner>
        ) : null}
        <DegradedBanner />
        <MfaNotice />
        <Outlet />
      </main>
    </>
  );
}
