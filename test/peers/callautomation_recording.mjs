// A bot written with the official @azure/communication-call-automation 1.6.0 SDK, run by
// test/e2e TestBotRecordingSDK against a real telgw serve with SIPp as the caller streaming a
// tone (uac_inband.xml). It answers and records the call with callRecording: start (mixed,
// wav, audio, state callbacks to a URL of its own) → RecordingStateChanged active; pause →
// inactive and getState inactive; resume → active; stop. Unmixed mp3 → 400; a second start
// → 409. RecordingFileStatusUpdated reaches its Event Grid webhook; downloadToPath fetches the
// WAV and the metadata, downloadStreaming a byte range; delete, then a download fails. Then a
// second recording, mixed mp3: stopped, its file event says Mp3 and downloadToPath fetches it.
// It prints APP_URL=… once listening, RESULT={…} (the WAV's and the MP3's paths and the times
// they recorded) and RECORDING OK; exits non-zero on the first failed assertion.
//
// SDK 1.6.0 refuses recording locations that are not https on *.asm.skype.com (its
// recordingUrlValidator), so telgw is configured with media.recording.locationURL
// https://telgw-recordings.asm.skype.com and this app's httpClient sends requests for that
// host to telgw's endpoint (what a DNS entry and a TLS front would do in production;
// docs/MEDIA.md).
// Env: TELGW_CONNECTION_STRING, TELGW_ENDPOINT, CALLER_NUMBER, OUT_DIR.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { createDefaultHttpClient } from '@azure/core-rest-pipeline';
import { CallAutomationClient, parseCallAutomationEvent } from '@azure/communication-call-automation';
import { queue } from './botqueue.mjs';

const cs = process.env.TELGW_CONNECTION_STRING;
const ENDPOINT = new URL(process.env.TELGW_ENDPOINT);
const OUT = process.env.OUT_DIR;
if (!cs || !process.env.CALLER_NUMBER || !OUT) throw new Error('TELGW_CONNECTION_STRING, TELGW_ENDPOINT, CALLER_NUMBER and OUT_DIR are required');

const inner = createDefaultHttpClient();
const httpClient = {
  sendRequest(req) {
    const u = new URL(req.url);
    if (u.hostname.endsWith('.asm.skype.com')) {
      req.url = ENDPOINT.origin + u.pathname + u.search;
      req.allowInsecureConnection = ENDPOINT.protocol === 'http:';
    }
    return inner.sendRequest(req);
  },
};
const client = new CallAutomationClient(cs, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 }, httpClient });

const incoming = queue('IncomingCall');
const files = queue('RecordingFileStatusUpdated');
const events = queue('callback');

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (req.url === '/events') {
      const evs = JSON.parse(body || '[]');
      const ev = evs[0];
      if (ev?.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ validationResponse: ev.data.validationCode }));
        return;
      }
      for (const e of evs) {
        if (e.eventType === 'Microsoft.Communication.IncomingCall') incoming.push(e);
        if (e.eventType === 'Microsoft.Communication.RecordingFileStatusUpdated') files.push(e);
      }
    } else if (req.url === '/callbacks' || req.url === '/recording') {
      const ev = parseCallAutomationEvent(body);
      console.log('callback', req.url, ev.kind, JSON.stringify(ev));
      events.push({ ...ev, url: req.url });
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
    return e.statusCode ?? e.status ?? -1;
  }
  return 0;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stateIs = (id, st) => (e) => e.kind === 'RecordingStateChanged' && e.recordingId === id && e.state === st;

try {
  const ic = await incoming.next(() => true, 30000);
  const { callConnectionProperties } = await client.answerCall(ic.data.incomingCallContext, `${APP}/callbacks`);
  const serverCallId = callConnectionProperties.serverCallId;
  await events.next((e) => e.kind === 'CallConnected');
  const rec = client.getCallRecording();
  const callLocator = { id: serverCallId, kind: 'serverCallLocator' };

  assert.equal(await status(rec.start({ callLocator, recordingFormat: 'mp3', recordingChannel: 'unmixed', recordingContent: 'audio' })), 400,
    'mp3 is mixed only');
  const started = await rec.start({ callLocator, recordingStateCallbackEndpointUrl: `${APP}/recording`,
    recordingContent: 'audio', recordingChannel: 'mixed', recordingFormat: 'wav' });
  let t = Date.now();
  assert.equal(started.recordingState, 'active', JSON.stringify(started));
  const id = started.recordingId;
  assert.equal(await status(rec.start({ callLocator })), 409, 'a second recording of the call');
  const active = await events.next(stateIs(id, 'active'));
  assert.equal(active.url, '/recording', 'RecordingStateChanged goes to recordingStateCallbackUri');
  assert.ok(active.startDateTime, JSON.stringify(active));

  await sleep(1500); // the caller talks
  await rec.pause(id);
  let recorded = Date.now() - t;
  await events.next(stateIs(id, 'inactive'));
  assert.equal((await rec.getState(id)).recordingState, 'inactive');
  await sleep(1000); // not recorded
  await rec.resume(id);
  t = Date.now();
  await events.next(stateIs(id, 'active'));
  assert.equal((await rec.getState(id)).recordingState, 'active');
  await sleep(1500);
  await rec.stop(id);
  recorded += Date.now() - t;
  await events.next(stateIs(id, 'inactive'));

  const ev = await files.next((e) => e.data.recordingFormatType === 'Wav', 30000);
  const d = ev.data;
  const chunk = d.recordingStorageInfo.recordingChunks[0];
  assert.equal(d.recordingChannelType, 'Mixed', JSON.stringify(d));
  assert.equal(d.recordingFormatType, 'Wav', JSON.stringify(d));
  assert.equal(d.recordingContentType, 'Audio', JSON.stringify(d));
  assert.equal(chunk.endReason, 'SessionEnded', JSON.stringify(d));
  assert.equal(d.sessionEndReason, 'RecordingStopped', JSON.stringify(d));
  assert.ok(chunk.contentLocation.startsWith('https://telgw-recordings.asm.skype.com/v1/objects/'), JSON.stringify(chunk));

  const wav = path.join(OUT, 'recording.wav');
  await rec.downloadToPath(chunk.contentLocation, wav);
  const meta = path.join(OUT, 'metadata.json');
  await rec.downloadToPath(chunk.metadataLocation, meta);
  const md = JSON.parse(fs.readFileSync(meta, 'utf8'));
  assert.equal(md.chunkDocumentId, chunk.documentId, JSON.stringify(md));
  assert.equal(md.participants[0].participantId, `4:${process.env.CALLER_NUMBER}`, JSON.stringify(md));
  assert.equal(md.pauseResumeIntervals.length, 1, JSON.stringify(md));

  const stream = await rec.downloadStreaming(chunk.contentLocation, { offset: 8, length: 4 });
  const parts = [];
  for await (const c of stream) parts.push(c);
  assert.equal(Buffer.concat(parts).toString('latin1'), 'WAVE', 'a byte range of the file');

  await rec.delete(chunk.deleteLocation);
  let gone;
  try {
    await rec.downloadToPath(chunk.contentLocation, path.join(OUT, 'again.wav'));
  } catch (e) {
    gone = e.status;
  }
  assert.equal(gone, 404, 'download after delete');

  // MP3: recorded as WAV, encoded by lame once stopped, announced and downloaded as mp3.
  const m = await rec.start({ callLocator, recordingContent: 'audio', recordingChannel: 'mixed', recordingFormat: 'mp3' });
  t = Date.now();
  await sleep(1500);
  await rec.stop(m.recordingId);
  const mp3Recorded = Date.now() - t;
  const mev = await files.next((e) => e.data.recordingFormatType === 'Mp3', 30000);
  const mchunk = mev.data.recordingStorageInfo.recordingChunks[0];
  assert.equal(mchunk.endReason, 'SessionEnded', JSON.stringify(mev.data));
  const mp3 = path.join(OUT, 'recording.mp3');
  await rec.downloadToPath(mchunk.contentLocation, mp3);
  await rec.delete(mchunk.deleteLocation);

  console.log(`RESULT=${JSON.stringify({ wav, recordedMs: recorded, durationMs: d.recordingDurationMs,
    mp3, mp3RecordedMs: mp3Recorded, mp3DurationMs: mev.data.recordingDurationMs })}`);
  console.log('RECORDING OK');
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  server.close();
  server.closeAllConnections?.();
}
