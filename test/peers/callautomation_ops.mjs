// An IVR written with the official @azure/communication-call-automation 1.6.0 SDK, run by
// test/e2e TestBotOpsSDK against a real telgw serve with SIPp as the carrier caller
// (uac_ivr.xml: it presses 1 as RFC 4733 events, then says "billing" as μ-law RTP, then takes
// the hold and unhold re-INVITEs). It answers; startContinuousDtmfRecognition →
// ContinuousDtmfRecognitionToneReceived one (sequenceId 1); stopContinuousDtmfRecognition →
// ContinuousDtmfRecognitionStopped; startRecognizing with choices behind an SSML prompt →
// RecognizeCompleted choiceResult billing; hold with music (a WAV it serves), then unhold.
// Prints APP_URL=… once listening and OPS OK when done; exits non-zero on the first failed
// assertion. Env: TELGW_CONNECTION_STRING, CALLER_NUMBER.
import http from 'node:http';
import assert from 'node:assert/strict';
import { CallAutomationClient, parseCallAutomationEvent } from '@azure/communication-call-automation';
import { queue } from './botqueue.mjs';

const cs = process.env.TELGW_CONNECTION_STRING;
const CALLER = process.env.CALLER_NUMBER;
if (!cs || !CALLER) throw new Error('TELGW_CONNECTION_STRING and CALLER_NUMBER are required');
const client = new CallAutomationClient(cs, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });

// Hold music: a 1 s 440 Hz tone, PCM16 8 kHz mono WAV.
function wav(seconds) {
  const n = 8000 * seconds;
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0);
  b.writeUInt32LE(36 + 2 * n, 4);
  b.write('WAVEfmt ', 8);
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(8000, 24);
  b.writeUInt32LE(16000, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36);
  b.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 8000)), 44 + 2 * i);
  return b;
}
const music = wav(1);
let musicFetched = 0;
let holdFailed = null;

const incoming = queue('IncomingCall');
const events = queue('callback');

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/music.wav') {
    musicFetched++;
    res.setHeader('Content-Type', 'audio/wav');
    res.end(music);
    return;
  }
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const evs = JSON.parse(body || '[]');
    if (req.url === '/events') {
      const ev = evs[0];
      if (ev?.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ validationResponse: ev.data.validationCode }));
        return;
      }
      for (const e of evs) if (e.eventType === 'Microsoft.Communication.IncomingCall') incoming.push(e);
    } else if (req.url === '/callbacks') {
      const ev = parseCallAutomationEvent(body);
      console.log('callback', ev.kind, JSON.stringify(ev));
      if (ev.kind === 'HoldFailed') holdFailed = ev;
      events.push(ev);
    }
    res.end();
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const APP = `http://127.0.0.1:${server.address().port}`;
console.log(`APP_URL=${APP}`);

const op = (kind, ctx) => (e) => e.kind === kind && e.operationContext === ctx;

try {
  const ic = await incoming.next(() => true, 30000);
  const { callConnection, callConnectionProperties } = await client.answerCall(ic.data.incomingCallContext, `${APP}/callbacks`);
  const id = callConnectionProperties.callConnectionId;
  await events.next((e) => e.kind === 'CallConnected' && e.callConnectionId === id);
  const media = callConnection.getCallMedia();
  const caller = { phoneNumber: CALLER };

  await media.startContinuousDtmfRecognition(caller, { operationContext: 'keys' });
  const tr = await events.next(op('ContinuousDtmfRecognitionToneReceived', 'keys'), 20000);
  assert.equal(tr.tone, 'one', JSON.stringify(tr));
  assert.equal(tr.sequenceId, 1, JSON.stringify(tr));
  assert.equal(tr.resultInformation.code, 200, JSON.stringify(tr));
  await media.stopContinuousDtmfRecognition(caller, { operationContext: 'stop' });
  await events.next(op('ContinuousDtmfRecognitionStopped', 'stop'));

  await media.startRecognizing(caller, {
    kind: 'callMediaRecognizeChoiceOptions',
    choices: [
      { label: 'billing', phrases: ['billing', 'bills'], tone: 'one' },
      { label: 'sales', phrases: ['sales'], tone: 'two' },
      { label: 'support', phrases: ['support', 'help'] },
    ],
    playPrompt: { kind: 'ssmlSource', ssmlText: '<speak version="1.0" xml:lang="en-US"><voice name="en-US-JennyNeural">Say billing, sales or support.</voice></speak>' },
    interruptPrompt: true,
    initialSilenceTimeoutInSeconds: 15,
    operationContext: 'menu',
  });
  const rc = await events.next(op('RecognizeCompleted', 'menu'), 30000);
  assert.equal(rc.recognitionType, 'choices', JSON.stringify(rc));
  assert.equal(rc.choiceResult?.label, 'billing', JSON.stringify(rc));
  assert.equal(rc.choiceResult?.recognizedPhrase, 'billing', JSON.stringify(rc));
  assert.equal(rc.resultInformation.subCode, 8545, JSON.stringify(rc));

  await media.hold(caller, { playSource: { kind: 'fileSource', url: `${APP}/music.wav` }, operationContext: 'hold' });
  for (let i = 0; i < 100 && musicFetched === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(musicFetched > 0, 'the hold music was never fetched');
  await new Promise((r) => setTimeout(r, 1500));
  await media.unhold(caller, { operationContext: 'unhold' });
  assert.equal(holdFailed, null, JSON.stringify(holdFailed));
  console.log('OPS OK');
  await events.next((e) => e.kind === 'CallDisconnected' && e.callConnectionId === id, 30000);
  assert.equal(holdFailed, null, JSON.stringify(holdFailed));
} catch (e) {
  console.error('FAIL', e);
  process.exitCode = 1;
} finally {
  server.close();
}
