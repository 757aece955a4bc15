// The official @azure/communication-network-traversal SDK against a running telgw.
// Env: TELGW_CONNECTION_STRING; TELGW_RELAY_OUT (file to write one relay configuration to, for
// the Go side to allocate with).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { CommunicationRelayClient } from '@azure/communication-network-traversal';
import { CommunicationIdentityClient } from '@azure/communication-identity';

const cs = process.env.TELGW_CONNECTION_STRING;
if (!cs) throw new Error('TELGW_CONNECTION_STRING is not set');
const opts = { allowInsecureConnection: true, retryOptions: { maxRetryCount: 0, maxRetries: 0 } };
const relay = new CommunicationRelayClient(cs, opts);
const ids = new CommunicationIdentityClient(cs, opts);

test('relay configuration for a user', async () => {
  const user = await ids.createUser();
  const cfg = await relay.getRelayConfiguration({ id: user.communicationUserId });
  assert.equal(cfg.iceServers.length, 2);
  assert.deepEqual(cfg.iceServers.map((s) => s.routeType).sort(), ['any', 'nearest']);
  const s = cfg.iceServers[0];
  assert.ok(s.urls.some((u) => u.startsWith('turn:') && u.endsWith('transport=udp')));
  assert.ok(s.urls.some((u) => u.startsWith('turn:') && u.endsWith('transport=tcp')));
  assert.ok(s.urls.some((u) => u.startsWith('stun:')));
  assert.match(s.username, /^\d+:8:acs:/);
  // telgw caps credentials at turn.credentialTTL (default 1 h; ACS's own default is 48 h): a
  // leaked TURN credential is a relay for an attacker until it expires.
  const hours = (cfg.expiresOn.getTime() - Date.now()) / 3600000;
  assert.ok(hours > 0.95 && hours <= 1.01, `default ttl ${hours} h`);
  if (process.env.TELGW_RELAY_OUT) writeFileSync(process.env.TELGW_RELAY_OUT, JSON.stringify(cfg));
});

test('route type and ttl', async () => {
  const cfg = await relay.getRelayConfiguration({ routeType: 'nearest', ttl: 3600 });
  assert.equal(cfg.iceServers.length, 1);
  assert.equal(cfg.iceServers[0].routeType, 'nearest');
  const mins = (cfg.expiresOn.getTime() - Date.now()) / 60000;
  assert.ok(mins > 59 && mins <= 61, `ttl ${mins} min`);
});

test('unknown identity is a 404', async () => {
  await assert.rejects(relay.getRelayConfiguration({ id: '8:acs:nobody' }), (e) => e.statusCode === 404);
});
