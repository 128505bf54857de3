// The one way the app talks to Django: same-origin fetch with the session cookie, the CSRF
// token on unsafe methods, JSON in and out, and errors that keep the API's reason.

import { degraded, degradedOf, isDegradedBody, markerFromHeaders, type Outcome } from './degraded';

export const API_ROOT = '/api/v1/';

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, body: unknown, message: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }

  /** The endpoint does not exist on this server (yet). */
  get notAvailable(): boolean {
    return this.status === 404 || this.status === 405 || this.status === 501;
  }

  /** Refused because the service cannot reach its own database (bcservice/degraded.py). */
  get degraded(): boolean {
    return this.status === 503 && isDegradedBody(this.body);
  }

  /** For a refused action in degraded mode: was it carried out? */
  get outcome(): Outcome | null {
    return this.status === 503 && isDegradedBody(this.body) ? this.body.outcome : null;
  }

  /** Field errors of a 400 answer, keyed by field ("non_field_errors" for the rest). */
  get fieldErrors(): Record<string, string[]> {
    if (this.status !== 400 || !isRecord(this.body)) return {};
    const out: Record<string, string[]> = {};
    for (const [key, value] of Object.entries(this.body)) {
      out[key] = flattenMessages(value);
    }
    return out;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function flattenMessages(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(flattenMessages);
  if (isRecord(value)) {
    return Object.entries(value).flatMap(([k, v]) => flattenMessages(v).map((m) => `${k}: ${m}`));
  }
  return [];
}

export function readCookie(name: string, cookies: string = document.cookie): string | null {
  for (const part of cookies.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

function describe(status: number, body: unknown, statusText: string): string {
  if (isRecord(body) && typeof body.detail === 'string') return body.detail;
  if (status === 401 || status === 403) return 'You are not allowed to do this.';
  if (status === 404) return 'Not found.';
  if (status === 400) return 'Some fields need attention.';
  return `The server answered ${status}${statusText ? ` ${statusText}` : ''}.`;
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export type Query = Record<string, string | number | boolean | null | undefined>;

export function apiUrl(path: string, query?: Query): string {
  const url = path.startsWith('/') ? path : API_ROOT + path;
  if (!query) return url;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${url}?${text}` : url;
}

export async function api<T>(
  path: string,
  options: { method?: string; query?: Query; body?: unknown; signal?: AbortSignal } = {},
): Promise<T> {
  const method = (options.method ?? 'GET').toUpperCase();
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (!SAFE.has(method)) {
    const token = readCookie('csrftoken');
    if (token) headers['X-CSRFToken'] = token;
  }
  let response: Response;
  try {
    response = await fetch(apiUrl(path, options.query), {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, null, 'The server could not be reached.');
  }
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!response.ok) {
    if (response.status === 503 && isDegradedBody(body)) degraded.report();
    throw new ApiError(response.status, body, describe(response.status, body, response.statusText));
  }
  return noteDegraded(response, body) as T;
}

/** A last-known copy is reported (and marked in the body, as the server does for objects
 * without the member); a live answer ends degraded mode. */
function noteDegraded(response: Response, body: unknown): unknown {
  const marker = degradedOf(body) ?? markerFromHeaders(response.headers);
  if (!marker) {
    degraded.live();
    return body;
  }
  degraded.report(marker.snapshot_at || null);
  if (isRecord(body) && !('degraded' in body)) return { ...body, degraded: marker };
  return body;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return typeof error === 'string' ? error : 'The request failed without a reason from the server.';
}
