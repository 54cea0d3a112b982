// A real oidc-provider (https://github.com/panva/node-oidc-provider) on loopback for
// credwarden's OAuth tests. Started by tests/peers/oidc.py; nothing here imitates credwarden.
//
//   node oidc_server.mjs CONFIG.json
//
// CONFIG: {port (0 = any free), host, issuer_path ("" or "/TENANT/v2.0"), clients: [...],
//          ttl: {AccessToken, ClientCredentials, RefreshToken, DeviceCode, ...} (seconds),
//          rotate_refresh_token, pkce_required, scopes, device_flow, tls: {cert, key} | null,
//          token_delay_ms, fail_next_token}
//
// stdout: one JSON object per line. The first is {"event":"ready","port":N,"issuer":"..."};
// then {"event":"token",...} per /token request and grant.success / grant.error /
// grant.revoked events. oidc-provider's own warnings go to stderr.
//
// Control (loopback callers only, outside the issuer path):
//   GET  /__control -> {token_requests_by_grant, token_requests_total, fail_next_token, ...}
//   POST /__control {"fail_next_token": N, "token_delay_ms": N, "reset_counters": true}

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

import Provider from 'oidc-provider';

const cfgPath = process.argv[2];
if (!cfgPath) {
  process.stderr.write('usage: node oidc_server.mjs CONFIG.json\n');
  process.exit(2);
}
const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));

const host = cfg.host || '127.0.0.1';
const issuerPath = (cfg.issuer_path || '').replace(/\/+$/, '');
const tls = cfg.tls || null;
const scopes = cfg.scopes || ['openid', 'offline_access', 'profile', 'email', 'api:read', 'api:write'];
const pkceRequired = cfg.pkce_required !== false;
const ttl = cfg.ttl || {};
// Scopes a resource server (RFC 8707 `resource=`) may receive: everything but the OIDC ones.
const OIDC_ONLY = new Set(['openid', 'offline_access', 'profile', 'email', 'address', 'phone']);
const resourceScopes = scopes.filter((s) => !OIDC_ONLY.has(s)).join(' ');

const state = {
  failNextToken: Number(cfg.fail_next_token || 0),
  tokenDelayMs: Number(cfg.token_delay_ms || 0),
  byGrant: {},
  total: 0,
};

const out = (obj) => process.stdout.write(`${JSON.stringify({ ...obj, ts: Date.now() / 1000 })}\n`);

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

function controlState() {
  return {
    token_requests_by_grant: state.byGrant,
    token_requests_total: state.total,
    fail_next_token: state.failNextToken,
    token_delay_ms: state.tokenDelayMs,
  };
}

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

async function readAll(stream) {
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

async function handleControl(req, res) {
  if (!LOOPBACK.has(req.socket.remoteAddress)) {
    sendJson(res, 403, { error: 'loopback only' });
    return;
  }
  if (req.method === 'GET') {
    sendJson(res, 200, controlState());
    return;
  }
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'GET or POST' });
    return;
  }
  let body;
  try {
    const text = await readAll(req);
    body = text ? JSON.parse(text) : {};
  } catch (err) {
    sendJson(res, 400, { error: `bad JSON: ${err.message}` });
    return;
  }
  if (body.fail_next_token !== undefined) state.failNextToken = Number(body.fail_next_token);
  if (body.token_delay_ms !== undefined) state.tokenDelayMs = Number(body.token_delay_ms);
  if (body.reset_counters) {
    state.byGrant = {};
    state.total = 0;
  }
  sendJson(res, 200, controlState());
}

let callback; // set once the port (and so the issuer) is known and the provider is built

async function handler(req, res) {
  const path = req.url.split('?', 1)[0];
  if (path === '/__control') {
    await handleControl(req, res);
    return;
  }
  if (issuerPath) {
    // Entra-style issuer with a path: oidc-provider routes on the bare path, so strip the
    // prefix before handing the request over. Like Express's mounting, keep the full URL in
    // req.originalUrl: oidc-provider derives the mount path (for the endpoint URLs it
    // advertises and redirects to) from the difference between the two.
    if (path === issuerPath || path.startsWith(`${issuerPath}/`)) {
      req.originalUrl = req.url;
      req.url = req.url.slice(issuerPath.length) || '/';
    } else {
      sendJson(res, 404, { error: 'not_found', error_description: `outside ${issuerPath}` });
      return;
    }
  }
  if (!callback) {
    sendJson(res, 503, { error: 'temporarily_unavailable', error_description: 'starting' });
    return;
  }
  callback(req, res);
}

const server = tls
  ? https.createServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler)
  : http.createServer(handler);

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(cfg.port || 0, host, resolve);
});
const { port } = server.address();
const issuer = `${tls ? 'https' : 'http'}://${host}:${port}${issuerPath}`;

const configuration = {
  clients: cfg.clients || [],
  scopes,
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => pkceRequired },
  rotateRefreshToken: cfg.rotate_refresh_token !== false,
  // Refresh tokens need the grant type on the client and offline_access in the grant (which
  // oidc-provider only keeps when the authorization request carried prompt=consent).
  issueRefreshToken: async (_ctx, client, source) => client.grantTypeAllowed('refresh_token')
    && source.scopes.has('offline_access'),
  ttl: {
    AccessToken: ttl.AccessToken ?? 3600,
    AuthorizationCode: ttl.AuthorizationCode ?? 60,
    ClientCredentials: ttl.ClientCredentials ?? ttl.AccessToken ?? 600,
    DeviceCode: ttl.DeviceCode ?? 600,
    Grant: ttl.Grant ?? 14 * 24 * 3600,
    IdToken: ttl.IdToken ?? 3600,
    Interaction: ttl.Interaction ?? 3600,
    RefreshToken: ttl.RefreshToken ?? 14 * 24 * 3600,
    Session: ttl.Session ?? 14 * 24 * 3600,
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: async () => true },
    revocation: { enabled: true },
    deviceFlow: { enabled: Boolean(cfg.device_flow) },
    // Plain scopes (no `resource=`) stay on the default audience: scopes listed above are
    // kept, unknown ones are dropped silently (also for client_credentials). A request that
    // names `resource=<absolute URI>` gets an opaque token for that audience with the
    // non-OIDC scopes.
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => ({
        scope: resourceScopes,
        audience: resource,
        accessTokenFormat: 'opaque',
        accessTokenTTL: ttl.AccessToken ?? 3600,
      }),
    },
  },
  findAccount: async (_ctx, sub) => ({
    accountId: sub,
    claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true, name: sub }),
  }),
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

provider.use(async (ctx, next) => {
  const isToken = ctx.method === 'POST' && ctx.path === '/token';
  if (!isToken) {
    await next();
    return;
  }
  if (state.failNextToken > 0) {
    state.failNextToken -= 1;
    let grantType;
    try {
      grantType = querystring.parse(await readAll(ctx.req)).grant_type;
    } catch {
      grantType = undefined;
    }
    ctx.status = 503;
    ctx.set('cache-control', 'no-store');
    ctx.set('retry-after', '0');
    ctx.body = { error: 'temporarily_unavailable', error_description: 'injected by the test harness' };
    record(ctx, grantType, true);
    return;
  }
  if (state.tokenDelayMs > 0) {
    await new Promise((resolve) => { setTimeout(resolve, state.tokenDelayMs); });
  }
  await next();
  record(ctx, ctx.oidc?.params?.grant_type ?? ctx.oidc?.body?.grant_type, false);
});

function record(ctx, grantType, injected) {
  const key = grantType || 'unknown';
  state.byGrant[key] = (state.byGrant[key] || 0) + 1;
  state.total += 1;
  const line = {
    event: 'token',
    grant_type: grantType ?? null,
    status: ctx.status,
    client_id: ctx.oidc?.client?.clientId ?? null,
  };
  if (injected) line.injected = true;
  if (ctx.status >= 400 && ctx.body && typeof ctx.body === 'object') line.error = ctx.body.error;
  out(line);
}

provider.on('grant.success', (ctx) => {
  out({
    event: 'grant.success',
    grant_type: ctx.oidc.params?.grant_type ?? null,
    client_id: ctx.oidc.client?.clientId ?? null,
  });
});
provider.on('grant.error', (ctx, err) => {
  out({
    event: 'grant.error',
    grant_type: ctx.oidc.params?.grant_type ?? null,
    client_id: ctx.oidc.client?.clientId ?? null,
    error: err.error ?? err.name,
    error_description: err.error_description ?? err.message,
    error_detail: err.error_detail ?? null,
  });
});
provider.on('grant.revoked', (ctx, grantId) => {
  out({
    event: 'grant.revoked',
    grant_id: grantId,
    client_id: ctx.oidc?.client?.clientId ?? null,
  });
});
provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`server_error: ${err.stack || err}\n`);
});

callback = provider.callback();
out({ event: 'ready', port, issuer });

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (cfg.exit_on_stdin_close) {
  // The test harness holds our stdin: when it goes away (even killed), so do we.
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
