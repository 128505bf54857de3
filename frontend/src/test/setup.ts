import '@testing-library/jest-dom/vitest';
import { cleanup } from '@testing-library/react';
import { afterEach } from 'vitest';
import { degraded } from '../api/degraded';

afterEach(() => {
  cleanup();
  document.getElementById('bc-bootstrap')?.remove();
  degraded.reset();
});
