// Real-browser test of the device verification page (RFC 8628): headless
// Chromium driven by playwright-core, as a user with a phone would. device_test.go
// asks for a device code with golang.org/x/oauth2, polls for the token
// meanwhile, and runs
//
//   node device.mjs VERIFICATION_URI_COMPLETE USER_CODE CLIENT_NAME [deny]
//
// The script opens the page, checks it may not be framed and comes with
// the code filled in, confirms it, signs in, checks the consent page names
// the client, approves (or denies) and checks the final page. It exits 0
// when every check passed; otherwise it prints "FAIL: …" and exits 1.

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
];

const [complete, userCode, clientName, decision = 'approve'] = process.argv.slice(2);
if (!complete || !userCode || !clientName) {
  console.error('usage: node device.mjs VERIFICATION_URI_COMPLETE USER_CODE CLIENT_NAME [deny]');
  process.exit(2);
}

class CheckError extends Error {}
function check(ok, msg) {
  if (!ok) throw new CheckError(msg);
}

function checkHeaders(what, response) {
  check(response, `${what}: no response`);
  const h = response.headers();
  check((h['x-frame-options'] || '').toUpperCase() === 'DENY', `${what}: X-Frame-Options is ${JSON.stringify(h['x-frame-options'])}`);
  check(/(^|;)\s*frame-ancestors\s+'none'\s*(;|$)/.test(h['content-security-policy'] || ''), `${what}: no frame-ancestors 'none'`);
}

async function submit(page, selector) {
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST'),
    page.click(selector),
  ]);
  return response;
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(15000);
    let response = await page.goto(complete);
    check(response.status() === 200, `verification page: HTTP ${response.status()}`);
    checkHeaders('verification page', response);
    const input = page.locator('form input[name="user_code"]');
    check(await input.isVisible(), 'verification page: no visible user_code input');
    check(await input.inputValue() === userCode, `verification page: the input holds ${JSON.stringify(await input.inputValue())}, want ${userCode}`);

    // A mistyped code first: the page says so and asks again.
    await input.fill('BCDF-GHJ');
    response = await submit(page, 'form button[type="submit"]');
    check(response.status() === 400, `a wrong code: HTTP ${response.status()}, want 400`);
    check(await page.locator('[role="alert"]').isVisible(), 'a wrong code: no message shown');

    // The code as a user might type it: lower case, a space for the dash.
    await page.fill('form input[name="user_code"]', userCode.toLowerCase().replace('-', ' '));
    response = await submit(page, 'form button[type="submit"]');
    check(response.status() === 200, `after the code: HTTP ${response.status()}, want the login page`);
    checkHeaders('login page', response);
    await page.fill('input[name="username"]', 'demo');
    await page.fill('input[name="password"]', 'demo');
    response = await submit(page, 'form [type="submit"], form button:not([type])');
    check(response.status() === 200, `after sign-in: HTTP ${response.status()}, want the consent page`);
    checkHeaders('consent page', response);
    check((await page.content()).includes(clientName), `consent page does not name ${clientName}`);
    response = await submit(page, `button[name="decision"][value="${decision}"]`);
    check(response.status() === 200, `after ${decision}: HTTP ${response.status()}`);
    const text = await page.locator('body').innerText();
    const want = decision === 'approve' ? `${clientName} is signed in` : `You denied ${clientName}`;
    check(text.includes(want), `final page says ${JSON.stringify(text)}, want ${JSON.stringify(want)}`);
    console.log(`ok: device verification page, wrong code refused, code typed loosely, login, consent, ${decision}`);
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  console.error('FAIL: the device browser test did not finish within 60s');
  process.exit(1);
}, 60000);

try {
  await main();
  clearTimeout(watchdog);
} catch (err) {
  console.error(err instanceof CheckError ? `FAIL: ${err.message}` : `FAIL: ${err.stack || err}`);
  process.exit(1);
}
