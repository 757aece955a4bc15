// A bot written with the official @azure/communication-call-automation 1.6.0 SDK, run by
// test/e2e TestBotMediaSDK against a real telgw serve with SIPp as the carrier caller
// (uac_dtmf.xml: it presses 1, 2, # as RFC 4733 events a few seconds after the answer). It
// answers; startRecognizing (DTMF, up to 5 tones, # stops) behind a file prompt it serves
// itself → RecognizeCompleted [one, two]; play a file to the caller and text to all →
// PlayStarted/PlayCompleted; sendDtmfTones → SendDtmfTonesCompleted; a looped play canceled by
// cancelAllOperations → PlayCanceled; startTranscription (not served) → 400. Prints APP_URL=… once
// listening and MEDIA OK when done; exits non-zero on the first failed assertion.
// Env: TELGW_CONNECTION_STRING, CALLER_NUMBER.
import http from 'node:http';
import assert from 'node:assert/strict';
import { CallAutomationClient, parseCallAutomationEvent } from '@azure/communication-call-automation';
import { queue } from './botqueue.mjs';

const cs = process.env.TELGW_CONNECTION_STRING;
const CALLER = process.env.CALLER_NUMBER;
if (!cs || !CALLER) throw new Error('TELGW_CONNECTION_STRING and CALLER_NUMBER are required');
const client = new CallAutomationClient(cs, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });

// A 1 s 440 Hz tone, PCM16 8 kHz mono WAV.
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
const prompt = wav(1);

const incoming = queue('IncomingCall');
const events = queue('callback');

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/prompt.wav') {
    res.setHeader('Content-Type', 'audio/wav');
    res.end(prompt);
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
      events.push(ev);
    }
    res.end();
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const APP = `http://127.0.0.1:${server.address().port}`;
console.log(`APP_URL=${APP}`);

async function status(p) {
  try {
    await p;
  } catch (e) {
    return e.statusCode;
  }
  return 0;
}

const op = (kind, ctx) => (e) => e.kind === kind && e.operationContext === ctx;

try {
  const ic = await incoming.next(() => true, 30000);
  const { callConnection, callConnectionProperties } = await client.answerCall(ic.data.incomingCallContext, `${APP}/callbacks`);
  const id = callConnectionProperties.callConnectionId;
  await events.next((e) => e.kind === 'CallConnected' && e.callConnectionId === id);
  const media = callConnection.getCallMedia();
  const caller = { phoneNumber: CALLER };
  const file = { kind: 'fileSource', url: `${APP}/prompt.wav` };

  await media.startRecognizing(caller, 5, {
    kind: 'callMediaRecognizeDtmfOptions',
    playPrompt: file,
    stopDtmfTones: ['pound'],
    interToneTimeoutInSeconds: 5,
    initialSilenceTimeoutInSeconds: 15,
    interruptPrompt: true,
    operationContext: 'code',
  });
  const rc = await events.next(op('RecognizeCompleted', 'code'));
  assert.equal(rc.recognitionType, 'dtmf', JSON.stringify(rc));
  assert.deepEqual(rc.dtmfResult?.tones, ['one', 'two'], JSON.stringify(rc));
  assert.equal(rc.resultInformation.subCode, 8514, JSON.stringify(rc));

  await media.play([file], [caller], { operationContext: 'file' });
  await events.next(op('PlayStarted', 'file'));
  await events.next(op('PlayCompleted', 'file'));
  await media.playToAll([{ kind: 'textSource', text: 'Thank you.', voiceName: 'en-US-JennyNeural' }], { operationContext: 'text' });
  const pc = await events.next(op('PlayCompleted', 'text'));
  assert.equal(pc.resultInformation.code, 200, JSON.stringify(pc));

  const sent = await media.sendDtmfTones(['one', 'pound'], caller, { operationContext: 'send' });
  assert.equal(sent.operationContext, 'send');
  await events.next(op('SendDtmfTonesCompleted', 'send'));

  await media.playToAll([file], { loop: true, operationContext: 'loop' });
  await events.next(op('PlayStarted', 'loop'));
  await media.cancelAllOperations();
  await events.next(op('PlayCanceled', 'loop'));

  assert.equal(await status(media.startTranscription()), 400);
  console.log('MEDIA OK');
  await events.next((e) => e.kind === 'CallDisconnected' && e.callConnectionId === id, 30000);
} catch (e) {
  console.error('FAIL', e);
  process.exitCode = 1;
} finally {
  server.close();
}
