// The official @azure/communication-phone-numbers 1.5.0 SDK against a running telgw.
// Env: TELGW_CONNECTION_STRING (required). The harness stocks, before starting the SDK:
//   +14252000000…+14252000099  100 geographic numbers (Bellevue area code 425, WA)
//   +12062000000…+12062000009  10 geographic numbers (206), the pool for concurrent searches
//   +18882000000…+18882000019  20 toll-free numbers
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { PhoneNumbersClient } from '@azure/communication-phone-numbers';

const cs = process.env.TELGW_CONNECTION_STRING;
if (!cs) throw new Error('TELGW_CONNECTION_STRING is not set');
const opts = { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } };
const client = new PhoneNumbersClient(cs, opts);
const poll = { updateIntervalInMs: 50 };

async function all(iter) {
  const out = [];
  for await (const x of iter) out.push(x);
  return out;
}

const both = { calling: 'inbound+outbound', sms: 'inbound+outbound' };

test('countries, area codes, localities, offerings', async () => {
  const countries = await all(client.listAvailableCountries());
  assert.deepEqual(countries.map((c) => c.countryCode), ['US']);
  const geo = (await all(client.listAvailableGeographicAreaCodes('US', { administrativeDivision: 'WA' }))).map((a) => a.areaCode);
  assert.ok(geo.includes('425') && geo.includes('206'), `geographic area codes ${geo}`);
  const tf = (await all(client.listAvailableTollFreeAreaCodes('US'))).map((a) => a.areaCode);
  assert.deepEqual(tf, ['888']);
  const locs = await all(client.listAvailableLocalities('US', { administrativeDivision: 'WA' }));
  assert.ok(locs.length >= 1 && locs.every((l) => l.administrativeDivision.abbreviatedName === 'WA'), JSON.stringify(locs));
  const offers = await all(client.listAvailableOfferings('US'));
  const tfOffer = offers.find((o) => o.phoneNumberType === 'tollFree');
  assert.equal(tfOffer.cost.amount, 2);
  assert.equal(tfOffer.cost.currencyCode, 'USD');
  assert.ok(offers.some((o) => o.phoneNumberType === 'geographic' && o.assignmentType === 'person'));
});

test('search, purchase, list, get, update capabilities, release', async () => {
  const search = await client.beginSearchAvailablePhoneNumbers(
    { countryCode: 'US', phoneNumberType: 'geographic', assignmentType: 'application', capabilities: { calling: 'outbound', sms: 'inbound+outbound' }, areaCode: '425', quantity: 3 },
    poll,
  );
  const result = await search.pollUntilDone();
  assert.match(result.searchId, /^[0-9a-f-]{36}$/);
  assert.equal(result.phoneNumbers.length, 3);
  assert.ok(result.phoneNumbers.every((n) => n.startsWith('+1425')));
  assert.equal(result.cost.amount, 1);
  assert.ok(result.searchExpiresBy.getTime() > Date.now() + 10 * 60_000);

  const purchase = await client.beginPurchasePhoneNumbers(result.searchId, poll);
  await purchase.pollUntilDone();

  const got = await client.getPurchasedPhoneNumber(result.phoneNumbers[0]);
  assert.equal(got.phoneNumber, result.phoneNumbers[0]);
  assert.equal(got.id, result.phoneNumbers[0].slice(1));
  assert.equal(got.countryCode, 'US');
  assert.equal(got.assignmentType, 'application');
  assert.deepEqual(got.capabilities, { calling: 'outbound', sms: 'inbound+outbound' });
  assert.ok(got.purchaseDate instanceof Date);

  const owned = (await all(client.listPurchasedPhoneNumbers())).map((n) => n.phoneNumber);
  for (const n of result.phoneNumbers) assert.ok(owned.includes(n), `${n} not listed`);

  // Buying the search again answers the first purchase's operation (it succeeded); nothing
  // more is bought.
  await (await client.beginPurchasePhoneNumbers(result.searchId, poll)).pollUntilDone();

  const upd = await client.beginUpdatePhoneNumberCapabilities(result.phoneNumbers[1], { calling: 'inbound+outbound', sms: 'none' }, poll);
  const updated = await upd.pollUntilDone();
  assert.deepEqual(updated.capabilities, { calling: 'inbound+outbound', sms: 'none' });
  assert.deepEqual((await client.getPurchasedPhoneNumber(result.phoneNumbers[1])).capabilities, { calling: 'inbound+outbound', sms: 'none' });

  const rel = await client.beginReleasePhoneNumber(result.phoneNumbers[2], poll);
  await rel.pollUntilDone();
  await assert.rejects(client.getPurchasedPhoneNumber(result.phoneNumbers[2]), (e) => e.statusCode === 404);
});

test('paging through purchased numbers follows nextLink', async () => {
  const s = await client.beginSearchAvailablePhoneNumbers(
    { countryCode: 'US', phoneNumberType: 'tollFree', assignmentType: 'application', capabilities: both, areaCode: '888', quantity: 5 }, poll);
  const r = await s.pollUntilDone();
  await (await client.beginPurchasePhoneNumbers(r.searchId, poll)).pollUntilDone();
  const pages = [];
  for await (const page of client.listPurchasedPhoneNumbers({ top: 2 }).byPage()) pages.push(page.map((n) => n.phoneNumber));
  assert.ok(pages.length >= 3, `pages ${JSON.stringify(pages)}`);
  assert.ok(pages.slice(0, -1).every((p) => p.length === 2));
  const flat = pages.flat();
  assert.equal(new Set(flat).size, flat.length);
  for (const n of r.phoneNumbers) assert.ok(flat.includes(n));
});

test('concurrent searches over a small area code never share a number', async () => {
  const tries = 16;
  const results = await Promise.allSettled(Array.from({ length: tries }, () =>
    client.beginSearchAvailablePhoneNumbers(
      { countryCode: 'US', phoneNumberType: 'geographic', assignmentType: 'person', capabilities: both, areaCode: '206', quantity: 1 }, poll,
    ).then((p) => p.pollUntilDone())));
  const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value.phoneNumbers[0]);
  assert.equal(ok.length, 10, `${ok.length} searches succeeded over a pool of 10`);
  assert.equal(new Set(ok).size, ok.length, 'a number was held twice');
  assert.equal(results.filter((r) => r.status === 'rejected').length, tries - 10);
});

test('bad input is rejected with ACS errors', async () => {
  const base = { countryCode: 'US', phoneNumberType: 'geographic', assignmentType: 'person', capabilities: both, areaCode: '425' };
  await assert.rejects(client.beginSearchAvailablePhoneNumbers({ ...base, countryCode: 'CA' }, poll), (e) => e.statusCode === 400 && /countryCode|US/.test(e.message));
  await assert.rejects(client.beginSearchAvailablePhoneNumbers({ ...base, quantity: 0 }, poll), (e) => e.statusCode === 400 && /quantity/.test(e.message));
  await assert.rejects(client.beginSearchAvailablePhoneNumbers({ ...base, phoneNumberType: 'satellite' }, poll), (e) => e.statusCode === 400);
  await assert.rejects(client.beginSearchAvailablePhoneNumbers({ ...base, capabilities: { calling: 'sideways', sms: 'none' } }, poll), (e) => e.statusCode === 400 && /calling/.test(e.message));
  // More than available: accepted, then the operation fails; nothing stays held.
  await assert.rejects(client.beginSearchAvailablePhoneNumbers({ ...base, quantity: 500 }, poll).then((p) => p.pollUntilDone()),
    (e) => /OutOfStock/.test(e.message));
  const held = await all(client.listPurchasedPhoneNumbers());
  assert.ok(held.every((n) => n.phoneNumber !== undefined));
  await assert.rejects(client.beginPurchasePhoneNumbers(randomUUID(), poll), (e) => e.statusCode === 404);
  await assert.rejects(client.getPurchasedPhoneNumber('+1123'), (e) => e.statusCode === 400);
  await assert.rejects(client.getPurchasedPhoneNumber('+14252000099'), (e) => e.statusCode === 404);
  await assert.rejects(client.beginReleasePhoneNumber('+14252000098', poll), (e) => e.statusCode === 404);
});

test('browse, reservations, reservation purchase', async () => {
  const browsed = await client.browseAvailablePhoneNumbers(
    { countryCode: 'US', phoneNumberType: 'geographic' }, { phoneNumberPrefixes: ['1425'], assignmentType: 'person', capabilities: { calling: 'inbound', sms: 'none' } });
  assert.ok(browsed.phoneNumbers.length >= 3, `browsed ${browsed.phoneNumbers.length}`);
  assert.ok(browsed.phoneNumbers.every((n) => n.phoneNumber.startsWith('+1425') && n.status === 'available'));
  const [a, b, c] = browsed.phoneNumbers;

  const id = randomUUID();
  let res = await client.createOrUpdateReservation({ reservationId: id }, { add: [a, b] });
  assert.equal(res.id, id);
  assert.equal(res.status, 'active');
  assert.deepEqual(Object.keys(res.phoneNumbers).sort(), [a.id, b.id].sort());
  assert.equal(res.phoneNumbers[a.id].status, 'reserved');
  assert.ok(res.expiresAt.getTime() > Date.now() + 14 * 60_000);

  // A rival reservation cannot take a reserved number: a 207 with that number in error.
  const rival = randomUUID();
  const partial = await client.createOrUpdateReservation({ reservationId: rival }, { add: [a, c] });
  assert.equal(partial.phoneNumbers[a.id].status, 'error');
  assert.ok(partial.phoneNumbers[a.id].error?.code);
  assert.equal(partial.phoneNumbers[c.id].status, 'reserved');

  res = await client.createOrUpdateReservation({ reservationId: id }, { remove: [b.id] });
  assert.deepEqual(Object.keys(res.phoneNumbers), [a.id]);
  const listed = await all(client.listReservations());
  assert.ok(listed.some((r) => r.id === id) && listed.some((r) => r.id === rival));

  const p = await client.beginReservationPurchase(id, poll);
  await p.pollUntilDone();
  assert.equal((await client.getReservation(id)).status, 'completed');
  assert.equal((await client.getPurchasedPhoneNumber(a.phoneNumber)).phoneNumber, a.phoneNumber);

  await client.deleteReservation(rival);
  await assert.rejects(client.getReservation(rival), (e) => e.statusCode === 404);
  // The SDK itself refuses a reservation id that is not a UUID.
  await assert.rejects(client.createOrUpdateReservation({ reservationId: 'not-a-uuid' }, { add: [b] }));
});

test('operator information', async () => {
  const r = await client.searchOperatorInformation(['+14252000001', '+12125551234'], { includeAdditionalOperatorDetails: true });
  assert.equal(r.values.length, 2);
  assert.equal(r.values[0].phoneNumber, '+14252000001');
  assert.equal(r.values[0].nationalFormat, '(425) 200-0001');
  assert.equal(r.values[0].internationalFormat, '+1 425-200-0001');
  assert.equal(r.values[0].isoCountryCode, 'US');
  assert.equal(r.values[0].operatorDetails?.name, 'carrier-a');
  await assert.rejects(client.searchOperatorInformation(['+1555']), (e) => e.statusCode === 400);
});
