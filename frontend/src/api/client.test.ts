import { afterEach, describe, expect, it } from 'vitest';
import { mockFetch } from '../test/render';
import { ApiError, api, apiUrl, readCookie } from './client';

afterEach(() => {
  document.cookie = 'csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT';
});

describe('api client', () => {
  it('reads cookies by exact name', () => {
    expect(readCookie('csrftoken', 'xcsrftoken=no; csrftoken=abc%3D1; other=2')).toBe('abc=1');
    expect(readCookie('missing', 'a=1')).toBeNull();
  });

  it('builds URLs under /api/v1/ and drops empty query values', () => {
    expect(apiUrl('requests/', { state: '', kind: 'drill', page_size: 10, x: undefined })).toBe(
      '/api/v1/requests/?kind=drill&page_size=10',
    );
  });

  it('sends the CSRF token on unsafe methods only, with the session cookie', async () => {
    document.cookie = 'csrftoken=tok123';
    const { calls } = mockFetch(() => ({ body: { ok: true } }));
    await api('resources/');
    await api('requests/1/approve/', { method: 'POST', body: { comment: 'fine' } });
    const [get, post] = calls;
    expect(new Headers(get?.init.headers).get('X-CSRFToken')).toBeNull();
    expect(get?.init.credentials).toBe('same-origin');
    expect(new Headers(post?.init.headers).get('X-CSRFToken')).toBe('tok123');
    expect(post?.init.credentials).toBe('same-origin');
    expect(post?.init.body).toBe('{"comment":"fine"}');
  });

  it('keeps the reason and field errors of a refusal', async () => {
    mockFetch((url) =>
      url.pathname.endsWith('/start/')
        ? { status: 400, body: { confirm: ["Type the exact name 'orders' to confirm."] } }
        : { status: 409, body: { detail: 'Request is rejected.', state: 'rejected' } },
    );
    const bad = await api('requests/1/start/', { method: 'POST', body: {} }).catch((e) => e);
    expect(bad).toBeInstanceOf(ApiError);
    expect((bad as ApiError).fieldErrors.confirm).toEqual([
      "Type the exact name 'orders' to confirm.",
    ]);
    const conflict = (await api('requests/1/approve/', { method: 'POST' }).catch(
      (e) => e,
    )) as ApiError;
    expect(conflict.status).toBe(409);
    expect(conflict.message).toBe('Request is rejected.');
  });

  it('reports an unreachable server as status 0', async () => {
    mockFetch(() => {
      throw new TypeError('Failed to fetch');
    });
    const error = (await api('resources/').catch((e) => e)) as ApiError;
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/could not be reached/);
  });
});
