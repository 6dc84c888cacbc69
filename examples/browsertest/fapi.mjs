// FAPI 2.0-style client test with oauth4webapi (a strict, spec-following
// OAuth 2 / OpenID Connect client): private_key_jwt client authentication,
// DPoP-bound tokens with server nonces, PKCE S256, the login and consent
// in headless Chromium (playwright-core). fapi_test.go registers the
// client, starts the nethttp example with -dpop-nonce and runs
//
//   node fapi.mjs ISSUER CLIENT_ID REDIRECT_URI CLIENT_KEY_FILE
//
// CLIENT_KEY_FILE holds the client's private JWK (ES256; its public half
// is the client's registered JWK Set). The redirect URI's loopback
// listener is inherited as file descriptor 3, so the port the test
// registered is never free for someone else in between.
//
// It exits 0 when the flow ran; otherwise it prints "FAIL: …" and exits 1.
// Its last line on success is "RESULT {json}": what the server answered
// at each step and every request made (proofs and assertions decoded),
// which the caller asserts, plus the last accepted token-endpoint proof
// and resource proof, which the caller replays.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import * as oauth from 'oauth4webapi';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];
const USER = 'demo';
const PASSWORD = 'demo';
const SCOPE = 'openid read';
const TIMEOUT_MS = 90000;

const [issuerArg, clientId, redirectUri, keyFile] = process.argv.slice(2);
if (!issuerArg || !clientId || !redirectUri || !keyFile) {
  console.error('usage: node fapi.mjs ISSUER CLIENT_ID REDIRECT_URI CLIENT_KEY_FILE');
  process.exit(2);
}
const issuer = new URL(issuerArg);
const redirect = new URL(redirectUri);

class CheckError extends Error {}
function check(ok, msg) {
  if (!ok) throw new CheckError(msg);
}

// The examples serve plain http on loopback: oauth4webapi refuses that
// unless told (the one relaxation here; every other check is on).
const insecure = { [oauth.allowInsecureRequests]: true };

const decodeJWT = (jwt) => {
  const [h, p] = String(jwt).split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url')), payload: JSON.parse(Buffer.from(p, 'base64url')) };
};

// Every request oauth4webapi makes goes through logFetch (customFetch): it
// records the request (grant type, client assertion and DPoP proof decoded,
// no token values) and the answer (status, OAuth error, DPoP-Nonce,
// WWW-Authenticate).
const requests = [];
const captured = {}; // raw proofs for the caller's replay checks
async function logFetch(url, init = {}) {
  const u = new URL(url);
  const headers = new Headers(init.headers);
  const entry = { method: init.method || 'GET', url: u.origin + u.pathname };
  if (init.body instanceof URLSearchParams) {
    const b = init.body;
    if (b.get('grant_type')) entry.grant_type = b.get('grant_type');
    if (b.get('client_assertion')) {
      const { header, payload } = decodeJWT(b.get('client_assertion'));
      entry.client_assertion_type = b.get('client_assertion_type');
      entry.client_assertion = { alg: header.alg, kid: header.kid, typ: header.typ, iss: payload.iss, sub: payload.sub, aud: payload.aud, exp_minus_iat: payload.exp - payload.iat, jti: typeof payload.jti === 'string' };
    }
    if (b.get('client_secret')) entry.client_secret = true;
  }
  if (headers.get('authorization')) entry.authorization_scheme = headers.get('authorization').split(' ')[0];
  const proof = headers.get('dpop');
  if (proof) {
    const { header, payload } = decodeJWT(proof);
    entry.proof = { typ: header.typ, alg: header.alg, jwk_kty: header.jwk && header.jwk.kty, jwk_private: !!(header.jwk && header.jwk.d), htm: payload.htm, htu: payload.htu, nonce: typeof payload.nonce === 'string', ath: typeof payload.ath === 'string' };
  }
  const res = await fetch(url, init);
  entry.status = res.status;
  if (res.headers.get('dpop-nonce')) entry.dpop_nonce = true;
  if (res.headers.get('www-authenticate')) entry.www_authenticate = res.headers.get('www-authenticate');
  if ((res.headers.get('content-type') || '').includes('json')) {
    try {
      const body = await res.clone().json();
      if (body.error) entry.error = body.error;
      if (body.error_description) entry.error_description = body.error_description;
      if (body.token_type) entry.token_type = body.token_type; // as the server spelled it
    } catch { /* not JSON after all: the library will say so */ }
  }
  if (proof && entry.status < 300) {
    // The latest accepted proof at the token endpoint and at /api/me.
    const kind = u.pathname === '/api/me' ? 'resource_proof' : entry.grant_type ? 'token_proof' : '';
    if (kind) captured[kind] = proof;
  }
  requests.push(entry);
  return res;
}
const opts = (extra = {}) => ({ ...insecure, [oauth.customFetch]: logFetch, ...extra });

// withNonceRetry runs a request-and-process step; when the server asks for
// a DPoP nonce (use_dpop_nonce), the DPoP handle has cached the one it
// sent, and the step runs once more, as oauth4webapi's documentation
// prescribes. retries counts those per step.
const retries = {};
async function withNonceRetry(name, step) {
  retries[name] = 0;
  try {
    return await step();
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    retries[name]++;
    return step();
  }
}

function describe(err) {
  if (!err) return '';
  let s = `${err.name}: ${err.message}`;
  if (err.code) s += ` [${err.code}]`;
  if (err.error) s += ` error=${err.error}`;
  if (err.error_description) s += ` (${err.error_description})`;
  if (err.cause && !(err.cause instanceof Response)) {
    try { s += ` cause=${JSON.stringify(err.cause)}`; } catch { /* circular */ }
  }
  return s;
}

// The redirect URI's listener: the socket fapi_test.go bound (fd 3).
function callbackServer() {
  let resolve;
  const got = new Promise((r) => { resolve = r; });
  const server = createServer((req, res) => {
    const u = new URL(req.url, redirect.origin);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end('<!doctype html><title>callback</title><p>callback reached');
    if (u.pathname === redirect.pathname) resolve(u);
  });
  return { server, got, listen: () => new Promise((r, j) => server.once('error', j).listen({ fd: 3 }, r)) };
}

let browser;
let callback;
async function cleanup() {
  await Promise.allSettled([
    browser ? browser.close() : null,
    callback ? new Promise((r) => { callback.server.closeAllConnections(); callback.server.close(r); }) : null,
  ]);
}

async function main() {
  const result = { issuer: issuer.href.replace(/\/$/, '') };

  // Discovery (OpenID Connect Discovery path; the issuer must match).
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts({ algorithm: 'oidc' })));
  result.metadata = Object.fromEntries(['issuer', 'authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri',
    'token_endpoint_auth_methods_supported', 'token_endpoint_auth_signing_alg_values_supported', 'dpop_signing_alg_values_supported',
    'code_challenge_methods_supported', 'authorization_response_iss_parameter_supported'].map((k) => [k, as[k]]));

  // The client: private_key_jwt with the registered key; DPoP with a key
  // pair of its own (never the assertion key).
  const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
  const { kid, ...raw } = jwk;
  const clientKey = await crypto.subtle.importKey('jwk', { kty: raw.kty, crv: raw.crv, x: raw.x, y: raw.y, d: raw.d },
    { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const client = { client_id: clientId, token_endpoint_auth_method: 'private_key_jwt' };
  const clientAuth = oauth.PrivateKeyJwt({ key: clientKey, kid });
  const dpopKeys = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, dpopKeys);
  result.dpop_jkt = await DPoP.calculateThumbprint();

  // The authorization request: PKCE S256, state, nonce, dpop_jkt.
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const authURL = new URL(as.authorization_endpoint);
  authURL.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: SCOPE, state, nonce,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256',
    dpop_jkt: result.dpop_jkt,
  }).toString();
  result.authorize_url = authURL.href;

  // The browser: sign in as the demo user, approve, land on the callback.
  callback = callbackServer();
  await callback.listen();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const page = await (await browser.newContext()).newPage();
  page.setDefaultTimeout(15000);
  const response = await page.goto(authURL.href);
  check(response && response.status() === 200, `authorize: HTTP ${response && response.status()}, want the login page`);
  await page.fill('input[name="username"]', USER);
  await page.fill('input[name="password"]', PASSWORD);
  await page.click('form [type="submit"], form button:not([type])');
  const approve = page.locator('button[name="decision"][value="approve"]');
  await Promise.race([approve.waitFor({ state: 'visible' }), callback.got]);
  const consent = await approve.isVisible();
  if (consent) await approve.click();
  const cbURL = await Promise.race([callback.got, new Promise((_, j) => setTimeout(() => j(new CheckError(`no callback within 15s (page at ${page.url()})`)), 15000))]);
  result.consent_page = consent;
  result.callback = { iss: cbURL.searchParams.get('iss'), state_matches: cbURL.searchParams.get('state') === state, code: !!cbURL.searchParams.get('code'), error: cbURL.searchParams.get('error') };
  await browser.close();
  browser = undefined;

  // The callback: iss and state checked by oauth4webapi (the metadata
  // says authorization_response_iss_parameter_supported).
  const params = oauth.validateAuthResponse(as, client, cbURL, state);

  // The code redemption: the first proof has no nonce, the server answers
  // use_dpop_nonce, the step runs again with it.
  const tokens = await withNonceRetry('authorization_code', async () => {
    const res = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, redirectUri, codeVerifier, opts({ DPoP }));
    return oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: nonce, requireIdToken: true });
  });
  const claims = oauth.getValidatedIdTokenClaims(tokens);
  result.token = { token_type: tokens.token_type, scope: tokens.scope, expires_in: tokens.expires_in, refresh_token: !!tokens.refresh_token, id_token: !!tokens.id_token };
  result.id_token = { iss: claims.iss, aud: claims.aud, sub: claims.sub, nonce_matches: claims.nonce === nonce, azp: claims.azp, auth_time: typeof claims.auth_time === 'number' };

  // The protected API with the DPoP-bound token.
  const meURL = new URL('/api/me', as.issuer);
  const callMe = async (token, handle, name) => withNonceRetry(name, async () => {
    const res = await oauth.protectedResourceRequest(token, 'GET', meURL, undefined, undefined, opts({ DPoP: handle }));
    return { status: res.status, body: await res.json() };
  });
  result.me = await callMe(tokens.access_token, DPoP, 'api_me');

  // The same token as a plain Bearer token.
  {
    const res = await logFetch(meURL.href, { method: 'GET', headers: { authorization: `Bearer ${tokens.access_token}` } });
    result.bearer = { status: res.status, www_authenticate: res.headers.get('www-authenticate') };
    await res.body?.cancel();
  }

  // A new handle on the same key has no nonce cached: does the resource
  // demand one? (Either way the request must succeed, after one retry at
  // most.)
  {
    const fresh = oauth.DPoP(client, dpopKeys);
    result.resource_nonce_probe = await callMe(tokens.access_token, fresh, 'api_me_fresh_handle');
  }

  // UserInfo with DPoP; sub must be the id_token's.
  try {
    result.userinfo = await withNonceRetry('userinfo', async () => {
      const res = await oauth.userInfoRequest(as, client, tokens.access_token, opts({ DPoP }));
      return oauth.processUserInfoResponse(as, client, claims.sub, res);
    });
  } catch (err) {
    result.userinfo_error = describe(err); // reported, not hidden: the caller fails on it
  }

  // Refresh with DPoP: a new DPoP-bound token.
  check(tokens.refresh_token, 'no refresh token');
  const refreshed = await withNonceRetry('refresh_token', async () => {
    const res = await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, opts({ DPoP }));
    return oauth.processRefreshTokenResponse(as, client, res);
  });
  const refreshedClaims = oauth.getValidatedIdTokenClaims(refreshed);
  result.refresh = {
    token_type: refreshed.token_type, new_access_token: refreshed.access_token !== tokens.access_token,
    refresh_token: !!refreshed.refresh_token, rotated: !!refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token,
    id_token_sub: refreshedClaims && refreshedClaims.sub,
  };
  result.refresh.me = await callMe(refreshed.access_token, DPoP, 'api_me_refreshed');
  const latestRefresh = refreshed.refresh_token || tokens.refresh_token;

  // Refresh without a proof: this client's tokens must be DPoP-bound.
  try {
    const res = await oauth.refreshTokenGrantRequest(as, client, clientAuth, latestRefresh, opts());
    await oauth.processRefreshTokenResponse(as, client, res);
    result.refresh_without_proof = { accepted: true };
  } catch (err) {
    result.refresh_without_proof = { accepted: false, error: err.error, status: err.status, message: describe(err) };
  }

  result.nonce_retries = retries;
  result.requests = requests;
  // For the caller's replay checks only (never logged).
  result.replay = { token_proof: captured.token_proof, resource_proof: captured.resource_proof, access_token: refreshed.access_token, refresh_token: latestRefresh };
  return result;
}

const watchdog = setTimeout(async () => {
  console.error(`FAIL: the FAPI test did not finish within ${TIMEOUT_MS / 1000}s`);
  await Promise.race([cleanup(), new Promise((r) => setTimeout(r, 5000))]);
  process.exit(1);
}, TIMEOUT_MS);

let code = 0;
try {
  const result = await main();
  console.log('ok: discovery, private_key_jwt, DPoP with nonce, PKCE, login and consent in Chromium, token, /api/me, userinfo, refresh');
  console.log('RESULT ' + JSON.stringify(result));
} catch (err) {
  console.error(err instanceof CheckError ? `FAIL: ${err.message}` : `FAIL: ${describe(err)}\n${err.stack || ''}`);
  for (const r of requests) console.error(`  ${r.method} ${r.url} → ${r.status}${r.error ? ' ' + r.error : ''}${r.error_description ? ' (' + r.error_description + ')' : ''}`);
  code = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(code);
