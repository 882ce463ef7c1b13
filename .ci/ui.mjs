// The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against the live serve, worker and gcm-mock of .ci/api.sh. Every request the pages make
// must stay on the server's host; a screenshot of each page goes to $SHOTS.
//
//   GCM_API=http://127.0.0.1:PORT GCM_KEY=... READ_KEY=... SHOTS=dir node .ci/ui.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const base = process.env.GCM_API;
const key = process.env.GCM_KEY;
const readKey = process.env.READ_KEY;
const shots = process.env.SHOTS;
const origin = new URL(base).host;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const elsewhere = [];
const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  if (url.host !== origin) {
    elsewhere.push(url.href);
    return route.abort();
  }
  return route.continue();
});
const page = await context.newPage();
const step = (what) => console.log(`ui: ${what}`);
const api = (method, path, body) => page.request.fetch(base + path, {
  method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, data: body,
});
async function waitFor(what, check, seconds = 120) {
  for (let i = 0; i < seconds * 4; i++) {
    if (await check()) return;
    await page.waitForTimeout(250);
  }
  throw new Error(`${what}: not within ${seconds} s`);
}

// Without the session cookie: the login page.
await page.goto(`${base}/ui`);
assert.equal(new URL(page.url()).pathname, '/ui/login');
await page.screenshot({ path: `${shots}/login.png` });
step('a request without the cookie gets the login page');

// A form post without its CSRF token is refused, the key right or not.
const forged = await page.request.post(`${base}/ui/login`, { form: { key } });
assert.equal(forged.status(), 403);
step('a login post without the CSRF token: 403');

// A wrong key: 401 and the form again.
await page.fill('#key', 'not-a-key-not-a-key-not-a-key-00');
await page.click('button[type=submit]');
assert.match(await page.textContent('.error'), /Unknown key/);

// Log in: an HttpOnly, SameSite=Strict session cookie, then the overview.
await page.fill('#key', key);
await page.click('button[type=submit]');
assert.equal(new URL(page.url()).pathname, '/ui');
const session = (await context.cookies()).find((cookie) => cookie.name === 'gcm_session');
assert.ok(session && session.httpOnly && session.sameSite === 'Strict', JSON.stringify(session));
assert.match(await page.textContent('#health'), /answers/);
step('logged in: the overview');

// A 10 000-token campaign against gcm-mock; its first job holds tok-gone (uninstalled).
const tokens = ['tok-gone', ...Array.from({ length: 9999 }, (_, i) => `ui-token-${i}`)];
const accepted = await (await api('POST', '/jobs', { tokens, message: { data: { kind: 'ui' } } })).json();
assert.equal(accepted.job_ids.length, 10, JSON.stringify(accepted).slice(0, 200));
const first = accepted.job_ids[0];
await page.goto(`${base}/ui/jobs/${first}`);
await waitFor('the first job done, its progress bar full', async () => {
  await page.reload();
  const bar = await page.$('#settled');
  return (await page.textContent('#status')) === 'done'
    && (await bar.getAttribute('value')) === (await bar.getAttribute('max'));
});
assert.equal(await page.textContent('#not-registered'), '1');
assert.equal(await page.textContent('#delivered'), '999');
await page.screenshot({ path: `${shots}/job.png`, fullPage: true });
for (const id of accepted.job_ids) {
  await waitFor(`job ${id} done`, async () => (await (await api('GET', `/jobs/${id}`)).json()).status === 'done');
}
step('the campaign: every job done, tok-gone not registered');

// Cancel a job scheduled for tomorrow from its page.
const later = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
const scheduled = (await (await api('POST', '/jobs', { tokens: ['ui-later'], send_at: later })).json()).job_ids[0];
await page.goto(`${base}/ui/jobs/${scheduled}`);
assert.equal(await page.textContent('#status'), 'scheduled');
await page.click('#cancel');
assert.equal(await page.textContent('#status'), 'cancelled');
assert.equal(await page.textContent('#cancelled'), '1');
step('a scheduled job cancelled from its page');

// The overview shows what the campaign left.
await page.goto(`${base}/ui`);
await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });

// A read-only key sees the page but no cancel button, and its post is refused.
const reader = await browser.newContext();
const readPage = await reader.newPage();
await readPage.goto(`${base}/ui/login`);
await readPage.fill('#key', readKey);
await readPage.click('button[type=submit]');
const otherLater = (await (await api('POST', '/jobs', { tokens: ['ui-later-2'], send_at: later })).json()).job_ids[0];
await readPage.goto(`${base}/ui/jobs/${otherLater}`);
assert.equal(await readPage.$('#cancel'), null);
step('a read key: no cancel button');

// Log out: the pages ask for a key again.
await page.click('header form[action="/ui/logout"] button');
assert.equal(new URL(page.url()).pathname, '/ui/login');
await page.goto(`${base}/ui`);
assert.equal(new URL(page.url()).pathname, '/ui/login');
step('logged out');

await page.setViewportSize({ width: 390, height: 800 });
await page.goto(`${base}/ui/login`);
await page.screenshot({ path: `${shots}/login-phone.png` });
await browser.close();
assert.deepEqual(elsewhere, [], 'the pages asked for nothing beyond the server');
step('no request left the server');
