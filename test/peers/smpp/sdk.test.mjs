// The official @azure/communication-sms SDK (1.1.0, api-version 2021-03-07) against a running
// telgw whose carrier is the npm smpp SMSC. Env: TELGW_CONNECTION_STRING, SMS_FROM, SMS_TO.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmsClient } from '@azure/communication-sms';

const cs = process.env.TELGW_CONNECTION_STRING;
if (!cs) throw new Error('TELGW_CONNECTION_STRING is not set');
const from = process.env.SMS_FROM;
const to = process.env.SMS_TO;
const client = new SmsClient(cs, { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } });

test('send to one recipient with a delivery report and tag', async () => {
  const [r] = await client.send({ from, to: [to], message: 'Hello from the ACS SDK €' }, { enableDeliveryReport: true, tag: 'sdk' });
  assert.equal(r.to, to);
  assert.equal(r.successful, true, r.errorMessage);
  assert.equal(r.httpStatusCode, 202);
  assert.ok(r.messageId);
});

test('per-recipient results: an invalid number fails alone', async () => {
  const rs = await client.send({ from, to: [to, 'not-a-number'], message: 'two' });
  assert.equal(rs.length, 2);
  assert.equal(rs[0].successful, true);
  assert.equal(rs[1].successful, false);
  assert.equal(rs[1].httpStatusCode, 400);
  assert.match(rs[1].errorMessage, /not E\.164/);
});

test('the SDK makes every send repeatable: each gets accepted once', async () => {
  const rs = await client.send({ from, to: [to, to], message: 'repeatable' });
  assert.deepEqual(rs.map((r) => r.repeatabilityResult), ['accepted', 'accepted']);
  assert.notEqual(rs[0].messageId, rs[1].messageId);
});

test('bad sender is a RestError 400', async () => {
  await assert.rejects(client.send({ from: 'nobody', to: [to], message: 'x' }), (e) => e.statusCode === 400);
});
