// A real OpenID provider (panva/oidc-provider) on 127.0.0.1 for bcservice's identity tests.
//
// Usage: node provider.mjs STATE_DIR
//   STATE_DIR/users.json    {"alice": {"password": "...", "name": "...", "email": "...",
//                                      "groups": ["bc-ops"], "otp": "123456"}, ...}
//   STATE_DIR/clients.json  [{"client_id": "...", "client_secret": "...", "redirect_uris": [...]}]
// Both files are read again on every lookup, so a test changes a user's groups (or adds the live
// server's redirect URI) by rewriting the file; no restart, no control API to secure.
//
// Listens on a free port and prints one JSON line {"event": "ready", "issuer": "..."} on stdout.
// The login page checks the password; entering the user's one-time code as well makes the login
// multi-factor: acr "urn:bc:mfa" and amr ["pwd", "otp"] instead of "urn:bc:pwd" and ["pwd"].

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

import Provider from 'oidc-provider';

const stateDir = process.argv[2];
if (!stateDir) {
  console.error('usage: node provider.mjs STATE_DIR');
  process.exit(2);
}

const readJson = (name) => JSON.parse(readFileSync(join(stateDir, name), 'utf8'));
const users = () => readJson('users.json');
const clients = () => readJson('clients.json');

const ACR_PASSWORD = 'urn:bc:pwd';
const ACR_MFA = 'urn:bc:mfa';

// In-memory storage for the provider's models; clients come from clients.json instead.
const stores = new Map();
class Adapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.items = stores.get(name);
  }

  async upsert(id, payload, expiresIn) {
    this.items.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
  }

  async find(id) {
    if (this.name === 'Client') {
      return clients().find((client) => client.client_id === id);
    }
    const item = this.items.get(id);
    if (!item || (item.expiresAt && item.expiresAt < Date.now())) return undefined;
    return item.payload;
  }

  async findByUid(uid) {
    for (const [id, item] of this.items) if (item.payload.uid === uid) return this.find(id);
    return undefined;
  }

  async findByUserCode(userCode) {
    for (const [id, item] of this.items) if (item.payload.userCode === userCode) return this.find(id);
    return undefined;
  }

  async consume(id) {
    const item = this.items.get(id);
    if (item) item.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.items.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const [id, item] of this.items) if (item.payload.grantId === grantId) this.items.delete(id);
  }
}

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, clientId, error) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body><h1>Test IdP sign-in</h1><p>for ${escapeHtml(clientId)}</p>
${error ? `<p id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Username <input name="username" id="username"></label>
<label>Password <input name="password" id="password" type="password"></label>
<label>One-time code (optional) <input name="otp" id="otp"></label>
<button type="submit" id="sign-in">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function start(port, server) {
  const issuer = `http://127.0.0.1:${port}`;
  const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
    format: 'jwk',
  });
  const provider = new Provider(issuer, {
    adapter: Adapter,
    jwks: { keys: [{ ...signingKey, kid: 'test-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    acrValues: [ACR_PASSWORD, ACR_MFA],
    scopes: ['openid', 'profile', 'email', 'groups'],
    // Like the IdPs people run (Keycloak, Entra ID, Okta), put acr/amr in every ID token, not
    // only when the client asks with acr_values.
    claims: {
      acr: null,
      amr: null,
      sid: null,
      auth_time: null,
      iss: null,
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: false } },
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // First-party client: grant the requested scopes without a consent screen.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid profile email groups');
      await grant.save();
      return grant;
    },
    async findAccount(ctx, sub) {
      const user = users()[sub];
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            preferred_username: user.preferred_username ?? sub,
            name: user.name ?? sub,
            email: user.email ?? `${sub}@example.test`,
            groups: user.groups ?? [],
          };
        },
      };
    },
    interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: { Session: 3600, Interaction: 600, AccessToken: 600, AuthorizationCode: 60, Grant: 3600 },
  });
  provider.on('server_error', (ctx, error) => console.error('server_error', error));

  provider.use(async (ctx, next) => {
    const match = ctx.path.match(/^\/interaction\/([\w-]+)(\/login)?$/);
    if (!match) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (ctx.method === 'GET' && !match[2]) {
      ctx.type = 'html';
      ctx.body = loginPage(details.uid, details.params.client_id);
      return undefined;
    }
    if (ctx.method !== 'POST' || !match[2]) {
      ctx.status = 405;
      return undefined;
    }
    const form = await readForm(ctx.req);
    const username = form.get('username') ?? '';
    const user = users()[username];
    if (!user || user.password !== form.get('password')) {
      ctx.type = 'html';
      ctx.body = loginPage(details.uid, details.params.client_id, 'Wrong username or password.');
      return undefined;
    }
    const otp = form.get('otp') ?? '';
    const mfa = otp !== '' && otp === user.otp;
    const result = {
      login: {
        accountId: username,
        acr: mfa ? ACR_MFA : ACR_PASSWORD,
        amr: mfa ? ['pwd', 'otp'] : ['pwd'],
        remember: false,
      },
    };
    ctx.redirect(
      await provider.interactionResult(ctx.req, ctx.res, result, {
        mergeWithLastSubmission: false,
      }),
    );
    return undefined;
  });

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ event: 'ready', issuer })}\n`);
}

const server = createServer();
server.listen(0, '127.0.0.1', () => start(server.address().port, server));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
