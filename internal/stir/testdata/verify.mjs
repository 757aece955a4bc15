// An independent PASSporT verifier for telgw's tests, on node:crypto only: it fetches the
// x5u certificate, checks that the trust anchor issued and signed it, verifies the ES256
// signature (RFC 7518 §3.4, R||S) and the shaken claims (RFC 8225, RFC 8588).
// Usage: node verify.mjs IDENTITY ORIG DEST ROOT_PEM_FILE; exit 0 and "ok" when it verifies.
import { X509Certificate, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [identity, orig, dest, rootFile] = process.argv.slice(2);
const fail = (msg) => { console.log('FAIL ' + msg); process.exit(1); };

const [jws, ...params] = identity.split(';');
const info = params.map((p) => p.trim()).find((p) => p.startsWith('info='));
if (!info) fail('no info');
const infoURL = info.slice('info=<'.length, -1);
const [h64, p64, s64] = jws.split('.');
const header = JSON.parse(Buffer.from(h64, 'base64url').toString());
const claims = JSON.parse(Buffer.from(p64, 'base64url').toString());
if (header.alg !== 'ES256' || header.ppt !== 'shaken' || header.typ !== 'passport') fail('header ' + JSON.stringify(header));
if (header.x5u !== infoURL) fail('x5u is not info');
if (!['A', 'B', 'C'].includes(claims.attest)) fail('attest');
if (claims.orig.tn !== orig.replace(/\D/g, '')) fail('orig ' + claims.orig.tn);
if (!claims.dest.tn.includes(dest.replace(/\D/g, ''))) fail('dest ' + claims.dest.tn);
if (Math.abs(Date.now() / 1000 - claims.iat) > 60) fail('iat');
if (!/^[0-9a-f-]{36}$/.test(claims.origid)) fail('origid');

const res = await fetch(header.x5u);
if (!res.ok) fail('fetch ' + res.status);
const pem = await res.text();
const cert = new X509Certificate(pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/)[0]);
const root = new X509Certificate(readFileSync(rootFile));
if (!cert.checkIssued(root) || !cert.verify(root.publicKey)) fail('certificate not issued by the root');
const now = new Date();
if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now) fail('certificate expired');
const ok = verify('sha256', Buffer.from(h64 + '.' + p64), { key: cert.publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(s64, 'base64url'));
if (!ok) fail('signature');
console.log('ok ' + claims.attest);
