// Drives telgw's operator console (/console/) in Debian's headless Chromium through
// playwright-core, as an operator would, and prints what it saw as one JSON line on stdout.
//
//   1. buys a number in area code CONSOLE_AREA with the official ACS phone numbers SDK;
//   2. signs in with the access key (a wrong key first: it must be refused), signs out, and
//      signs in again with the single-use link (CONSOLE_LINK), which must then be spent;
//   3. finds the number on the numbers page and sets its route to sip:NUMBER@CONSOLE_PBX;
//   4. sends an SMS from the number to CONSOLE_REJECTED (the SMSC refuses it) with the ACS
//      SMS SDK and waits until the messages page shows it failed, with the carrier's error,
//      and the message's timeline shows the failure; its delivery report's webhook, refused by
//      the subscriber, shows on the webhooks page, and "Retry now" queues it.
//
// Environment: CONSOLE_URL (telgw endpoint, required), CONSOLE_CS (connection string),
// CONSOLE_KEY (access key, base64), CONSOLE_LINK, CONSOLE_AREA, CONSOLE_PBX (host:port),
// CONSOLE_REJECTED (E.164), CONSOLE_WEBHOOK (set when a failing subscriber is configured), CONSOLE_TIMEOUT_MS (per wait, default 20000), CHROMIUM.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../peers/package.json', import.meta.url));
const { chromium } = require('playwright-core');
const { PhoneNumbersClient } = require('@azure/communication-phone-numbers');
const { SmsClient } = require('@azure/communication-sms');

const env = process.env;
const base = env.CONSOLE_URL;
const timeout = Number(env.CONSOLE_TIMEOUT_MS || 20000);
const result = { number: '', route: '', steps: [], messageId: '', messageError: '', timeline: '', delivery: '', error: '' };
const step = (s) => result.steps.push(s);

async function buyNumber() {
  const opts = { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } };
  const client = new PhoneNumbersClient(env.CONSOLE_CS, opts);
  const search = await client.beginSearchAvailablePhoneNumbers({ countryCode: 'US', phoneNumberType: 'geographic',
    assignmentType: 'application', capabilities: { calling: 'inbound+outbound', sms: 'inbound+outbound' },
    areaCode: env.CONSOLE_AREA, quantity: 1 }, { updateIntervalInMs: 50 });
  const found = await search.pollUntilDone();
  const purchase = await client.beginPurchasePhoneNumbers(found.searchId, { updateIntervalInMs: 50 });
  await purchase.pollUntilDone();
  return found.phoneNumbers[0];
}

const dir = mkdtempSync(join(tmpdir(), 'telgw-chromium-'));
let ctx;
try {
  result.number = await buyNumber();
  step('bought ' + result.number + ' with the SDK');

  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ctx.setDefaultTimeout(timeout);
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('pageerror', (e) => step('pageerror: ' + e.message));

  // Nothing is public: the numbers page sends us to sign-in, which refuses a wrong key.
  await page.goto(base + 'console/numbers');
  if (!page.url().includes('/console/signin')) throw new Error('unauthenticated numbers page did not redirect: ' + page.url());
  await page.fill('#key', 'bm90LXRoZS1rZXk=');
  await page.click('#signin');
  await page.waitForSelector('#error');
  step('wrong key refused: ' + (await page.textContent('#error')).trim());

  // The access key signs in and lands where we were going.
  await page.fill('#key', env.CONSOLE_KEY);
  await Promise.all([page.waitForURL('**/console/numbers'), page.click('#signin')]);
  const cookies = await ctx.cookies();
  const c = cookies.find((k) => k.name === 'telgw_console');
  if (!c || !c.httpOnly || c.sameSite !== 'Strict') throw new Error('session cookie ' + JSON.stringify(c));
  step('signed in with the access key');

  // Sign out, then in with the single-use link (the token rides in the fragment).
  await Promise.all([page.waitForURL('**/console/signin'), page.click('#signout')]);
  await page.goto(base + 'console/');
  if (!page.url().includes('/console/signin')) throw new Error('still signed in after sign-out');
  await Promise.all([page.waitForURL(base + 'console/'), page.goto(env.CONSOLE_LINK)]);
  await page.waitForSelector('#ready');
  step('signed in with the link; overview says ' + (await page.textContent('#ready')).trim());
  const second = await ctx.newPage();
  await ctx.clearCookies();
  await second.goto(env.CONSOLE_LINK);
  await second.waitForSelector('#error');
  step('link refused the second time: ' + (await second.textContent('#error')).trim());
  await second.close();
  await page.goto(base + 'console/signin');
  await page.fill('#key', env.CONSOLE_KEY);
  await Promise.all([page.waitForURL(base + 'console/'), page.click('#signin')]);

  // The SDK's number is on the numbers page (searched by area code), purchased.
  await page.goto(base + 'console/numbers?areaCode=' + env.CONSOLE_AREA + '&status=purchased');
  const row = page.locator(`tr[data-number="${result.number}"]`);
  await row.waitFor();
  step('numbers page row: ' + (await row.innerText()).replace(/\s+/g, ' ').trim());

  // Edit its route in the page.
  result.route = `sip:${result.number}@${env.CONSOLE_PBX}`;
  await row.locator('input[name="route"]').fill(result.route);
  await Promise.all([page.waitForSelector('#notice'), row.locator('button').click()]);
  const saved = await page.locator(`tr[data-number="${result.number}"] input[name="route"]`).inputValue();
  if (saved !== result.route) throw new Error(`route shows ${saved} after saving ${result.route}`);
  step('route saved: ' + (await page.textContent('#notice')).trim());

  // A refused SMS shows its error on the messages page and in its timeline.
  if (env.CONSOLE_REJECTED) {
    const sms = new SmsClient(env.CONSOLE_CS, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });
    const [sent] = await sms.send({ from: result.number, to: [env.CONSOLE_REJECTED], message: 'console test' },
      { enableDeliveryReport: true, tag: 'console' });
    if (!sent.successful) throw new Error('SMS not accepted: ' + JSON.stringify(sent));
    result.messageId = sent.messageId;
    const deadline = Date.now() + timeout;
    let row;
    for (;;) {
      await page.goto(base + 'console/messages?status=failed&to=' + encodeURIComponent(env.CONSOLE_REJECTED));
      row = page.locator(`tr[data-id="${sent.messageId}"]`);
      if (await row.count() > 0) break;
      if (Date.now() > deadline) throw new Error('the failed SMS never showed on the messages page');
      await new Promise((r) => setTimeout(r, 250));
    }
    result.messageError = (await row.locator('td').nth(4).innerText()).trim();
    step('messages page: ' + (await row.innerText()).replace(/\s+/g, ' ').trim());
    await Promise.all([page.waitForSelector('#timeline'), row.locator('a').click()]);
    result.timeline = (await page.innerText('#timeline')).replace(/\s+/g, ' ').trim();

    // Its delivery report goes to a subscriber that answers 503: the webhooks page shows the
    // failing delivery with its error, and "Retry now" queues it at once.
    if (env.CONSOLE_WEBHOOK) {
      let del;
      for (;;) {
        await page.goto(base + 'console/webhooks');
        del = page.locator('#deliveries tbody tr', { hasText: 'SMSDeliveryReportReceived' }).filter({ hasText: 'retryable' });
        if (await del.count() > 0) break;
        if (Date.now() > deadline + timeout) throw new Error('no failing webhook delivery on the webhooks page');
        await new Promise((r) => setTimeout(r, 250));
      }
      del = del.first();
      result.delivery = (await del.innerText()).replace(/\s+/g, ' ').trim();
      await Promise.all([page.waitForSelector('#notice'), del.locator('button').click()]);
      step('webhooks page: ' + result.delivery + ' → ' + (await page.textContent('#notice')).trim());
    }
  }
} catch (e) {
  result.error = String(e && e.stack || e);
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(result.error ? 1 : 0);
