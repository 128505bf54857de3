import { NavLink } from 'react-router';
import { readCookie } from '../api/client';
import { serverHas, useMe } from '../api/me';
import { loginUrl, logoutUrl } from '../api/session';
import { roleName } from '../lib/format';

function Who() {
  const me = useMe();
  if (me.isPending) return <span className="who muted">Checking who you are…</span>;
  if (me.isError) {
    return (
      <span className="who">
        Not signed in? <a href={loginUrl()}>Log in</a>
      </span>
    );
  }
  const roles = me.data.roles.length ? me.data.roles.map(roleName).join(', ') : 'no role';
  return (
    <span className="who">
      <span className="visually-hidden">Signed in as </span>
      <strong>{me.data.display_name ?? me.data.username}</strong>{' '}
      <span className="roles" aria-label={`Roles: ${roles}`}>
        ({roles})
      </span>
      <form method="post" action={logoutUrl()} className="logout">
        <input type="hidden" name="csrfmiddlewaretoken" value={readCookie('csrftoken') ?? ''} />
        <input type="hidden" name="next" value="/app/" />
        <button type="submit" className="link-button">
          Log out
        </button>
      </form>
    </span>
  );
}

/** Every role may read the readiness report (scoped to what it may see); a user without a role
 * may read nothing, so the entry is not offered. */
function ReportsEntry() {
  const me = useMe();
  if (!serverHas('reports') || !me.data?.roles.length) return null;
  return (
    <li>
      <NavLink to="/reports">Reports</NavLink>
    </li>
  );
}

export function Header() {
  return (
    <header className="app-header">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <span className="brand">bcservice</span>
      <nav aria-label="Main">
        <ul>
          <li>
            <NavLink to="/" end>
              Status board
            </NavLink>
          </li>
          <li>
            <NavLink to="/requests" end>
              Requests
            </NavLink>
          </li>
          <li>
            <NavLink to="/requests/waiting">Waiting for me</NavLink>
          </li>
          <li>
            <NavLink to="/requests/new">New request</NavLink>
          </li>
          <ReportsEntry />
        </ul>
      </nav>
      <Who />
    </header>
  );
}
