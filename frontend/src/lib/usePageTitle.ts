import { useEffect } from 'react';

/** The browser tab says which screen this is (and what a screen reader announces first). */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} — bcservice` : 'bcservice';
  }, [title]);
}
