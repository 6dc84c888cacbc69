// The MCP authorization flow as the official TypeScript SDK
// (@modelcontextprotocol/sdk) runs it against examples/mcp, with the demo
// user signing in and approving in headless Chromium (playwright-core).
// mcp_test.go starts the server and runs
//
//   node mcp.mjs MCP_URL [ISSUER]
//
// The SDK's Client and StreamableHTTPClientTransport with an
// OAuthClientProvider of this script (everything in memory; the redirect
// URI is a loopback http callback served by this script) do what the SDK
// documents: connect, get a 401, find the protected resource metadata and
// the authorization server metadata, register dynamically, send the user
// to authorize (redirectToAuthorization: the browser), throw
// UnauthorizedError; then transport.finishAuth(code) and a new connection
// call the tools.
//
// Then step-up: a second client holds a token for the MCP resource
// without the mcp scope (openid only), and the SDK's transport, answered
// 403 insufficient_scope scope="mcp", authorizes again for mcp by itself.
//
// It exits 0 when every check passed; otherwise it prints "FAIL: …" and
// exits 1. Its last line on success is "RESULT {json}" for the caller.

import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  auth, discoverAuthorizationServerMetadata, registerClient, UnauthorizedError,
} from '@modelcontextprotocol/sdk/client/auth.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];
const USER = 'demo';
const PASSWORD = 'demo';
const CLIENT_NAME = 'TS SDK E2E';
const SCOPE = 'mcp';
const TIMEOUT_MS = 60000;

const [mcpArg, issuerArg] = process.argv.slice(2);
if (!mcpArg) {
  console.error('usage: node mcp.mjs MCP_URL [ISSUER]');
  process.exit(2);
}
const mcpURL = new URL(mcpArg);
const issuer = issuerArg || mcpURL.origin;
const resource = issuer.replace(/\/$/, '') + '/mcp';

class CheckError extends Error {}
function check(ok, msg) {
  if (!ok) throw new CheckError(msg);
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// ---- What the SDK sent: every request through its fetch. ----

const requests = [];
const registrations = [];

function bodyText(body) {
  if (body == null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  return String(body);
}

// sdkFetch is the fetch the transports (and so the SDK's auth) use: it
// records each request's method, URL, status, and what matters of it.
async function sdkFetch(input, init = {}) {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const method = init.method || (input instanceof Request ? input.method : 'GET');
  const entry = { method, url: url.href };
  const text = bodyText(init.body);
  if (url.pathname === '/mcp' && text) {
    try {
      const m = JSON.parse(text);
      entry.rpc = Array.isArray(m) ? m.map((x) => x.method) : m.method;
    } catch { /* not JSON */ }
  }
  if (text && method === 'POST' && url.pathname !== '/mcp') {
    const p = new URLSearchParams(text);
    if (p.has('grant_type')) {
      // The token request, without its secrets.
      entry.token = {};
      for (const [k, v] of p) entry.token[k] = ['code', 'code_verifier', 'refresh_token'].includes(k) ? '…' : v;
    }
  }
  if (init.headers) {
    const h = new Headers(init.headers);
    if (h.has('authorization')) entry.authorization = h.get('authorization').split(' ')[0];
  }
  requests.push(entry);
  const res = await fetch(input, init);
  entry.status = res.status;
  const www = res.headers.get('www-authenticate');
  if (www) entry.www_authenticate = www;
  if (method === 'POST' && text && res.status === 201 && text.trim().startsWith('{')) {
    const reg = { body: JSON.parse(text) };
    try {
      reg.response = await res.clone().json();
    } catch { /* checked by the SDK */ }
    entry.registration = reg.body;
    registrations.push(reg);
  }
  return res;
}

// ---- The redirect URI: a loopback callback server. ----

function startCallbackServer() {
  const hits = [];
  let waiters = [];
  const server = createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    if (u.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    hits.push(u.searchParams);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>callback</title><p>Signed in: you may close this window.');
    for (const w of waiters) w();
    waiters = [];
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}/callback`,
        hits,
        // next(n): the n-th request to the callback.
        async next(n) {
          const deadline = Date.now() + 20000;
          while (hits.length <= n) {
            check(Date.now() < deadline, 'the browser did not reach the callback within 20s');
            await new Promise((r) => { waiters.push(r); setTimeout(r, 250); });
          }
          return hits[n];
        },
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}

// ---- The browser: the user signs in and approves. ----

let browser;
let callback;

// approveInBrowser opens url in a fresh browser context (no cookies),
// signs the demo user in, checks the consent page and approves; it
// returns the callback's query.
async function approveInBrowser(url, scopes) {
  const n = callback.hits.length;
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(15000);
    const response = await page.goto(url);
    check(response && response.status() === 200, `authorize: HTTP ${response && response.status()}, want the login page`);
    check(await page.locator('form input[name="username"]').isVisible(), 'authorize: no login form');
    const login = await page.locator('body').innerText();
    check(login.includes(CLIENT_NAME), `login page does not name the client ${JSON.stringify(CLIENT_NAME)}:\n${login}`);
    await page.fill('input[name="username"]', USER);
    await page.fill('input[name="password"]', PASSWORD);
    const [afterLogin] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(issuer)),
      page.click('form [type="submit"]'),
    ]);
    check(afterLogin.status() === 200, `after sign-in: HTTP ${afterLogin.status()}, want the consent page (a fresh database?)`);
    await page.locator('button[name="decision"][value="approve"]').waitFor();
    const text = await page.locator('body').innerText();
    check(text.includes(CLIENT_NAME), `consent page does not name the client ${JSON.stringify(CLIENT_NAME)}:\n${text}`);
    // The client registered itself: the page must say its name is not
    // verified and where the user will be sent back.
    check(/unverified/i.test(text) && /not verified/i.test(text),
      `consent page does not say the self-registered client is unverified:\n${text}`);
    check(text.includes('127.0.0.1'), `consent page does not name the redirect host 127.0.0.1:\n${text}`);
    for (const s of scopes) {
      check(new RegExp(`(^|\\W)${s}(\\W|$)`).test(text), `consent page does not name the scope ${s}:\n${text}`);
    }
    await page.click('button[name="decision"][value="approve"]');
    const q = await callback.next(n);
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    return { q, consentText: text };
  } finally {
    await context.close();
  }
}

// ---- The SDK's OAuthClientProvider, in memory. ----

class MemoryProvider {
  constructor(name, { grantTypes = ['authorization_code', 'refresh_token'] } = {}) {
    this.name = name;
    this.grantTypes = grantTypes;
    this.authorizations = []; // what redirectToAuthorization was given, and its outcome
    this.savedTokens = [];
  }

  get redirectUrl() { return callback.url; }

  get clientMetadata() {
    // No application_type: the SDK sends a loopback redirect without it,
    // and the server takes it as a web client.
    return {
      redirect_uris: [callback.url],
      token_endpoint_auth_method: 'none',
      grant_types: this.grantTypes,
      response_types: ['code'],
      client_name: CLIENT_NAME,
    };
  }

  state() {
    this._state = b64url(randomBytes(16));
    return this._state;
  }

  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) {
    this._tokens = tokens;
    this.savedTokens.push({ scope: tokens.scope, refresh_token: Boolean(tokens.refresh_token), token_type: tokens.token_type });
  }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() {
    check(this._verifier, `${this.name}: the SDK asked for a code verifier before saving one`);
    return this._verifier;
  }

  async redirectToAuthorization(url) {
    const a = { url: url.href };
    this.authorizations.push(a);
    const q = url.searchParams;
    // PKCE S256 of the verifier the SDK saved just before, the resource
    // indicator of the MCP server, our state and redirect URI.
    check(url.href.startsWith(issuer + '/'), `${this.name}: authorize URL ${url} is not at the issuer ${issuer}`);
    check(q.get('response_type') === 'code', `${this.name}: response_type ${q.get('response_type')}`);
    check(q.get('client_id') && q.get('client_id') === this._client?.client_id,
      `${this.name}: authorize client_id ${q.get('client_id')}, want the registered ${this._client?.client_id}`);
    check(q.get('redirect_uri') === callback.url, `${this.name}: redirect_uri ${q.get('redirect_uri')}`);
    check(q.get('code_challenge_method') === 'S256', `${this.name}: code_challenge_method ${q.get('code_challenge_method')}, want S256`);
    check(this._verifier && q.get('code_challenge') === b64url(createHash('sha256').update(this._verifier).digest()),
      `${this.name}: code_challenge is not the S256 of the saved verifier`);
    check(q.get('resource') === resource, `${this.name}: resource ${JSON.stringify(q.get('resource'))}, want ${resource}`);
    check(q.get('state') === this._state, `${this.name}: state ${q.get('state')}, want ${this._state}`);
    const scopes = (q.get('scope') || '').split(' ').filter(Boolean);
    check(scopes.length > 0, `${this.name}: no scope on the authorize URL`);
    const { q: cb } = await approveInBrowser(url.href, scopes);
    check(!cb.get('error'), `${this.name}: the callback got error ${cb.get('error')}: ${cb.get('error_description')}`);
    check(cb.get('code'), `${this.name}: no code at the callback`);
    check(cb.get('state') === this._state, `${this.name}: callback state ${cb.get('state')}, want ${this._state}`);
    check(cb.get('iss') === issuer, `${this.name}: callback iss ${cb.get('iss')}, want ${issuer}`);
    a.code = cb.get('code');
    a.callback = { state: cb.get('state'), iss: cb.get('iss'), code: Boolean(cb.get('code')) };
    this.pendingCode = a.code;
  }

  takeCode() {
    const c = this.pendingCode;
    check(c, `${this.name}: no authorization code was obtained`);
    this.pendingCode = undefined;
    return c;
  }
}

const newClient = () => new Client({ name: 'oauth2kit-ts-e2e', version: '1.0.0' });
const newTransport = (provider) => new StreamableHTTPClientTransport(mcpURL, { authProvider: provider, fetch: sdkFetch });

// connectExpectingAuthorization is the SDK's documented first step: it
// throws UnauthorizedError once redirectToAuthorization was called.
async function connectExpectingAuthorization(provider, what) {
  const transport = newTransport(provider);
  const client = newClient();
  try {
    await client.connect(transport);
    throw new CheckError(`${what}: connect succeeded, want UnauthorizedError (the user has not authorized yet)`);
  } catch (err) {
    if (err instanceof CheckError) throw err;
    check(err instanceof UnauthorizedError, `${what}: connect threw ${err && err.stack}, want UnauthorizedError`);
  }
  return { transport, client };
}

async function callTools(provider, what) {
  const transport = newTransport(provider);
  const client = newClient();
  await client.connect(transport);
  try {
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    check(!who.isError && who.content?.[0]?.type === 'text', `${what}: whoami: ${JSON.stringify(who)}`);
    const whoami = JSON.parse(who.content[0].text);
    const text = `hello from the TypeScript SDK ${b64url(randomBytes(4))}`;
    const echo = await client.callTool({ name: 'echo', arguments: { text } });
    check(!echo.isError && echo.content?.[0]?.text === text, `${what}: echo: ${JSON.stringify(echo)}, want ${text}`);
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    return { whoami, echo: echo.content[0].text, echo_sent: text, tools, server: client.getServerVersion() };
  } finally {
    await client.close();
  }
}

function checkWhoami(whoami, provider, what) {
  check(whoami.sub === USER, `${what}: whoami sub ${whoami.sub}, want ${USER}`);
  check((whoami.scope || '').split(' ').includes(SCOPE), `${what}: whoami scope ${JSON.stringify(whoami.scope)} lacks ${SCOPE}`);
  check(whoami.client_id === provider.clientInformation().client_id,
    `${what}: whoami client_id ${whoami.client_id}, want the registered ${provider.clientInformation().client_id}`);
}

async function main() {
  callback = await startCallbackServer();
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    const result = { issuer, resource, redirect_uri: callback.url };

    // 1. The documented flow: connect → 401 → discovery, registration,
    // authorization → UnauthorizedError; finishAuth; connect again.
    {
      const provider = new MemoryProvider('flow');
      const first = requests.length;
      const { transport } = await connectExpectingAuthorization(provider, 'first connect');
      check(provider.authorizations.length === 1, `first connect: ${provider.authorizations.length} authorizations, want 1`);
      check(registrations.length === 1, `first connect: ${registrations.length} registrations, want 1`);
      await transport.finishAuth(provider.takeCode());
      await transport.close();
      check(provider.tokens()?.access_token, 'finishAuth saved no token');
      const tools = await callTools(provider, 'after finishAuth');
      checkWhoami(tools.whoami, provider, 'after finishAuth');
      result.flow = {
        client_id: provider.clientInformation().client_id,
        registration: registrations[0].body,
        registration_response: Object.fromEntries(Object.entries(registrations[0].response || {})
          .filter(([k]) => !['registration_access_token', 'client_secret'].includes(k))),
        authorize_url: provider.authorizations[0].url,
        callback: provider.authorizations[0].callback,
        tokens: provider.savedTokens,
        requests: requests.slice(first),
        ...tools,
      };
      console.log('ok: 401, discovery, registration, browser sign-in and consent, finishAuth, whoami, echo');
    }

    // 2. Step-up. A second client (registered for "openid mcp") holds a
    // token for the MCP resource with scope openid alone: the SDK's own
    // auth() got it, asked for scope openid. The transport then meets 403
    // insufficient_scope scope="mcp" and authorizes again itself.
    result.step_up = {};
    for (const [name, grantTypes] of [['no_refresh_token', ['authorization_code']], ['with_refresh_token', ['authorization_code', 'refresh_token']]]) {
      const provider = new MemoryProvider(`step-up ${name}`, { grantTypes });
      const first = requests.length;
      const metadata = await discoverAuthorizationServerMetadata(issuer, { fetchFn: sdkFetch });
      provider.saveClientInformation(await registerClient(issuer, {
        metadata, clientMetadata: provider.clientMetadata, scope: `openid ${SCOPE}`, fetchFn: sdkFetch,
      }));
      check(await auth(provider, { serverUrl: mcpURL, scope: 'openid', fetchFn: sdkFetch }) === 'REDIRECT',
        `step-up ${name}: auth() for scope openid did not redirect`);
      check(await auth(provider, { serverUrl: mcpURL, authorizationCode: provider.takeCode(), fetchFn: sdkFetch }) === 'AUTHORIZED',
        `step-up ${name}: auth() with the code did not authorize`);
      check(provider.tokens().scope === 'openid', `step-up ${name}: the first token has scope ${provider.tokens().scope}, want openid`);
      const out = { grant_types: grantTypes, first_scope: provider.tokens().scope };
      const transport = newTransport(provider);
      const client = newClient();
      try {
        await client.connect(transport);
        out.connect = 'connected';
      } catch (err) {
        out.connect = err instanceof UnauthorizedError ? 'UnauthorizedError' : `${err?.constructor?.name}: ${err?.message}`;
      }
      await client.close().catch(() => {});
      out.authorize_urls = provider.authorizations.map((a) => a.url);
      const reauth = provider.authorizations[1];
      out.reauthorize_scope = reauth ? new URL(reauth.url).searchParams.get('scope') : null;
      if (out.connect === 'UnauthorizedError' && reauth) {
        await transport.finishAuth(provider.takeCode());
        const tools = await callTools(provider, `step-up ${name}`);
        checkWhoami(tools.whoami, provider, `step-up ${name}`);
        out.whoami = tools.whoami;
        out.stepped_up = true;
      } else {
        out.stepped_up = false;
      }
      await transport.close();
      out.tokens = provider.savedTokens;
      out.requests = requests.slice(first);
      result.step_up[name] = out;
      console.log(`step-up ${name}: connect → ${out.connect}; re-authorized for ${JSON.stringify(out.reauthorize_scope)}; stepped up: ${out.stepped_up}`);
    }
    // Without a refresh token, re-authorizing is the only way, and the
    // SDK must take it.
    const s = result.step_up.no_refresh_token;
    check(s.stepped_up && s.reauthorize_scope === SCOPE,
      `step-up without a refresh token: connect → ${s.connect}, re-authorized for ${s.reauthorize_scope}; want UnauthorizedError and a new authorization for ${SCOPE}`);
    console.log('RESULT ' + JSON.stringify(result));
  } finally {
    await browser?.close().catch(() => {});
    await callback.close();
  }
}

const watchdog = setTimeout(async () => {
  console.error(`FAIL: the MCP test did not finish within ${TIMEOUT_MS / 1000}s`);
  await Promise.race([browser?.close().catch(() => {}), new Promise((r) => setTimeout(r, 3000))]);
  process.exit(1);
}, TIMEOUT_MS);

try {
  await main();
  clearTimeout(watchdog);
  process.exit(0);
} catch (err) {
  console.error(err instanceof CheckError ? `FAIL: ${err.message}` : `FAIL: ${err.stack || err}`);
  if (requests.length) console.error('requests the SDK made:\n' + requests.map((r) => JSON.stringify(r)).join('\n'));
  process.exit(1);
}
