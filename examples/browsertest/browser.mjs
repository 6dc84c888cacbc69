// Real-browser test of an example server's login and consent pages:
// headless Chromium driven by playwright-core. browser_test.go starts the
// server and runs
//
//   node browser.mjs BASE_URL CLIENT_ID REDIRECT_URI [ISSUER] [CLIENT_NAME]
//
// It exits 0 when every check passed; otherwise it prints "FAIL: …" and
// exits 1. Its last line of output on success is "RESULT {json}" with the
// code it obtained and the PKCE verifier, so the caller can redeem it.
// Nothing listens at the redirect URI: requests there are answered by the
// browser itself (context.route) and recorded.

import { createHash, randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];
const USER = 'demo';
const PASSWORD = 'demo';

const [base, clientId, redirectUri, issuer = base, clientName = ''] = process.argv.slice(2);
if (!base || !clientId || !redirectUri) {
  console.error('usage: node browser.mjs BASE_URL CLIENT_ID REDIRECT_URI [ISSUER] [CLIENT_NAME]');
  process.exit(2);
}
const redirect = new URL(redirectUri);

class CheckError extends Error {}
function check(ok, msg) {
  if (!ok) throw new CheckError(msg);
}

const b64url = (buf) => buf.toString('base64url');

function pkce() {
  const verifier = b64url(randomBytes(32));
  return { verifier, challenge: b64url(createHash('sha256').update(verifier).digest()) };
}

function authorizeURL(scope, state, challenge, extra = {}) {
  const u = new URL('/oauth2/authorize', base);
  u.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state,
    code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  }).toString();
  return u.toString();
}

// checkHeaders: the page may not be framed (PROTOCOL.md §2.9).
function checkHeaders(what, response) {
  check(response, `${what}: no response`);
  const h = response.headers();
  check((h['x-frame-options'] || '').toUpperCase() === 'DENY',
    `${what}: X-Frame-Options is ${JSON.stringify(h['x-frame-options'])}, want DENY`);
  check(/(^|;)\s*frame-ancestors\s+'none'\s*(;|$)/.test(h['content-security-policy'] || ''),
    `${what}: Content-Security-Policy ${JSON.stringify(h['content-security-policy'])} lacks frame-ancestors 'none'`);
}

// A fresh browser context (no cookies) that answers every request to the
// redirect URI's origin itself and hands out the URLs requested there.
async function newSession(browser) {
  const context = await browser.newContext();
  const seen = [];
  let wake = () => {};
  await context.route((url) => url.origin === redirect.origin, (route) => {
    seen.push(route.request().url());
    wake();
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>callback</title><p>callback reached' });
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  // callback(n) waits for the n-th request to the redirect origin.
  const callback = async (n = 0) => {
    const deadline = Date.now() + 15000;
    while (seen.length <= n) {
      check(Date.now() < deadline, `the browser was not sent to ${redirect.origin} within 15s (page now at ${page.url()})`);
      await new Promise((r) => { wake = r; setTimeout(r, 200); });
    }
    return new URL(seen[n]);
  };
  return { context, page, callback, seen };
}

// submitAndWait clicks the selector and returns the response to the form
// POST it sends.
async function submitAndWait(page, selector) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && r.url().startsWith(base)),
    page.click(selector),
  ]);
  return response;
}

async function loginPage(page, url) {
  const response = await page.goto(url);
  check(response && response.status() === 200, `authorize: HTTP ${response && response.status()}, want the login page`);
  checkHeaders('login page', response);
  check(await page.locator('form input[name="username"]').isVisible(), 'login page: no visible input named username');
  const pw = page.locator('form input[name="password"]');
  check(await pw.isVisible(), 'login page: no visible input named password');
  check(await pw.getAttribute('type') === 'password', 'login page: the password input is not type=password');
  check(await page.locator('form [type="submit"], form button:not([type])').count() > 0, 'login page: no submit button');
}

async function signIn(page, user, password) {
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  return submitAndWait(page, 'form [type="submit"], form button:not([type])');
}

async function errorMessage(page, what) {
  const alert = page.locator('[role="alert"], .error');
  check(await alert.count() > 0 && await alert.first().isVisible(), `${what}: no error message shown`);
  return (await alert.first().innerText()).trim();
}

// consentPage checks the page names the client and every scope.
async function consentPage(page, response, scopes) {
  check(response.status() !== 303,
    'after sign-in: HTTP 303, want the consent page (the demo user approved these scopes before: run against a fresh database)');
  check(response.status() === 200, `after sign-in: HTTP ${response.status()}, want the consent page`);
  checkHeaders('consent page', response);
  const text = await page.locator('body').innerText();
  if (clientName) check(text.includes(clientName), `consent page does not name the client ${JSON.stringify(clientName)}:\n${text}`);
  for (const s of scopes) {
    check(new RegExp(`(^|\\W)${s}(\\W|$)`).test(text), `consent page does not name the scope ${JSON.stringify(s)}:\n${text}`);
  }
  check(await page.locator('button[name="decision"][value="approve"]').isVisible(), 'consent page: no approve button');
  check(await page.locator('button[name="decision"][value="deny"]').isVisible(), 'consent page: no deny button');
}

function checkCallback(url, state, what) {
  check(url.origin + url.pathname === redirect.origin + redirect.pathname,
    `${what}: redirected to ${url.origin + url.pathname}, want ${redirectUri}`);
  const q = url.searchParams;
  // Byte-identical state: the decoded value is exactly what was sent.
  check(q.get('state') === state, `${what}: state ${JSON.stringify(q.get('state'))}, want ${JSON.stringify(state)}`);
  check(q.get('iss') === issuer, `${what}: iss ${JSON.stringify(q.get('iss'))}, want ${JSON.stringify(issuer)}`);
  return q;
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  let result;
  try {
    // Run 1: wrong password, unknown user, then sign in and approve.
    {
      const { context, page, callback } = await newSession(browser);
      const { verifier, challenge } = pkce();
      const state = `st/a+te ü&x=%41 ${b64url(randomBytes(8))}`;
      const scopes = ['read', 'write'];
      await loginPage(page, authorizeURL(scopes.join(' '), state, challenge));

      let response = await signIn(page, USER, PASSWORD + '-wrong');
      check(response.status() === 200, `wrong password: HTTP ${response.status()}, want the login page again`);
      checkHeaders('login page after a wrong password', response);
      const wrongPassword = await errorMessage(page, 'wrong password');
      check(!page.url().startsWith(redirect.origin), 'wrong password: redirected to the client');

      response = await signIn(page, 'no-such-user', PASSWORD);
      const unknownUser = await errorMessage(page, 'unknown user');
      check(wrongPassword === unknownUser,
        `the error for a wrong password (${JSON.stringify(wrongPassword)}) differs from the one for an unknown user (${JSON.stringify(unknownUser)}): it tells which field was wrong`);
      check(/password/i.test(wrongPassword) === /user|account|login/i.test(wrongPassword),
        `the login error ${JSON.stringify(wrongPassword)} names one field only`);

      response = await signIn(page, USER, PASSWORD);
      await consentPage(page, response, scopes);
      await page.click('button[name="decision"][value="approve"]');
      const q = checkCallback(await callback(), state, 'approve');
      check(q.get('code'), 'approve: no code in the redirect');
      check(!q.get('error'), `approve: error ${q.get('error')} in the redirect`);
      await context.close();
      console.log('ok: login page, wrong credentials, consent page, approve');
      result = { code: q.get('code'), code_verifier: verifier, scope: scopes.join(' ') };
    }

    // Run 2: a scope not approved before, so the consent page comes; deny.
    {
      const { context, page, callback } = await newSession(browser);
      const { challenge } = pkce();
      const state = `deny-${b64url(randomBytes(8))}`;
      const scopes = ['read', 'write', 'admin'];
      await loginPage(page, authorizeURL(scopes.join(' '), state, challenge));
      const response = await signIn(page, USER, PASSWORD);
      await consentPage(page, response, scopes);
      await page.click('button[name="decision"][value="deny"]');
      const q = checkCallback(await callback(), state, 'deny');
      check(q.get('error') === 'access_denied', `deny: error ${JSON.stringify(q.get('error'))}, want access_denied`);
      check(!q.get('code'), 'deny: a code in the redirect');
      await context.close();
      console.log('ok: deny');
    }
    // Run 3: OpenID Connect in one browser — a login, then prompt=none
    // (no page: the login session answers), prompt=login and max_age=0
    // (the login page again), logout (a confirmation page, then the
    // post-logout redirect with state), and prompt=none after it
    // (login_required). The codes go back to the caller, which checks
    // their id_tokens' auth_time.
    {
      const { context, page, callback, seen } = await newSession(browser);
      const { verifier, challenge } = pkce();
      const scope = 'openid read';
      const codes = {};
      // at(n): the n-th request to the client, once the page has landed
      // there (so the next navigation does not interrupt it).
      const at = async (n) => {
        const u = await callback(n);
        await page.waitForURL((x) => x.origin === redirect.origin);
        return u;
      };
      await loginPage(page, authorizeURL(scope, 'o1', challenge, { nonce: 'n1' }));
      let response = await signIn(page, USER, PASSWORD);
      if (response.status() === 200) await page.click('button[name="decision"][value="approve"]');
      codes.first = checkCallback(await at(0), 'o1', 'openid login').get('code');
      check(codes.first, 'openid login: no code');

      await page.goto(authorizeURL(scope, 'o2', challenge, { prompt: 'none' })).catch(() => {});
      const silent = checkCallback(await at(1), 'o2', 'prompt=none with a session');
      check(silent.get('code') && !silent.get('error'), `prompt=none with a session: ${silent}`);
      codes.none = silent.get('code');

      await new Promise((r) => setTimeout(r, 1100)); // a later auth_time, in whole seconds
      for (const [name, extra, n] of [['login', { prompt: 'login' }, 2], ['max_age', { max_age: '0' }, 3]]) {
        await loginPage(page, authorizeURL(scope, `o-${name}`, challenge, extra));
        response = await signIn(page, USER, PASSWORD);
        const q = checkCallback(await at(n), `o-${name}`, name);
        check(q.get('code'), `${name}: no code`);
        codes[name] = q.get('code');
      }

      const logout = new URL('/oauth2/logout', base);
      logout.search = new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: redirect.origin + '/logged-out', state: 'bye' }).toString();
      response = await page.goto(logout.toString());
      check(response && response.status() === 200, `logout without id_token_hint: HTTP ${response && response.status()}, want a confirmation page`);
      checkHeaders('logout confirmation page', response);
      await page.click('form button');
      const out = await at(4);
      check(out.pathname === '/logged-out' && out.searchParams.get('state') === 'bye', `after logout: sent to ${out}`);

      await page.goto(authorizeURL(scope, 'o3', challenge, { prompt: 'none' })).catch(() => {});
      const after = checkCallback(await at(5), 'o3', 'prompt=none after logout');
      check(after.get('error') === 'login_required', `prompt=none after logout: ${after}`);
      check(seen.length === 6, `${seen.length} requests reached the client, want 6`);
      await context.close();
      console.log('ok: openid login, prompt=none, prompt=login, max_age=0, logout, prompt=none after logout');
      result.oidc = { code_verifier: verifier, codes };
    }
    console.log('RESULT ' + JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  console.error('FAIL: the browser test did not finish within 90s');
  process.exit(1);
}, 90000);

try {
  await main();
  clearTimeout(watchdog);
} catch (err) {
  console.error(err instanceof CheckError ? `FAIL: ${err.message}` : `FAIL: ${err.stack || err}`);
  process.exit(1);
}
