import { Outlet } from 'react-router';
import { loginUrl, useSessionExpired } from '../api/session';
import { Banner } from './Banner';
import { Header } from './Header';

export function Layout() {
  const expired = useSessionExpired();
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
        <Outlet />
      </main>
    </>
  );
}
