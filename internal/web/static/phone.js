// telgw softphone: registers a WebRTC user with telgw over SIP over WebSocket (RFC 7118) using
// JsSIP, authenticating every request with the user's access token as a Bearer credential
// (RFC 8898), and places/answers audio calls whose media telgw bridges to the PSTN
// (DTLS-SRTP, RFC 5764; DTMF as RFC 4733 telephone-events).
//
// window.telgwPhone exposes the state and actions for automation (test/browser drives it).
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const state = {
    config: null, ua: null, session: null, iceServers: [],
    registered: false, registration: 'not registered', callStatus: 'idle', lastCause: '', log: [],
    token: '', status: null,
  };

  function log(msg) {
    const line = new Date().toISOString().slice(11, 23) + ' ' + msg;
    state.log.push(line);
    const pre = $('log');
    pre.textContent += line + '\n';
    pre.scrollTop = pre.scrollHeight;
  }

  function setRegistration(text, registered) {
    state.registration = text;
    state.registered = registered;
    $('reg-status').value = text;
    $('reg-status').textContent = text;
    refresh();
  }

  function setCall(text) {
    state.callStatus = text;
    $('call-status').value = text;
    $('call-status').textContent = text;
    refresh();
  }

  function refresh() {
    const s = state.session;
    const live = s && !s.isEnded();
    $('register').disabled = !!state.ua;
    $('unregister').disabled = !state.ua;
    $('call').disabled = !state.registered || !!live;
    $('answer').disabled = !(live && s.direction === 'incoming' && !s.isEstablished() && state.callStatus.startsWith('incoming'));
    $('hangup').disabled = !live;
  }

  // The identity is the token's subject (an ACS communicationUser id, "8:acs:…").
  function identityOf(token) {
    const part = token.split('.')[1];
    if (!part) throw new Error('not a JWT');
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const sub = JSON.parse(json).sub;
    if (!sub) throw new Error('token has no subject');
    return sub;
  }

  function domain() {
    return state.config.domain || location.hostname;
  }

  function wsURL() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + state.config.wsPath;
  }

  async function loadConfig() {
    const r = await fetch('config.json', { cache: 'no-store' });
    state.config = await r.json();
    $('fetch-token').hidden = !state.config.tokenURL;
  }

  // The operator's token endpoint may answer {"token": "…"} or the ACS identity shape
  // {"accessToken": {"token": "…"}}.
  async function fetchToken() {
    const r = await fetch(state.config.tokenURL, { credentials: 'include', cache: 'no-store' });
    if (!r.ok) throw new Error('token endpoint answered ' + r.status);
    const body = await r.json();
    const token = body.token || (body.accessToken && body.accessToken.token);
    if (!token) throw new Error('token endpoint answered no token');
    $('token').value = token;
    log('fetched a token');
    return token;
  }

  // ICE servers (STUN/TURN with short-lived credentials) for this user; see internal/web.
  async function fetchICE(token) {
    try {
      const r = await fetch(state.config.icePath, { headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const body = await r.json();
      state.iceServers = body.iceServers || [];
    } catch (e) {
      state.iceServers = [];
      log('no ICE servers (' + e.message + '); host candidates only');
    }
  }

  // What telgw knows stands in the user's way (no number assigned, no outbound route): shown
  // under the registration and after a failed call; see StatusHandler in internal/web.
  async function fetchStatus() {
    if (!state.token || !state.config.statusPath) return null;
    try {
      const r = await fetch(state.config.statusPath, { headers: { Authorization: 'Bearer ' + state.token }, cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      state.status = await r.json();
    } catch (e) {
      log('no account status (' + e.message + ')');
      return null;
    }
    const st = state.status;
    const problems = (st.problems || []).map((p) => p.message);
    const text = (st.number ? 'number ' + st.number : 'no number') + (problems.length ? '; ' + problems.join('; ') : '; ready');
    $('user-status').value = text;
    $('user-status').textContent = text;
    problems.forEach((p) => log('telgw: ' + p));
    return st;
  }

  // failureText is a failed call's cause with the SIP status and what telgw knows about it.
  async function failureText(e) {
    let text = e.cause;
    if (e.message && e.message.status_code) text += ': ' + e.message.status_code + ' ' + e.message.reason_phrase;
    const st = await fetchStatus();
    const problems = st ? (st.problems || []).map((p) => p.message) : [];
    return problems.length ? text + ' (' + problems.join('; ') + ')' : text;
  }

  async function register(token) {
    token = (token || $('token').value).trim();
    if (!token) throw new Error('no token');
    $('token').value = token;
    if (!state.config) await loadConfig();
    const id = identityOf(token);
    state.token = token;
    await fetchICE(token);
    await fetchStatus();
    // JsSIP writes ':' unescaped in the user part and then cannot parse "8:acs:…" back (it reads
    // "user:password"), so the URI carries the id with ':' as '_'. telgw identifies the caller
    // by the token, never by this URI.
    const uri = 'sip:' + id.replace(/[^A-Za-z0-9_.!~*'()-]/g, '_') + '@' + domain();
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(wsURL())],
      uri,
      authorization_jwt: 'Bearer ' + token,
      register: true,
      register_expires: 300,
      session_timers: false,
      user_agent: 'telgw-phone JsSIP/' + JsSIP.version,
    });
    state.ua = ua;
    ua.on('connecting', () => setRegistration('connecting', false));
    ua.on('connected', () => log('WebSocket connected to ' + wsURL()));
    ua.on('disconnected', () => { log('WebSocket disconnected'); setRegistration('disconnected', false); });
    ua.on('registered', () => setRegistration('registered as ' + id, true));
    ua.on('unregistered', () => setRegistration('not registered', false));
    ua.on('registrationFailed', (e) => {
      const code = e.response ? e.response.status_code + ' ' + e.response.reason_phrase : e.cause;
      log('registration failed: ' + code);
      setRegistration('registration failed: ' + code, false);
    });
    ua.on('newRTCSession', (e) => onSession(e.session, e.originator === 'remote', e.request));
    ua.start();
    refresh();
  }

  function unregister() {
    if (state.session && !state.session.isEnded()) state.session.terminate();
    if (state.ua) state.ua.stop();
    state.ua = null;
    state.token = '';
    setRegistration('not registered', false);
  }

  function attachAudio(pc) {
    pc.addEventListener('track', (ev) => {
      $('remote-audio').srcObject = ev.streams[0] || new MediaStream([ev.track]);
    });
  }

  function onSession(session, incoming, request) {
    if (state.session && !state.session.isEnded()) {
      session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      return;
    }
    state.session = session;
    state.lastCause = '';
    // SIP needs the complete description (no trickle ICE): stop waiting for slow candidates
    // 2 s after the first one.
    let readyTimer = null;
    session.on('icecandidate', (e) => { if (!readyTimer) readyTimer = setTimeout(e.ready, 2000); });
    session.on('peerconnection', (e) => attachAudio(e.peerconnection));
    session.on('progress', () => setCall(incoming ? 'incoming' : 'ringing'));
    session.on('accepted', () => setCall('in call'));
    session.on('confirmed', () => setCall('in call'));
    session.on('hold', () => setCall('on hold'));
    session.on('unhold', () => setCall('in call'));
    session.on('newDTMF', (e) => log('DTMF ' + e.originator + ' ' + e.dtmf.tone));
    session.on('ended', (e) => { state.lastCause = e.cause; setCall('ended (' + e.cause + ')'); });
    session.on('failed', (e) => {
      state.lastCause = e.cause;
      setCall('failed (' + e.cause + ')');
      failureText(e).then((t) => { if (state.session === session) setCall('failed (' + t + ')'); });
    });
    if (incoming) {
      const from = request && request.from ? request.from.uri.user : 'unknown';
      setCall('incoming from ' + decodeURIComponent(from));
    } else {
      setCall('calling');
    }
  }

  function target(number) {
    number = number.trim();
    if (/^(sips?|tel):/.test(number)) return number;
    return 'sip:' + number.replace(/[\s().-]/g, '') + '@' + domain();
  }

  function call(number) {
    number = number || $('number').value;
    if (!state.registered) throw new Error('not registered');
    const session = state.ua.call(target(number), {
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: state.iceServers },
    });
    if (session.connection) attachAudio(session.connection);
    return session;
  }

  function answer() {
    const s = state.session;
    if (!s || s.direction !== 'incoming') throw new Error('no incoming call');
    s.answer({ mediaConstraints: { audio: true, video: false }, pcConfig: { iceServers: state.iceServers } });
  }

  function hangup() {
    if (state.session && !state.session.isEnded()) state.session.terminate();
  }

  // DTMF goes in the media as RFC 4733 telephone-events (RTCDTMFSender), which telgw relays
  // to the carrier unchanged; outside a call the digit is typed into the number field.
  function sendDTMF(digits) {
    const s = state.session;
    if (s && s.isEstablished()) {
      s.sendDTMF(digits, { transportType: 'RFC2833', duration: 160, interToneGap: 70 });
      log('DTMF sent ' + digits);
    } else {
      $('number').value += digits;
    }
  }

  // RTP counters from getStats() (W3C webrtc-stats inbound-rtp/outbound-rtp).
  async function stats() {
    const s = state.session;
    const out = { packetsReceived: 0, packetsSent: 0, bytesReceived: 0, bytesSent: 0, codec: '' };
    if (!s || !s.connection) return out;
    const report = await s.connection.getStats();
    const codecs = {};
    report.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
    report.forEach((r) => {
      if (r.kind !== 'audio' && r.mediaType !== 'audio') return;
      if (r.type === 'inbound-rtp') {
        out.packetsReceived += r.packetsReceived || 0;
        out.bytesReceived += r.bytesReceived || 0;
        if (r.codecId) out.codec = codecs[r.codecId] || out.codec;
      } else if (r.type === 'outbound-rtp') {
        out.packetsSent += r.packetsSent || 0;
        out.bytesSent += r.bytesSent || 0;
        if (r.codecId && !out.codec) out.codec = codecs[r.codecId] || '';
      }
    });
    return out;
  }

  const guard = (fn) => async () => { try { await fn(); } catch (e) { log('error: ' + e.message); } };
  $('register').addEventListener('click', guard(() => register()));
  $('unregister').addEventListener('click', guard(unregister));
  $('fetch-token').addEventListener('click', guard(fetchToken));
  $('call').addEventListener('click', guard(() => call()));
  $('answer').addEventListener('click', guard(answer));
  $('hangup').addEventListener('click', guard(hangup));
  $('pad').addEventListener('click', (ev) => {
    const d = ev.target.dataset && ev.target.dataset.digit;
    if (d) sendDTMF(d);
  });
  if (new URLSearchParams(location.search).has('debug')) JsSIP.debug.enable('JsSIP:*');

  window.telgwPhone = { state, register, unregister, fetchToken, fetchStatus, call, answer, hangup, sendDTMF, stats, ready: loadConfig().then(refresh) };
})();
