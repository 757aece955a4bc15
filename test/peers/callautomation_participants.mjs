// A bot written with the official @azure/communication-call-automation 1.6.0 SDK, run by
// test/e2e TestBotParticipantsSDK against a real telgw serve with SIPp as the carrier: an
// Event Grid endpoint (/events, answering the validation handshake) and a callback endpoint
// (/callbacks, events read with the SDK's parseCallAutomationEvent). It takes two calls:
//   1. answer; add a participant who rings and cancel it; add one who answers; list, get,
//      mute the caller; remove the participant; add a number no route reaches (fails);
//      the caller hangs up.
//   2. answer; transfer to a number no route reaches (fails, the call stays); transfer to
//      the participant's number (accepted; the app's connection ends, then 404).
// It prints APP_URL=… once listening, CALL1 OK and CALL2 OK as the flows pass, and exits
// non-zero on the first failed assertion.
// Env: TELGW_CONNECTION_STRING, CALLER_NUMBER, FAR_NUMBER (answers), RING_NUMBER (rings).
import http from 'node:http';
import assert from 'node:assert/strict';
import { CallAutomationClient, parseCallAutomationEvent } from '@azure/communication-call-automation';
import { queue } from './botqueue.mjs';

const cs = process.env.TELGW_CONNECTION_STRING;
const CALLER = process.env.CALLER_NUMBER;
const FAR = process.env.FAR_NUMBER;
const RING = process.env.RING_NUMBER;
const UNROUTED = '+442071838750';
if (!cs || !CALLER || !FAR || !RING) throw new Error('TELGW_CONNECTION_STRING, CALLER_NUMBER, FAR_NUMBER and RING_NUMBER are required');
const client = new CallAutomationClient(cs, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });

const incoming = queue('IncomingCall');
const events = queue('callback');

const server = http.createServer((req, res) => {
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const phoneOf = (id) => id?.phoneNumber ?? id?.rawId;

async function status(p) {
  try {
    await p;
  } catch (e) {
    return e.statusCode;
  }
  return 0;
}

async function answer() {
  const ic = await incoming.next(() => true, 30000);
  const { callConnection, callConnectionProperties } = await client.answerCall(ic.data.incomingCallContext, `${APP}/callbacks`, { operationContext: 'sdk' });
  const id = callConnectionProperties.callConnectionId;
  await events.next((e) => e.kind === 'CallConnected' && e.callConnectionId === id);
  return { callConnection, id };
}

try {
  // 1. Participants.
  {
    const { callConnection, id } = await answer();
    const ringing = await callConnection.addParticipant({ targetParticipant: { phoneNumber: RING } }, { operationContext: 'ring' });
    assert.ok(ringing.invitationId, JSON.stringify(ringing));
    await sleep(500);
    const cancelled = await callConnection.cancelAddParticipantOperation(ringing.invitationId, { operationContext: 'cancel' });
    assert.equal(cancelled.invitationId, ringing.invitationId);
    const cs = await events.next((e) => e.kind === 'CancelAddParticipantSucceeded');
    assert.equal(cs.invitationId, ringing.invitationId);
    assert.equal(cs.operationContext, 'cancel');

    const added = await callConnection.addParticipant({ targetParticipant: { phoneNumber: FAR } }, { operationContext: 'add', invitationTimeoutInSeconds: 30 });
    assert.ok(added.invitationId);
    assert.equal(added.operationContext, 'add');
    const ok = await events.next((e) => e.kind === 'AddParticipantSucceeded');
    assert.equal(phoneOf(ok.participant), FAR, JSON.stringify(ok));
    assert.equal(ok.operationContext, 'add');
    assert.equal(ok.callConnectionId, id);
    assert.ok(ok.serverCallId && ok.correlationId && ok.resultInformation?.code === 200, JSON.stringify(ok));
    const up = await events.next((e) => e.kind === 'ParticipantsUpdated');
    assert.equal(up.participants.length, 2, JSON.stringify(up));
    assert.equal(typeof up.sequenceNumber, 'number');

    const list = await callConnection.listParticipants();
    assert.deepEqual(list.values.map((p) => phoneOf(p.identifier)).sort(), [CALLER, FAR].sort(), JSON.stringify(list.values));
    const one = await callConnection.getParticipant({ phoneNumber: FAR });
    assert.equal(phoneOf(one.identifier), FAR);
    assert.equal(one.isMuted, false);
    await sleep(1500); // caller and participant talk (telgw relays their RTP; its metrics show it)

    await callConnection.muteParticipant({ phoneNumber: CALLER }, { operationContext: 'mute' });
    const muted = await events.next((e) => e.kind === 'ParticipantsUpdated');
    assert.ok(muted.participants.some((p) => phoneOf(p.identifier) === CALLER && p.isMuted), JSON.stringify(muted));
    assert.ok(muted.sequenceNumber > up.sequenceNumber);
    assert.equal((await callConnection.getParticipant({ phoneNumber: CALLER })).isMuted, true);
    await sleep(1000); // the muted caller's audio is dropped meanwhile (telgw's metrics show it)
    console.log('MUTED');

    const rm = await callConnection.removeParticipant({ phoneNumber: FAR }, { operationContext: 'rm' });
    assert.equal(rm.operationContext, 'rm');
    const removed = await events.next((e) => e.kind === 'RemoveParticipantSucceeded');
    assert.equal(phoneOf(removed.participant), FAR);
    assert.equal((await callConnection.listParticipants()).values.length, 1);

    await callConnection.addParticipant({ targetParticipant: { phoneNumber: UNROUTED } }, { operationContext: 'uk' });
    const failed = await events.next((e) => e.kind === 'AddParticipantFailed');
    assert.equal(phoneOf(failed.participant), UNROUTED);
    assert.equal(failed.resultInformation.code, 404, JSON.stringify(failed));
    assert.match(failed.resultInformation.message, /route/);

    // A communication user with no registered device: AddParticipantFailed (480); a caller id
    // the resource does not own is 403.
    await callConnection.addParticipant({ targetParticipant: { communicationUserId: '8:acs:r_u' } }, { operationContext: 'nodev' });
    const nodev = await events.next((e) => e.kind === 'AddParticipantFailed' && e.operationContext === 'nodev');
    assert.equal(nodev.resultInformation.code, 480, JSON.stringify(nodev));
    assert.equal(await status(callConnection.addParticipant({ targetParticipant: { phoneNumber: FAR }, sourceCallIdNumber: { phoneNumber: '+12125550100' } })), 403);
    await events.next((e) => e.kind === 'CallDisconnected' && e.callConnectionId === id, 30000);
    console.log('CALL1 OK');
  }

  // 2. Transfer.
  {
    const { callConnection, id } = await answer();
    const t0 = await callConnection.transferCallToParticipant({ phoneNumber: UNROUTED }, { operationContext: 't0' });
    assert.equal(t0.operationContext, 't0');
    const tf = await events.next((e) => e.kind === 'CallTransferFailed');
    assert.equal(tf.operationContext, 't0');
    assert.equal(tf.resultInformation.code, 404);
    assert.equal((await callConnection.getCallConnectionProperties()).callConnectionState, 'connected');

    await callConnection.transferCallToParticipant({ phoneNumber: FAR }, { operationContext: 't1' });
    const ta = await events.next((e) => e.kind === 'CallTransferAccepted');
    assert.equal(ta.operationContext, 't1');
    assert.equal(ta.callConnectionId, id);
    assert.equal(ta.transferTarget?.rawId, `4:${FAR}`, JSON.stringify(ta));
    assert.equal(ta.transferee?.rawId, `4:${CALLER}`, JSON.stringify(ta));
    await events.next((e) => e.kind === 'CallDisconnected' && e.callConnectionId === id);
    assert.equal(await status(callConnection.getCallConnectionProperties()), 404);
    assert.equal(await status(callConnection.listParticipants()), 404);
    console.log('CALL2 OK');
  }
} catch (e) {
  console.error('FAIL', e);
  process.exitCode = 1;
} finally {
  server.close();
}
