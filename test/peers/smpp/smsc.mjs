// A scriptable SMSC built on the npm `smpp` package (0.5.1), used by telgw's Go tests as the
// real SMPP peer. Options come as one JSON argument; control commands arrive as JSON lines on
// stdin and events leave as JSON lines on stdout.
//
// Options: {port, systemId, password, throttleEvery, rejectDest:[], receipt: "text"|"tlv"|"both"|"none",
//           receiptDelayMs, quiet, noResponseEvery, holdReceipts}
//           holdReceipts: keep receipts until {cmd:"receipts"} sends them all at once
// Commands: {cmd:"mo", from, to, message?, hex?, udh?, dataCoding?, esmClass?, tlvs?, session?}
//           {cmd:"drop"}  close every session   {cmd:"raw", hex}  write raw bytes to every session
//           {cmd:"stop"}  stop listening         {cmd:"start"}     listen again on the same port
//           {cmd:"count"} report submit counts, deliver_sm_resp counts (ok, failed) and sessions bound now
// Events: bind and close carry boundNow, the sessions bound at that moment.
//           {cmd:"moburst", n, from, to, message}  n inbound deliver_sm to n senders (from+i), at once
//           {cmd:"receipts"} send the receipts held (holdReceipts) at once
import smpp from 'smpp';
import readline from 'node:readline';

const opts = Object.assign({ port: 0, systemId: 'telgw', password: 'secret', throttleEvery: 0,
  rejectDest: [], receipt: 'both', receiptDelayMs: 10, quiet: false, noResponseEvery: 0, holdReceipts: false },
  JSON.parse(process.argv[2] || '{}'));

const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
const sessions = new Set();
let submits = 0;
let accepted = 0;
let nextId = 0x1000;
let delivered = 0; // deliver_sm_resp with status 0 (receipts and inbound telgw recorded)
let deliverFailed = 0;
let boundNow = 0; // sessions bound now (bind events carry it: their maximum is the most binds at once)
let port = opts.port;
const held = []; // receipts kept for {cmd:"receipts"} (holdReceipts)

function pad(n) { return String(n).padStart(2, '0'); }
function stamp(d) {
  return pad(d.getUTCFullYear() % 100) + pad(d.getUTCMonth() + 1) + pad(d.getUTCDate()) + pad(d.getUTCHours()) + pad(d.getUTCMinutes());
}

// receiverFor picks the session a deliver_sm goes to: the given one if it may receive
// (transceiver), else any session bound as receiver or transceiver.
function receiverFor(preferred) {
  if (preferred && preferred.canReceive) return preferred;
  for (const s of sessions) if (s.canReceive) return s;
  return undefined;
}

function onSession(session) {
  sessions.add(session);
  let bound = false;
  session.on('error', (e) => emit({ ev: 'error', message: String(e) }));
  session.on('pdu', (pdu) => { if (process.env.SMSC_DEBUG) emit({ ev: 'pdu', command: pdu.command, status: pdu.command_status }); });
  session.on('close', () => {
    sessions.delete(session);
    if (bound) boundNow--;
    emit({ ev: 'close', bound, boundNow });
  });
  const bind = (pdu) => {
    if (pdu.system_id !== opts.systemId || pdu.password !== opts.password) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      emit({ ev: 'bindfail', systemId: pdu.system_id });
      return;
    }
    bound = true;
    boundNow++;
    session.canReceive = pdu.command !== 'bind_transmitter';
    session.send(pdu.response({ system_id: 'npm-smpp' }));
    emit({ ev: 'bind', command: pdu.command, systemId: pdu.system_id, systemType: pdu.system_type, boundNow });
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('bind_receiver', bind);
  session.on('enquire_link', (pdu) => { session.send(pdu.response()); if (!opts.quiet) emit({ ev: 'enquire_link' }); });
  session.on('unbind', (pdu) => { session.send(pdu.response()); emit({ ev: 'unbind' }); session.close(); });
  session.on('generic_nack', (pdu) => emit({ ev: 'generic_nack', status: pdu.command_status, seq: pdu.sequence_number }));
  session.on('deliver_sm_resp', (pdu) => {
    if (pdu.command_status === 0) delivered++; else deliverFailed++;
    if (!opts.quiet) emit({ ev: 'deliver_sm_resp', status: pdu.command_status, seq: pdu.sequence_number });
  });
  session.on('unknown', (pdu) => { session.send(pdu.response()); emit({ ev: 'unknown', id: pdu.command_id }); });
  session.on('submit_sm', (pdu) => {
    if (!bound) { session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS })); return; }
    submits++;
    if (opts.noResponseEvery && submits % opts.noResponseEvery === 0) return;
    if (opts.throttleEvery && submits % opts.throttleEvery === 0) {
      session.send(pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
      if (!opts.quiet) emit({ ev: 'throttled', dest: pdu.destination_addr });
      return;
    }
    if (opts.rejectDest.includes(pdu.destination_addr)) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVDSTADR }));
      if (!opts.quiet) emit({ ev: 'rejected', dest: pdu.destination_addr });
      return;
    }
    accepted++;
    const id = nextId++;
    const hexId = id.toString(16).toUpperCase().padStart(8, '0');
    session.send(pdu.response({ message_id: hexId }));
    const sm = pdu.short_message || {};
    const udh = (sm.udh || []).map((b) => Buffer.from(b).toString('hex'));
    const payload = pdu.message_payload;
    if (!opts.quiet) {
      emit({ ev: 'submit', id: hexId, seq: pdu.sequence_number, from: pdu.source_addr, to: pdu.destination_addr,
        srcTon: pdu.source_addr_ton, srcNpi: pdu.source_addr_npi, dstTon: pdu.dest_addr_ton, dstNpi: pdu.dest_addr_npi,
        esmClass: pdu.esm_class, dataCoding: pdu.data_coding, registeredDelivery: pdu.registered_delivery,
        serviceType: pdu.service_type, validity: pdu.validity_period,
        message: typeof sm.message === 'string' ? sm.message : undefined, udh,
        payload: payload && typeof payload.message === 'string' ? payload.message : undefined,
        sarRef: pdu.sar_msg_ref_num, sarTotal: pdu.sar_total_segments, sarSeq: pdu.sar_segment_seqnum });
    }
    if ((pdu.registered_delivery & 0x03) && opts.receipt !== 'none') {
      (opts.holdReceipts ? (f) => held.push(f) : (f) => setTimeout(f, opts.receiptDelayMs))(() => {
        const now = stamp(new Date());
        const fields = { source_addr: pdu.destination_addr, destination_addr: pdu.source_addr,
          source_addr_ton: 1, source_addr_npi: 1, dest_addr_ton: 1, dest_addr_npi: 1, esm_class: 0x04 };
        if (opts.receipt === 'text' || opts.receipt === 'both') {
          fields.short_message = `id:${String(id).padStart(10, '0')} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:DELIVRD err:000 text:x`;
        }
        if (opts.receipt === 'tlv' || opts.receipt === 'both') {
          fields.receipted_message_id = hexId.toLowerCase();
          fields.message_state = 2;
        }
        const target = receiverFor(session);
        if (target) target.deliver_sm(fields);
      });
    }
  });
}

const server = smpp.createServer({ debug: false }, onSession);
function listen() {
  server.listen(port, '127.0.0.1', () => {
    port = server.address().port;
    emit({ ev: 'listening', port });
  });
}
listen();

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c;
  try { c = JSON.parse(line); } catch { return; }
  switch (c.cmd) {
    case 'mo': {
      const fields = { source_addr: c.from, destination_addr: c.to, source_addr_ton: c.fromTon ?? 1, source_addr_npi: 1,
        dest_addr_ton: 1, dest_addr_npi: 1, esm_class: c.esmClass ?? 0, data_coding: c.dataCoding ?? 0 };
      if (c.hex !== undefined) fields.short_message = Buffer.from(c.hex, 'hex');
      else fields.short_message = c.udh ? { udh: Buffer.from(c.udh, 'hex'), message: c.message } : c.message;
      if (c.payloadHex) fields.message_payload = Buffer.from(c.payloadHex, 'hex');
      Object.assign(fields, c.tlvs || {});
      // session: the index among the sessions that may receive, oldest first (default any).
      const target = c.session === undefined ? receiverFor() : [...sessions].filter((s) => s.canReceive)[c.session];
      if (target) target.deliver_sm(fields);
      break;
    }
    case 'raw':
      for (const s of sessions) s.socket.write(Buffer.from(c.hex, 'hex'));
      break;
    case 'drop':
      for (const s of sessions) s.destroy();
      emit({ ev: 'dropped' });
      break;
    case 'stop':
      for (const s of sessions) s.destroy();
      server.close(() => emit({ ev: 'stopped' }));
      break;
    case 'start':
      listen();
      break;
    case 'count':
      emit({ ev: 'count', submits, accepted, delivered, deliverFailed, sessions: sessions.size, bound: boundNow });
      break;
    case 'receipts':
      for (const f of held.splice(0)) f();
      break;
    case 'moburst': {
      const target = receiverFor();
      if (!target) break;
      for (let i = 0; i < c.n; i++) {
        target.deliver_sm({ source_addr: String(Number(c.from) + i), destination_addr: c.to, source_addr_ton: 1, source_addr_npi: 1,
          dest_addr_ton: 1, dest_addr_npi: 1, esm_class: 0, data_coding: 0, short_message: c.message || 'bench' });
      }
      break;
    }
  }
});
rl.on('close', () => process.exit(0));
