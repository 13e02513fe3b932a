#!/usr/bin/env node
// jssip-call.js - JsSIP (npm, pinned in package.json) in Node as a third-party SIP-over-
// WebSocket client: registers, sends OPTIONS to the PBX, places a call and hangs it up, then
// unregisters. Node has no WebRTC, so a fake RTCPeerConnection hands JsSIP a canned plain-RTP
// SDP offer and takes the answer: the signalling is JsSIP's own, the media is not exercised.
//
// Environment: WS_URL (ws://... or wss://..., a self-signed certificate is accepted), SIP_USER,
// SIP_PASSWORD, SIP_DOMAIN, TARGET (a number to call; empty: register, OPTIONS, unregister),
// LOCAL_IP (the address the socket is bound to), RTP_PORT (in the canned SDP), HOLD_MS (how
// long the answered call lasts). Prints one JSON object per line ({"event": ...}) and exits 0
// when every step succeeded, 1 otherwise.
'use strict';

const WS = require('ws');
const JsSIP = require('jssip');

const env = (name, fallback) => process.env[name] || fallback;
const URL = env('WS_URL');
const USER = env('SIP_USER');
const PASSWORD = env('SIP_PASSWORD');
const DOMAIN = env('SIP_DOMAIN', 'pbx.test');
const TARGET = env('TARGET', '');
const LOCAL_IP = env('LOCAL_IP', '127.0.0.1');
const RTP_PORT = Number(env('RTP_PORT', '40000'));
const HOLD_MS = Number(env('HOLD_MS', '1000'));

function say(event, fields) {
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n');
}

// The WebSocket JsSIP opens (`new WebSocket(url, 'sip')`), bound to LOCAL_IP; the PBX's
// certificate is self-signed.
class BoundWebSocket extends WS {
  constructor(url, protocols) {
    super(url, protocols, { localAddress: LOCAL_IP, rejectUnauthorized: false });
  }
}
global.WebSocket = BoundWebSocket;

const CANNED_SDP = [
  'v=0', `o=jssip 1 1 IN IP4 ${LOCAL_IP}`, 's=-', `c=IN IP4 ${LOCAL_IP}`, 't=0 0',
  `m=audio ${RTP_PORT} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16', 'a=sendrecv', '',
].join('\r\n');

// Just enough of RTCPeerConnection for JsSIP's offer/answer: ICE is "complete" at once.
class FakePeerConnection {
  constructor() {
    this.listeners = {};
    this.senders = [];
    this.localDescription = null;
    this.remoteDescription = null;
    this.signalingState = 'stable';
    this.iceGatheringState = 'complete';
    this.iceConnectionState = 'connected';
    this.connectionState = 'connected';
  }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  removeEventListener(type, fn) {
    this.listeners[type] = (this.listeners[type] || []).filter((f) => f !== fn);
  }
  addTrack(track) { const sender = { track }; this.senders.push(sender); return sender; }
  getSenders() { return this.senders; }
  getReceivers() { return []; }
  getTransceivers() { return []; }
  async createOffer() { return { type: 'offer', sdp: CANNED_SDP }; }
  async createAnswer() { return { type: 'answer', sdp: CANNED_SDP }; }
  async setLocalDescription(desc) {
    this.localDescription = desc;
    this.signalingState = desc.type === 'offer' ? 'have-local-offer' : 'stable';
  }
  async setRemoteDescription(desc) {
    this.remoteDescription = desc;
    this.signalingState = desc.type === 'offer' ? 'have-remote-offer' : 'stable';
  }
  close() { this.signalingState = 'closed'; }
}
class FakeSessionDescription {
  constructor(init) { this.type = init.type; this.sdp = init.sdp; }
}
global.window = global;
global.RTCPeerConnection = FakePeerConnection;
global.RTCSessionDescription = FakeSessionDescription;

const track = { kind: 'audio', enabled: true, stop() {} };
const fakeStream = { getTracks: () => [track], getAudioTracks: () => [track], getVideoTracks: () => [] };

let failed = false;
const ua = new JsSIP.UA({
  sockets: [new JsSIP.WebSocketInterface(URL)],
  uri: `sip:${USER}@${DOMAIN}`,
  password: PASSWORD,
  register: true,
  session_timers: false,
  user_agent: `JsSIP ${JsSIP.version} (pbx e2e)`,
  connection_recovery_min_interval: 60,
  connection_recovery_max_interval: 60,
});

function finish() {
  ua.once('unregistered', () => { say('unregistered'); ua.stop(); });
  ua.once('disconnected', () => process.exit(failed ? 1 : 0));
  ua.unregister();
  setTimeout(() => { say('timeout', { step: 'unregister' }); process.exit(1); }, 5000);
}

function call() {
  if (!TARGET) { finish(); return; }
  ua.call(TARGET, {
    mediaStream: fakeStream,
    pcConfig: {},
    eventHandlers: {
      progress: (e) => say('progress', { status: e.response && e.response.status_code }),
      accepted: (e) => say('accepted', { status: e.response && e.response.status_code }),
      confirmed: () => {
        say('confirmed');
        setTimeout(() => ua.terminateSessions(), HOLD_MS);
      },
      ended: (e) => { say('ended', { originator: e.originator, cause: e.cause }); finish(); },
      failed: (e) => {
        failed = true;
        say('call_failed', { originator: e.originator, cause: e.cause,
          status: e.message && e.message.status_code });
        finish();
      },
    },
  });
}

ua.on('connected', () => say('connected'));
ua.on('registered', (e) => {
  say('registered', { status: e.response.status_code, contact: ua.contact.toString() });
  ua.sendOptions(`sip:${DOMAIN}`, null, {
    eventHandlers: {
      succeeded: (ev) => { say('options', { status: ev.response.status_code }); call(); },
      failed: (ev) => {
        say('options', { status: ev.response ? ev.response.status_code : null, cause: ev.cause });
        call();
      },
    },
  });
});
ua.on('registrationFailed', (e) => {
  say('registration_failed', { cause: e.cause, status: e.response && e.response.status_code });
  ua.stop();
  process.exit(1);
});
ua.on('disconnected', (e) => say('disconnected', { error: !!(e && e.error) }));

setTimeout(() => { say('timeout', { step: 'all' }); process.exit(1); }, 30000);
ua.start();
