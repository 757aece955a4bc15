// Drives telgw's softphone page (/phone) in Debian's headless Chromium through playwright-core:
// registers with a user access token, places or answers one call, sends DTMF, and prints the
// outcome with getStats() RTP counters as one JSON line on stdout.
//
// Environment:
//   PHONE_URL     the page, e.g. http://127.0.0.1:8080/phone/ (required)
//   PHONE_TOKEN   a user access token with the voip scope (required)
//   PHONE_MODE    "call" (dial PHONE_NUMBER) or "answer" (wait for an incoming call); default call
//   PHONE_NUMBER  what to dial in call mode, e.g. +14155550123
//   PHONE_DTMF    digits to send as RFC 4733 events once the call is up; default none
//   PHONE_TALK_MS how long to keep the call up; default 3000
//   PHONE_HANGUP  "local" (the page hangs up) or "remote" (wait for the far end); default local
//   PHONE_TIMEOUT_MS overall limit for each wait; default 20000
//   PHONE_DEBUG   when set, load the page with ?debug (JsSIP logging) and report every console line
//   CHROMIUM      the browser binary; default /usr/bin/chromium
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../peers/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const env = process.env;
const url = env.PHONE_URL;
const token = env.PHONE_TOKEN;
const mode = env.PHONE_MODE || 'call';
const talkMs = Number(env.PHONE_TALK_MS || 3000);
const timeout = Number(env.PHONE_TIMEOUT_MS || 20000);
if (!url || !token) {
  console.error('PHONE_URL and PHONE_TOKEN are required');
  process.exit(2);
}

const result = { mode, registered: false, registration: '', callStatus: '', cause: '', stats: null, log: [], error: '' };
const dir = mkdtempSync(join(tmpdir(), 'telgw-chromium-'));
let ctx;
let page;
try {
  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'],
    permissions: ['microphone'],
  });
  page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => { if (env.PHONE_DEBUG || m.type() === 'error') result.log.push('console: ' + m.text()); });
  page.on('pageerror', (e) => result.log.push('pageerror: ' + e.message));
  await page.goto(env.PHONE_DEBUG ? url + (url.includes('?') ? '&' : '?') + 'debug' : url);
  await page.evaluate(() => window.telgwPhone.ready);
  await page.evaluate((t) => window.telgwPhone.register(t), token);
  await page.waitForFunction(() => window.telgwPhone.state.registered ||
    window.telgwPhone.state.registration.startsWith('registration failed'), null, { timeout });
  result.registered = await page.evaluate(() => window.telgwPhone.state.registered);
  if (!result.registered) throw new Error('not registered: ' + await page.evaluate(() => window.telgwPhone.state.registration));

  if (mode === 'answer') {
    await page.waitForFunction(() => window.telgwPhone.state.callStatus.startsWith('incoming'), null, { timeout });
    await page.evaluate(() => window.telgwPhone.answer());
  } else {
    await page.evaluate((n) => { window.telgwPhone.call(n); }, env.PHONE_NUMBER || '+15550100');
  }
  await page.waitForFunction(() => ['in call', 'ended', 'failed'].some((s) => window.telgwPhone.state.callStatus.startsWith(s)), null, { timeout });
  if (await page.evaluate(() => window.telgwPhone.state.callStatus) === 'in call') {
    await page.waitForTimeout(Math.min(1000, talkMs));
    if (env.PHONE_DTMF) await page.evaluate((d) => window.telgwPhone.sendDTMF(d), env.PHONE_DTMF);
    await page.waitForTimeout(Math.max(0, talkMs - 1000));
    result.stats = await page.evaluate(() => window.telgwPhone.stats());
    if ((env.PHONE_HANGUP || 'local') === 'local') {
      await page.evaluate(() => window.telgwPhone.hangup());
    }
    await page.waitForFunction(() => /^(ended|failed)/.test(window.telgwPhone.state.callStatus), null, { timeout });
  }
  const st = await page.evaluate(() => window.telgwPhone.state);
  Object.assign(result, { registration: st.registration, callStatus: st.callStatus, cause: st.lastCause });
  result.log.push(...st.log);
  await page.evaluate(() => window.telgwPhone.unregister());
  await page.waitForTimeout(300);
} catch (e) {
  result.error = String(e && e.message || e);
  if (page) {
    const st = await page.evaluate(() => window.telgwPhone && window.telgwPhone.state).catch(() => null);
    if (st) {
      Object.assign(result, { registration: st.registration, callStatus: st.callStatus, cause: st.lastCause });
      result.log.push(...st.log);
    }
  }
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.error ? 1 : 0);
