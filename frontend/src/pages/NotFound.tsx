import { Link } from 'react-router';
import { usePageTitle } from '../lib/usePageTitle';

export function NotFound() {
  usePageTitle('Page not found');
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        This page does not exist. Go to the <Link to="/">status board</Link>.
      </p>
    </section>
  );
}
