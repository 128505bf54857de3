/// <reference types="vitest/config" />
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Django serves the build: assets under /static/ (frontend/dist is in STATICFILES_DIRS) and the
// page itself at /app/ (frontend/views.py reads dist/index.html). The dev server proxies the API.
const django = process.env.BC_DJANGO_URL ?? 'http://127.0.0.1:8000';

export default defineConfig(({ command }) => ({
  base: command === 'build' ? '/static/' : '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    manifest: true,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': django,
      '/admin': django,
      '/static/admin': django,
    },
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/test/setup.ts'],
    css: false,
    restoreMocks: true,
    unstubGlobals: true,
    // Generous: CI machines run the Python suite alongside (user-event typing is slow there).
    testTimeout: 30_000,
  },
}));
