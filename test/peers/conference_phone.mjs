// A conference participant in headless Chromium: telgw's softphone page (/phone, JsSIP)
// registers with a user access token, answers one incoming call, speaks a steady sine at
// PHONE_TONE_HZ (a WebAudio oscillator stands in for the microphone) and measures what it
// hears: every 200 ms the level (dBFS, the loudest analyser bin within ±2 bins) of the remote
// audio at each of PHONE_FREQS, stamped with the wall clock, until the far end hangs up. Prints
// one JSON line: { registered, callStatus, stats (getStats RTP counters), samples: [{t, lv}],
// log, error }.
//
// Environment:
//   PHONE_URL, PHONE_TOKEN  the page (e.g. http://127.0.0.1:8080/phone/) and the token (required)
//   PHONE_TONE_HZ           the frequency this participant speaks at; default 1500
//   PHONE_FREQS             comma-separated frequencies to measure; default 700,1100,1500
//   PHONE_TIMEOUT_MS        limit for each wait and for the call; default 60000
//   CHROMIUM                the browser binary; default /usr/bin/chromium
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const env = process.env;
const url = env.PHONE_URL;
const token = env.PHONE_TOKEN;
const tone = Number(env.PHONE_TONE_HZ || 1500);
const freqs = (env.PHONE_FREQS || '700,1100,1500').split(',').map(Number);
const timeout = Number(env.PHONE_TIMEOUT_MS || 60000);
if (!url || !token) {
  console.error('PHONE_URL and PHONE_TOKEN are required');
  process.exit(2);
}

const result = { registered: false, callStatus: '', stats: null, samples: [], log: [], error: '' };
const dir = mkdtempSync(join(tmpdir(), 'telgw-chromium-'));
let ctx;
let page;
try {
  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required'],
    permissions: ['microphone'],
  });
  page = ctx.pages()[0] || await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') result.log.push('console: ' + m.text()); });
  page.on('pageerror', (e) => result.log.push('pageerror: ' + e.message));
  // The microphone is a sine at `tone` Hz (-10 dBFS); the remote audio goes to an analyser.
  await page.addInitScript((hz) => {
    const ac = new AudioContext({ sampleRate: 48000 });
    window.__confAudio = ac;
    navigator.mediaDevices.getUserMedia = async () => {
      await ac.resume();
      const osc = ac.createOscillator();
      osc.frequency.value = hz;
      const gain = ac.createGain();
      gain.gain.value = 0.3;
      const dest = ac.createMediaStreamDestination();
      osc.connect(gain).connect(dest);
      osc.start();
      return dest.stream;
    };
  }, tone);
  await page.goto(url);
  await page.evaluate(() => window.telgwPhone.ready);
  await page.evaluate((t) => window.telgwPhone.register(t), token);
  await page.waitForFunction(() => window.telgwPhone.state.registered ||
    window.telgwPhone.state.registration.startsWith('registration failed'), null, { timeout });
  result.registered = await page.evaluate(() => window.telgwPhone.state.registered);
  if (!result.registered) throw new Error('not registered: ' + await page.evaluate(() => window.telgwPhone.state.registration));
  console.log('REGISTERED');

  await page.waitForFunction(() => window.telgwPhone.state.callStatus.startsWith('incoming'), null, { timeout });
  await page.evaluate(() => window.telgwPhone.answer());
  await page.waitForFunction(() => ['in call', 'ended', 'failed'].some((s) => window.telgwPhone.state.callStatus.startsWith(s)), null, { timeout });
  if (await page.evaluate(() => window.telgwPhone.state.callStatus) === 'in call') {
    console.log('ANSWERED');
    // The analyser on the received track (it also plays in the page's audio element, which
    // Chromium needs for remote WebRTC audio to reach WebAudio).
    await page.waitForFunction(() => {
      const pc = window.telgwPhone.state.session.connection;
      return pc && pc.getReceivers().some((r) => r.track && r.track.kind === 'audio');
    }, null, { timeout });
    await page.evaluate(() => {
      const ac = window.__confAudio;
      const pc = window.telgwPhone.state.session.connection;
      const track = pc.getReceivers().find((r) => r.track && r.track.kind === 'audio').track;
      const src = ac.createMediaStreamSource(new MediaStream([track]));
      const an = ac.createAnalyser();
      an.fftSize = 8192;
      an.smoothingTimeConstant = 0;
      src.connect(an);
      window.__confAnalyser = an;
    });
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      const s = await page.evaluate((fs) => {
        if (!window.telgwPhone.state.callStatus.startsWith('in call')) return null;
        const an = window.__confAnalyser;
        const bins = new Float32Array(an.frequencyBinCount);
        an.getFloatFrequencyData(bins);
        const hz = window.__confAudio.sampleRate / an.fftSize;
        const lv = {};
        for (const f of fs) {
          const k = Math.round(f / hz);
          let m = -Infinity;
          for (let i = Math.max(0, k - 2); i <= Math.min(bins.length - 1, k + 2); i++) m = Math.max(m, bins[i]);
          lv[f] = Math.round(m * 10) / 10;
        }
        return { t: Date.now(), lv };
      }, freqs);
      if (!s) break;
      result.samples.push(s);
      if (result.samples.length % 5 === 1) result.stats = await page.evaluate(() => window.telgwPhone.stats());
      await page.waitForTimeout(200);
    }
    await page.waitForFunction(() => /^(ended|failed)/.test(window.telgwPhone.state.callStatus), null, { timeout });
  }
  const st = await page.evaluate(() => window.telgwPhone.state);
  result.callStatus = st.callStatus;
  result.log.push(...st.log);
  await page.evaluate(() => window.telgwPhone.unregister());
  await page.waitForTimeout(300);
} catch (e) {
  result.error = String(e && e.message || e);
  if (page) {
    const st = await page.evaluate(() => window.telgwPhone && window.telgwPhone.state).catch(() => null);
    if (st) {
      result.callStatus = st.callStatus;
      result.log.push(...st.log);
    }
  }
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write('RESULT ' + JSON.stringify(result) + '\n');
process.exit(result.error ? 1 : 0);
