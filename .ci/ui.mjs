// The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against the live serve, worker and gcm-mock of .ci/api.sh. Every request the pages make
// must stay on the server's host; a screenshot of each page goes to $SHOTS.
//
// RUN numbers the run: each of the CI's runs has a flaky token of its own (tok-flaky-RUN,
// refused on its first 3 attempts: given up by a worker run with --max-attempts 3).
//
//   GCM_API=http://127.0.0.1:PORT GCM_KEY=... READ_KEY=... SHOTS=dir RUN=1 node .ci/ui.mjs
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const base = process.env.GCM_API;
const key = process.env.GCM_KEY;
const readKey = process.env.READ_KEY;
const shots = process.env.SHOTS;
const run = process.env.RUN ?? '1';
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
const began = Date.now();
const step = (what) => console.log(`ui ${run} (${((Date.now() - began) / 1000).toFixed(1)} s): ${what}`);
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
// Opens `path` until `check` holds. A page whose numbers move reloads itself, and its
// reload may cut into ours: that read is lost and made again.
async function watch(what, path, check, seconds = 120) {
  await waitFor(what, async () => {
    try {
      await page.goto(base + path);
      return await check();
    } catch (error) {
      if (/navigat|not attached|context was destroyed|interrupted/i.test(String(error))) return false;
      throw error;
    }
  }, seconds);
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
const tokens = ['tok-gone', ...Array.from({ length: 9999 }, (_, i) => `ui-token-${run}-${i}`)];
const accepted = await (await api('POST', '/jobs', { tokens, message: { data: { kind: 'ui' } } })).json();
assert.equal(accepted.job_ids.length, 10, JSON.stringify(accepted).slice(0, 200));
const campaign = accepted.campaign_id;
assert.ok(campaign, JSON.stringify(accepted).slice(0, 200));

// The campaign's page fills while it is sent, up to 100 %.
await page.goto(`${base}/ui/campaigns`);
assert.ok(await page.$(`a[href="/ui/campaigns/${campaign}"]`), 'the campaign is listed');
await page.click(`a[href="/ui/campaigns/${campaign}"]`);
await watch('the campaign done, its progress bar full', `/ui/campaigns/${campaign}`, async () => {
  const bar = await page.$('#settled');
  return (await page.textContent('#status')) === 'done'
    && (await bar.getAttribute('value')) === '10000' && (await bar.getAttribute('max')) === '10000';
});
assert.equal(await page.textContent('#not-registered'), '1');
assert.equal(await page.textContent('#delivered'), '9999');
assert.match(await page.textContent('#bucket'), /tok-gone/, 'the not-registered bucket lists tok-gone');
await page.screenshot({ path: `${shots}/campaign.png`, fullPage: true });
await page.fill('input[name=q]', `ui-token-${run}-999`);
await page.click('form.find button[type=submit] >> nth=-1');
assert.match(await page.textContent('#tokens'), /\(0\)/, 'no such token among the not registered');
await page.goto(`${base}/ui/campaigns/${campaign}?fate=delivered&q=ui-token-${run}-999`);
assert.equal(await page.locator('#bucket td.token').count(), 1 + 9, '999 and 9990 to 9998 contain 999');
const csv = await page.request.get(`${base}/ui/campaigns/${campaign}/results.csv`);
assert.equal(csv.status(), 200);
const rows = (await csv.text()).trim().split('\n');
assert.equal(rows.length, 1 + 10000);
assert.ok(rows.some((row) => /,tok-gone,not_registered,/.test(row)), 'tok-gone in the CSV');
await page.goto(`${base}/ui/campaigns`);
await page.screenshot({ path: `${shots}/campaigns.png`, fullPage: true });
step('the campaign: 100 %, tok-gone not registered, its tokens searched, its CSV downloaded');
const first = accepted.job_ids[0];
await watch('the first job done, its progress bar full', `/ui/jobs/${first}`, async () => {
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

// Cancel a campaign scheduled for tomorrow from its page.
const tomorrow = Array.from({ length: 1500 }, (_, i) => `ui-later-${run}-${i}`);
const planned = (await (await api('POST', '/jobs', { tokens: tomorrow, send_at: later })).json()).campaign_id;
await page.goto(`${base}/ui/campaigns/${planned}`);
assert.equal(await page.textContent('#status'), 'scheduled');
await page.click('#cancel');
assert.equal(await page.textContent('#status'), 'cancelled');
assert.equal(await page.textContent('#cancelled'), '1500');
step('a scheduled campaign cancelled from its page');

// Given up after 3 attempts, tok-flaky-RUN is re-queued from the campaign's page and delivered.
const flaky = `tok-flaky-${run}`;
const mixed = [flaky, ...Array.from({ length: 1001 }, (_, i) => `ui-mixed-${run}-${i}`)];
const retried = (await (await api('POST', '/jobs', { tokens: mixed })).json()).campaign_id;
await watch('the flaky token given up', `/ui/campaigns/${retried}`,
  async () => (await page.textContent('#status')) === 'given_up');
assert.equal(await page.textContent('#given-up'), '1');
await page.goto(`${base}/ui/campaigns/${retried}?fate=given_up`);
assert.match(await page.textContent('#bucket'), new RegExp(flaky));
await page.click('#requeue');
await watch('the re-queued token delivered', `/ui/campaigns/${retried}`,
  async () => (await page.textContent('#status')) === 'given_up' && (await page.textContent('#delivered')) === '1002');
assert.equal(await page.locator('#jobs tr').count(), 1 + 3, 'two jobs and the one re-queued');
step('a given-up token re-queued from its campaign and delivered');

// The overview: the campaign's sends in the chart and against the shop's fleet rate, the
// worker with its heartbeat.
await page.goto(`${base}/ui`);
assert.ok(Number(await page.textContent('#peak')) >= 1000, 'a minute of the campaign in the chart');
assert.match(await page.textContent('#projects'), /shop\s*\d+\s*\d+\s*600000/);
assert.match(await page.textContent('#workers'), /\d+ s ago/);
await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
step('the overview: sends per minute and per project, the worker and its heartbeat');

// A read-only key sees the page but no cancel button, and its post is refused.
const reader = await browser.newContext();
const readPage = await reader.newPage();
await readPage.goto(`${base}/ui/login`);
await readPage.fill('#key', readKey);
await readPage.click('button[type=submit]');
const otherLater = (await (await api('POST', '/jobs', { tokens: ['ui-later-2'], send_at: later })).json()).job_ids[0];
await readPage.goto(`${base}/ui/jobs/${otherLater}`);
assert.equal(await readPage.$('#cancel'), null);
await readPage.goto(`${base}/ui/campaigns/${retried}`);
assert.equal(await readPage.textContent('#given-up'), '1');
assert.equal(await readPage.$('#requeue'), null);
step('a read key: no cancel or re-queue button');

// On a phone's width: one column, nothing wider than the screen.
await page.setViewportSize({ width: 390, height: 800 });
await page.goto(`${base}/ui/campaigns/${campaign}`);
assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
assert.ok(await page.isVisible('#delivered'), 'the counts stay on a phone');
await page.screenshot({ path: `${shots}/campaign-phone.png`, fullPage: true });
await page.setViewportSize({ width: 1000, height: 700 });
step('a campaign on a phone: no sideways scrolling');

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
