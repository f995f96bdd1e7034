// SPDX-License-Identifier: MIT
// console.test.js — the web console in a real browser (Debian's chromium, headless, through
// puppeteer-core; nothing downloads a browser). Run by tests/integration/test_console_browser.sh,
// which starts the stack and passes, in the environment:
//   OSP_UI_URL      the scheduler's base URL
//   OSP_UI_TOKEN    a token with every scope;  OSP_UI_RO_TOKEN  a read-only token
//   OSP_UI_XSS_JOB  a job whose payload holds <script>alert(1)</script>
//   OSP_UI_DEAD_JOB a dead job;  OSP_UI_RUN_JOB  a running job
//   OSP_UI_SHOTS    the folder for screenshots;  CHROMIUM  the browser's path
// It prints TAP-like lines and exits 0 when every check passed, 1 otherwise; the shell test
// then checks that the clicks changed the ledger.
'use strict';
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');

const env = (n) => {
  const v = process.env[n];
  if (!v) { throw new Error(`${n} is not set`); }
  return v;
};
const URL = env('OSP_UI_URL');
const SHOTS = env('OSP_UI_SHOTS');
let failures = 0;
let n = 0;
const ok = (cond, what) => {
  n++;
  if (cond) { console.log(`ok ${n} - ${what}`); } else { failures++; console.log(`not ok ${n} - ${what}`); }
};

// A page that records console errors, CSP violations, failed requests and dialogs.
async function watchedPage(browser, problems) {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') { problems.push(`console ${m.type()}: ${m.text()}`); }
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) { problems.push(`HTTP ${r.status()}: ${r.url()}`); }
  });
  page.on('dialog', async (d) => { problems.push(`dialog fired: ${d.message()}`); await d.dismiss(); });
  await page.evaluateOnNewDocument(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  return page;
}

async function login(page, token) {
  await page.goto(`${URL}/ui/login`, { waitUntil: 'load' });
  await page.type('#token', token);
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type=submit]')]);
}

async function shoot(page, name) {
  for (const width of [1280, 390]) {
    await page.setViewport({ width, height: 900 });
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewport({ width: 1280, height: 900 });
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: env('CHROMIUM'),
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  try {
    // ---- operate token ----
    const problems = [];
    const page = await watchedPage(browser, problems);
    await login(page, env('OSP_UI_TOKEN'));
    ok(new globalThis.URL(page.url()).pathname === '/ui/', `login leads to the overview (${page.url()})`);
    const pages = [
      ['overview', '/ui/'],
      ['jobs', '/ui/jobs'],
      ['job', `/ui/jobs/${env('OSP_UI_XSS_JOB')}`],
      ['dead', '/ui/dead?kind=noop'],
      ['running-job', `/ui/jobs/${env('OSP_UI_RUN_JOB')}`],
      ['schedules', '/ui/schedules'],
      ['schedule', '/ui/schedules/nightly'],
      ['campaigns', '/ui/campaigns'],
      ['campaign', `/ui/campaigns/${env('OSP_UI_CAMPAIGN')}`],
      ['benchmarks', '/ui/benchmarks'],
      ['benchmark-job', `/ui/jobs/${env('OSP_UI_BENCH_JOB')}`],
      ['drill-job', `/ui/jobs/${env('OSP_UI_DRILL_JOB')}`],
    ];
    for (const [name, p] of pages) {
      const before = problems.length;
      const resp = await page.goto(URL + p, { waitUntil: 'load' });
      ok(resp.status() === 200, `${name}: 200`);
      const csp = resp.headers()['content-security-policy'] || '';
      ok(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), `${name}: strict CSP header`);
      // The stylesheet applied (a CSP or MIME problem would leave the page unstyled).
      const bg = await page.evaluate(() => getComputedStyle(document.querySelector('header')).backgroundColor);
      ok(bg === 'rgb(29, 35, 48)', `${name}: stylesheet applied (${bg})`);
      await shoot(page, name);
      ok(problems.length === before, `${name}: no console error, CSP violation or failed request${problems.length > before ? ': ' + problems.slice(before).join('; ') : ''}`);
    }
    // The overview shows the figures of GET /v1/queues.
    await page.goto(`${URL}/ui/`, { waitUntil: 'load' });
    const shown = await page.evaluate(() => {
      const row = document.querySelector('tr[data-kind=noop]');
      const out = {};
      for (const f of ['pending', 'running', 'delayed', 'dead']) { out[f] = row.querySelector(`[data-f=${f}]`).textContent.trim(); }
      return out;
    });
    const api = await (await fetch(`${URL}/v1/queues`, { headers: { Authorization: `Bearer ${env('OSP_UI_TOKEN')}` } })).json();
    const q = api.queues.find((x) => x.kind === 'noop');
    for (const f of ['pending', 'running', 'delayed', 'dead']) {
      ok(String(q[f]) === shown[f], `overview DOM: noop ${f} ${shown[f]} = API ${q[f]}`);
    }
    // Charts are inline SVG that the browser draws (not blocked, not empty).
    for (const [p, sel] of [[`/ui/jobs/${env('OSP_UI_DRILL_JOB')}`, '#drill-chart'], ['/ui/benchmarks', 'svg.trend'],
      [`/ui/campaigns/${env('OSP_UI_CAMPAIGN')}`, '#steps-graph']]) {
      await page.goto(URL + p, { waitUntil: 'load' });
      const box = await page.$eval(sel, (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; });
      ok(box[0] > 100 && box[1] > 50, `${p}: ${sel} drawn (${box.join('x')})`);
    }
    await page.goto(`${URL}/ui/schedules`, { waitUntil: 'load' });
    const fires = await page.$$eval('tr[data-schedule=nightly] time', (t) => t.map((x) => x.textContent));
    ok(fires.length === 3 && fires.every((f) => / 03:00\+0[12]:00$/.test(f)), `schedules: next fires at 03:00 Berlin (${fires.join(', ')})`);
    // The XSS payload is text: visible, inert.
    await page.goto(`${URL}/ui/jobs/${env('OSP_UI_XSS_JOB')}`, { waitUntil: 'load' });
    const payload = await page.$eval('#payload', (e) => e.textContent);
    ok(payload.includes('<script>alert(1)</script>'), 'the <script> payload shows as text');
    const scripts = await page.$$eval('script', (s) => s.map((x) => x.getAttribute('src')));
    ok(scripts.length === 1 && scripts[0] === '/ui/static/console.js', 'the only script on the page is the console\'s');
    // Cancel the running job by clicking.
    await page.goto(`${URL}/ui/jobs/${env('OSP_UI_RUN_JOB')}`, { waitUntil: 'load' });
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#cancel')]);
    ok(page.url().includes('done=cancel'), `cancel clicked: ${page.url()}`);
    // Retry the dead job by clicking its checkbox and "Retry selected".
    await page.goto(`${URL}/ui/dead?kind=noop`, { waitUntil: 'load' });
    await page.click(`input[name=ids][value="${env('OSP_UI_DEAD_JOB')}"]`);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('#retry-selected')]);
    ok(page.url().includes('done=retried&n=1'), `retry clicked: ${page.url()}`);
    await shoot(page, 'dead-after-retry');
    // Keyboard: the first focusable element of a page is reachable with Tab.
    await page.goto(`${URL}/ui/jobs`, { waitUntil: 'load' });
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.tagName);
    ok(focused === 'A', `keyboard: Tab focuses a link (${focused})`);
    ok(problems.length === 0, `operate session: no problem at all${problems.length ? ': ' + problems.join('; ') : ''}`);

    // ---- read-only token ----
    const roProblems = [];
    const ctx = await browser.createBrowserContext();
    const ro = await watchedPage(ctx, roProblems);
    await login(ro, env('OSP_UI_RO_TOKEN'));
    for (const p of [`/ui/jobs/${env('OSP_UI_XSS_JOB')}`, '/ui/dead?kind=noop', '/ui/', '/ui/schedules',
      '/ui/schedules/nightly', `/ui/campaigns/${env('OSP_UI_CAMPAIGN')}`, '/ui/benchmarks']) {
      await ro.goto(URL + p, { waitUntil: 'load' });
      const actions = await ro.$$eval('main form[method=post] button, main input[type=checkbox]', (b) => b.length);
      ok(actions === 0, `read-only ${p}: no action (${actions})`);
    }
    await shoot(ro, 'read-only-job');
    ok(roProblems.length === 0, `read-only session: no problem${roProblems.length ? ': ' + roProblems.join('; ') : ''}`);
    // Logout.
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('.logout button')]);
    ok(new globalThis.URL(page.url()).pathname === '/ui/login', 'logout leads to the login page');
    await page.goto(`${URL}/ui/`, { waitUntil: 'load' });
    ok(new globalThis.URL(page.url()).pathname === '/ui/login', 'after logout the console asks to log in');
    await shoot(page, 'login');
  } finally {
    await browser.close();
  }
  console.log(`${n - failures} passed, ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.log(`not ok - ${e.stack || e}`);
  process.exit(1);
});
