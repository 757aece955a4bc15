// The official @azure/communication-call-automation 1.6.0 SDK against a running telgw: its
// requests (paths, api-version 2026-03-12, HMAC signature, bodies with fields telgw ignores)
// reach the Call Automation API, and telgw's ACS error bodies come back as RestErrors.
// The answer/hang-up flow with a real incoming call needs the IncomingCall webhook (events).
// Env: TELGW_CONNECTION_STRING (required).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallAutomationClient } from '@azure/communication-call-automation';

const cs = process.env.TELGW_CONNECTION_STRING;
if (!cs) throw new Error('TELGW_CONNECTION_STRING is not set');
const client = new CallAutomationClient(cs, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });

async function status(p) {
  try {
    await p;
  } catch (e) {
    return { code: e.statusCode, error: e.code, message: e.message };
  }
  return { code: 0 };
}

test('answer, reject and redirect refuse a forged incomingCallContext (400)', async () => {
  const forged = 'eyJzIjoieCIsIm4iOiJsb2NhbCIsImUiOjk5OTk5OTk5OTl9.AAAA';
  // The 400 is the context's (not the SDK's Repeatability-* headers or body).
  const forgedContext = (r) => r.code === 400 && /incomingCallContext/.test(r.message);
  let r = await status(client.answerCall(forged, 'http://127.0.0.1:9/callbacks', { operationContext: 'op' }));
  assert.ok(forgedContext(r), JSON.stringify(r));
  r = await status(client.rejectCall(forged, { callRejectReason: 'busy' }));
  assert.ok(forgedContext(r), JSON.stringify(r));
  r = await status(client.redirectCall(forged, { targetParticipant: { phoneNumber: '+12025550142' } }));
  assert.ok(forgedContext(r), JSON.stringify(r));
});

test('operations on an unknown call connection are 404', async () => {
  const conn = client.getCallConnection('00000000-0000-4000-8000-000000000000');
  let r = await status(conn.getCallConnectionProperties());
  assert.equal(r.code, 404, JSON.stringify(r));
  r = await status(conn.hangUp(false));
  assert.equal(r.code, 404, JSON.stringify(r));
  r = await status(conn.hangUp(true)); // terminate
  assert.equal(r.code, 404, JSON.stringify(r));
});

test('createCall with a caller id the resource does not own is 403', async () => {
  const invite = { targetParticipant: { phoneNumber: '+12025550142' }, sourceCallIdNumber: { phoneNumber: '+12125550199' } };
  const r = await status(client.createCall(invite, 'http://127.0.0.1:9/callbacks'));
  assert.equal(r.code, 403, JSON.stringify(r));
});
