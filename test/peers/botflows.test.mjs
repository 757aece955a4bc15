// A Call Automation app written the way ACS apps are: an Event Grid webhook (validation
// handshake, then IncomingCall events) and a callback endpoint whose CloudEvents are read with
// the SDK's parseCallAutomationEvent; every operation goes through the official
// @azure/communication-call-automation 1.6.0 SDK against a running telgw.
//
// The Go test (test/e2e TestBotFlowsSDK) starts telgw and SIPp; this file starts the app on a
// loopback port of its own choosing and writes its URL to APP_URL_FILE, then the Go side routes
// the bot numbers to it and places the carrier's calls.
//
// Env: TELGW_CONNECTION_STRING, APP_URL_FILE, BOT_ANSWER, BOT_REJECT, BOT_REDIRECT (numbers
// whose calls the app answers and hangs up, rejects busy, redirects to REDIRECT_TARGET),
// CREATE_TARGET (a PSTN number the app calls with caller id CALLER_ID).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { CallAutomationClient, parseCallAutomationEvent } from '@azure/communication-call-automation';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const client = new CallAutomationClient(env('TELGW_CONNECTION_STRING'), { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });

// What the app saw: IncomingCall data by called number, callback events by connection id.
const incoming = new Map();
const callbacks = [];
const waiters = [];

function notify() {
  for (const w of waiters.splice(0)) w();
}

async function until(what, f, ms = 30000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; callbacks: ${JSON.stringify(callbacks.map((e) => e.kind))}`);
    await new Promise((r) => {
      waiters.push(r);
      setTimeout(r, 200);
    });
  }
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    let events = [];
    try {
      events = JSON.parse(body);
    } catch {
      res.writeHead(400).end();
      return;
    }
    if (req.url === '/events') {
      for (const ev of events) {
        if (ev.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ validationResponse: ev.data.validationCode }));
          return;
        }
        if (ev.eventType === 'Microsoft.Communication.IncomingCall') {
          incoming.set(ev.data.to.rawId.replace(/^4:/, ''), ev.data);
        }
      }
    } else if (req.url === '/callbacks') {
      assert.match(req.headers.authorization ?? '', /^Bearer /);
      for (const ev of events) callbacks.push(parseCallAutomationEvent([ev]));
    }
    notify();
    res.writeHead(200).end();
  });
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const appURL = `http://127.0.0.1:${server.address().port}`;
writeFileSync(env('APP_URL_FILE'), appURL);
test.after(() => server.close());

const eventOf = (kind, id) => () => callbacks.find((e) => e.kind === kind && e.callConnectionId === id);

test('answer, get and hang up for everyone', async () => {
  const ic = await until('IncomingCall to BOT_ANSWER', () => incoming.get(env('BOT_ANSWER')), 60000);
  assert.ok(ic.serverCallId && ic.correlationId && ic.incomingCallContext, JSON.stringify(ic));
  assert.equal(ic.to.kind, 'phoneNumber');
  const answered = await client.answerCall(ic.incomingCallContext, `${appURL}/callbacks`, { operationContext: 'answer-flow' });
  const id = answered.callConnectionProperties.callConnectionId;
  assert.ok(id);
  const connected = await until('CallConnected', eventOf('CallConnected', id));
  assert.equal(connected.serverCallId, ic.serverCallId);
  assert.equal(connected.correlationId, ic.correlationId);
  assert.equal(connected.operationContext, 'answer-flow');
  const conn = answered.callConnection;
  const props = await conn.getCallConnectionProperties();
  assert.equal(props.callConnectionState, 'connected');
  assert.equal(props.callConnectionId, id);
  assert.equal(props.source?.phoneNumber ?? props.answeredFor?.phoneNumber ?? ic.from.phoneNumber?.value, ic.from.phoneNumber?.value);
  await conn.hangUp(true);
  await until('CallDisconnected', eventOf('CallDisconnected', id));
  await assert.rejects(conn.getCallConnectionProperties(), (e) => e.statusCode === 404);
});

test('reject busy', async () => {
  const ic = await until('IncomingCall to BOT_REJECT', () => incoming.get(env('BOT_REJECT')), 60000);
  await client.rejectCall(ic.incomingCallContext, { callRejectReason: 'busy' });
  // The context is spent: a second decision is refused.
  await assert.rejects(client.rejectCall(ic.incomingCallContext, { callRejectReason: 'busy' }), (e) => e.statusCode >= 400 && e.statusCode < 500);
});

test('redirect to a PSTN number', async () => {
  const ic = await until('IncomingCall to BOT_REDIRECT', () => incoming.get(env('BOT_REDIRECT')), 60000);
  await client.redirectCall(ic.incomingCallContext, { targetParticipant: { phoneNumber: env('REDIRECT_TARGET') } });
});

test('createCall to a PSTN number, then hang up', async () => {
  const placed = await client.createCall(
    { targetParticipant: { phoneNumber: env('CREATE_TARGET') }, sourceCallIdNumber: { phoneNumber: env('CALLER_ID') } },
    `${appURL}/callbacks`,
    { operationContext: 'create-flow' },
  );
  const id = placed.callConnectionProperties.callConnectionId;
  assert.ok(id);
  const connected = await until('CallConnected of the created call', eventOf('CallConnected', id));
  assert.equal(connected.operationContext, 'create-flow');
  await placed.callConnection.hangUp(false);
  await until('CallDisconnected of the created call', eventOf('CallDisconnected', id));
});
