// The official @azure/communication-identity SDK against a running telgw.
// Env: TELGW_CONNECTION_STRING (required).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommunicationIdentityClient } from '@azure/communication-identity';

const cs = process.env.TELGW_CONNECTION_STRING;
if (!cs) throw new Error('TELGW_CONNECTION_STRING is not set');
const opts = { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } };
const client = new CommunicationIdentityClient(cs, opts);

function claims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}

test('create user, token with default expiry', async () => {
  const user = await client.createUser();
  assert.match(user.communicationUserId, /^8:acs:/);
  const tok = await client.getToken(user, ['voip']);
  const mins = (tok.expiresOn.getTime() - Date.now()) / 60000;
  assert.ok(mins > 1430 && mins <= 1441, `default expiry ${mins} min`);
  const c = claims(tok.token);
  assert.equal(c.acsScope, 'voip');
  assert.equal(c.exp * 1000, tok.expiresOn.getTime());
});

test('create user and token with custom expiry', async () => {
  const { user, token, expiresOn } = await client.createUserAndToken(['chat', 'voip'], { tokenExpiresInMinutes: 60 });
  assert.match(user.communicationUserId, /^8:acs:/);
  const mins = (expiresOn.getTime() - Date.now()) / 60000;
  assert.ok(mins > 58 && mins <= 61, `custom expiry ${mins} min`);
  assert.equal(claims(token).acsScope, 'chat,voip');
});

test('bad scope is a 400', async () => {
  const user = await client.createUser();
  await assert.rejects(client.getToken(user, ['teleport']), (e) => e.statusCode === 400 && /scope/i.test(e.message));
});

test('expiry out of range is a 400', async () => {
  const user = await client.createUser();
  await assert.rejects(client.getToken(user, ['voip'], { tokenExpiresInMinutes: 59 }), (e) => e.statusCode === 400);
  await assert.rejects(client.getToken(user, ['voip'], { tokenExpiresInMinutes: 1441 }), (e) => e.statusCode === 400);
  await assert.rejects(client.createUserAndToken(['voip'], { tokenExpiresInMinutes: 30 }), (e) => e.statusCode === 400);
});

test('revoke and delete', async () => {
  const user = await client.createUser();
  await client.getToken(user, ['voip']);
  await client.revokeTokens(user);
  await client.deleteUser(user);
  await assert.rejects(client.getToken(user, ['voip']), (e) => e.statusCode === 404);
  await assert.rejects(client.revokeTokens(user), (e) => e.statusCode === 404);
});

test('wrong access key is a 401', async () => {
  const bad = cs.replace(/accesskey=.*/, 'accesskey=' + Buffer.alloc(64, 7).toString('base64'));
  const c = new CommunicationIdentityClient(bad, opts);
  await assert.rejects(c.createUser(), (e) => e.statusCode === 401);
});
