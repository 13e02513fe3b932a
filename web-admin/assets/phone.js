// The browser phone (/phone): logs in over the JSON API, registers with SIP.js over the
// same origin's /ws, and makes and takes one call at a time. No build step: plain ES module.
const SIP = await import(document.body.dataset.sip);
const { UserAgent, Registerer, Inviter, SessionState, RegistererState } = SIP;

const $ = (id) => document.getElementById(id);
const KEYS = [["1", ""], ["2", "ABC"], ["3", "DEF"], ["4", "GHI"], ["5", "JKL"], ["6", "MNO"],
  ["7", "PQRS"], ["8", "TUV"], ["9", "WXYZ"], ["*", ""], ["0", "+"], ["#", ""]];

let me = null;        // {extension, name, domain, csrf}
let password = null;  // kept in memory only, for the SIP account of this page
let ua = null;
let registerer = null;
let session = null;   // the one call: an Inviter or an Invitation
let heldByPeer = false; // the other side's last re-INVITE put this call on hold
let reconnectTimer = null;
let reconnectDelay = 1000;
let timer = null;
let ring = null;

// ---- small helpers ----------------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  for (const c of children) e.append(c);
  return e;
}

function notice(text, kind = "error") {
  const n = $("notice");
  if (!text) { n.hidden = true; return; }
  n.textContent = text;
  n.className = `alert ${kind}`;
  n.hidden = false;
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status-text").textContent = text;
}

async function api(path, options = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...options });
  if (res.status === 401 && path !== "/phone/login") { showLogin(); throw new Error("logged out"); }
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error || `the server answered ${res.status}`);
  return body;
}

function when(secs) {
  return new Date(secs * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

function duration(secs) {
  const s = Math.max(0, Math.floor(secs));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

// ---- login ------------------------------------------------------------------------------

function showLogin(message) {
  stopUa();
  $("app").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  err.hidden = !message;
  err.textContent = message || "";
  if (me) $("login-extension").value = me.extension;
  $("login-password").value = "";
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const extension = $("login-extension").value.trim();
  const pw = $("login-password").value;
  try {
    me = await api("/phone/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ extension, password: pw }),
    });
  } catch (e) {
    showLogin(e.message);
    return;
  }
  password = pw;
  startApp();
});

$("logout").addEventListener("click", async () => {
  hangup();
  try {
    await api("/phone/logout", { method: "POST", headers: { "X-CSRF-Token": me.csrf } });
  } catch { /* the session may be gone already */ }
  password = null;
  showLogin();
});

function startApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("who").textContent = me.name ? `${me.name} · ${me.extension}` : me.extension;
  notice(null);
  showPanel("idle");
  loadDirectory();
  startUa();
}

// ---- SIP account ------------------------------------------------------------------------

function startUa() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ua = new UserAgent({
    uri: UserAgent.makeURI(`sip:${me.extension}@${me.domain}`),
    displayName: me.name || me.extension,
    authorizationUsername: me.extension,
    authorizationPassword: password,
    transportOptions: { server: `${scheme}://${location.host}/ws` },
    logLevel: "warn",
    sessionDescriptionHandlerFactoryOptions: {
      peerConnectionConfiguration: { iceServers: [] },
      iceGatheringTimeout: 1000,
    },
    delegate: {
      onInvite: incoming,
      onDisconnect: (error) => { if (error) lostConnection(); },
    },
  });
  registerer = new Registerer(ua, { expires: 300 });
  registerer.stateChange.addListener((state) => {
    if (state === RegistererState.Unregistered && ua) setStatus("offline", "Not registered");
  });
  setStatus("connecting", "Connecting…");
  ua.start().then(register, lostConnection);
}

function register() {
  registerer.register({
    // Each accepted REGISTER, not the registerer's state: that stays "registered" across a
    // reconnection, so its change would not tell that the new socket is registered.
    requestDelegate: {
      onAccept: () => {
        setStatus("registered", "Ready");
        notice(null);
        reconnectDelay = 1000;
      },
      onReject: (response) => {
        const code = response.message.statusCode;
        setStatus("offline", "Not registered");
        notice(code === 401 || code === 403
          ? "The PBX refused this extension's password: log in again."
          : `The PBX refused the registration (${code} ${response.message.reasonPhrase}).`);
      },
    },
  }).catch(() => lostConnection());
}

function lostConnection() {
  if (!ua) return;
  setStatus("offline", "Offline");
  notice(`The connection to the PBX was lost. Reconnecting in ${Math.round(reconnectDelay / 1000)} s…`, "warn");
  clearTimeout(reconnectTimer);
  reconnectTimer = setTimeout(() => {
    if (!ua) return;
    setStatus("connecting", "Reconnecting…");
    ua.reconnect().then(register, () => {
      reconnectDelay = Math.min(reconnectDelay * 2, 30000);
      lostConnection();
    });
  }, reconnectDelay);
}

function stopUa() {
  clearTimeout(reconnectTimer);
  const old = ua;
  ua = null;
  registerer = null;
  if (old) old.stop().catch(() => {});
}

// ---- microphone ------------------------------------------------------------------------

// Asks for the microphone before a call so that a refusal gets a message of its own.
async function microphoneOk() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    stream.getTracks().forEach((t) => t.stop());
    return true;
  } catch (e) {
    notice(e?.name === "NotAllowedError" || e?.name === "SecurityError"
      ? "The browser denied the microphone. Allow it for this site (the icon in the address bar) and try again."
      : `No microphone could be opened (${e?.name || e}).`);
    return false;
  }
}

const MEDIA = { sessionDescriptionHandlerOptions: { constraints: { audio: true, video: false } } };

// ---- calls ------------------------------------------------------------------------------

function showPanel(name) {
  for (const p of ["idle", "ringing", "incall"]) $(p).hidden = p !== name;
}

function peerName(s) {
  const id = s.remoteIdentity;
  return { name: id.displayName || id.uri.user, number: id.uri.user };
}

async function call(target) {
  target = (target || "").trim();
  if (!target || session || !ua) return;
  if (!(await microphoneOk())) return;
  const uri = UserAgent.makeURI(`sip:${target}@${me.domain}`);
  if (!uri) { notice(`"${target}" is not a number that can be called.`); return; }
  notice(null);
  const inviter = new Inviter(ua, uri, MEDIA);
  track(inviter, target);
  nameOf(target).then((name) => { if (name && session === inviter) $("call-name").textContent = name; });
  $("call-state").textContent = "Calling…";
  showPanel("incall");
  inviter.invite({
    requestDelegate: {
      onReject: (r) => notice(refusal(target, r.message.statusCode, r.message.reasonPhrase), "warn"),
    },
  }).catch((e) => { notice(`The call could not start: ${e.message}`); endCall(); });
}

// What a final answer to our INVITE means to the person who dialled.
function refusal(target, code, reason) {
  if (code === 486 || code === 600) return `${target} is busy.`;
  if (code === 480 || code === 603) return `${target} did not take the call.`;
  if (code === 404 || code === 484) return `There is no ${target}.`;
  if (code === 403) return `You may not call ${target}.`;
  return `The call failed: ${code} ${reason}.`;
}

function incoming(invitation) {
  if (session) { invitation.reject({ statusCode: 486 }); return; }
  const who = peerName(invitation);
  track(invitation, who.name);
  $("ringing-name").textContent = who.name;
  $("ringing-number").textContent = who.name === who.number ? "" : who.number;
  showPanel("ringing");
  startRing();
  // A caller without a display name (many desk phones) is named from the directory.
  if (who.name === who.number) {
    nameOf(who.number).then((name) => {
      if (!name || session !== invitation) return;
      $("ringing-name").textContent = name;
      $("ringing-number").textContent = who.number;
      $("call-name").textContent = name;
    });
  }
}

// The directory's name for a number, or null.
async function nameOf(number) {
  try {
    const found = await api(`/phone/api/directory?q=${encodeURIComponent(number)}`);
    return found.find((p) => p.number === number && p.name)?.name || null;
  } catch { return null; }
}

function track(s, name) {
  session = s;
  heldByPeer = false;
  // A re-INVITE from the other side (through the PBX), already answered by SIP.js: an offer
  // of a=sendonly or a=inactive is a hold, a=sendrecv a resume (RFC 3264 §8.4).
  s.delegate = {
    onInvite: (request, _response, statusCode) => {
      if (s !== session || statusCode !== 200) return;
      heldByPeer = offersHold(request.body || "");
      showCallState();
    },
  };
  $("call-name").textContent = name;
  $("mute").setAttribute("aria-pressed", "false");
  $("hold").setAttribute("aria-pressed", "false");
  s.stateChange.addListener((state) => {
    if (s !== session) return;
    if (state === SessionState.Established) {
      stopRing();
      attachAudio(s);
      showPanel("incall");
      showCallState();
      startTimer();
    } else if (state === SessionState.Terminated) {
      endCall();
      refreshLists();
    }
  });
}

function attachAudio(s) {
  const sdh = s.sessionDescriptionHandler;
  const audio = $("remote");
  audio.srcObject = sdh?.remoteMediaStream || null;
  audio.play().catch(() => {});
}

function endCall() {
  stopRing();
  stopTimer();
  session = null;
  $("remote").srcObject = null;
  $("dtmf-pad").hidden = true;
  $("keypad").setAttribute("aria-pressed", "false");
  showPanel("idle");
}

function hangup() {
  const s = session;
  if (!s) return;
  switch (s.state) {
    case SessionState.Initial:
    case SessionState.Establishing:
      if (s instanceof Inviter) s.cancel(); else s.reject();
      break;
    case SessionState.Established:
      s.bye();
      break;
    default:
      endCall();
  }
}

async function answer() {
  const s = session;
  if (!s || s instanceof Inviter) return;
  stopRing();
  if (!(await microphoneOk())) { s.reject(); return; }
  $("call-state").textContent = "Connecting…";
  showPanel("incall");
  s.accept(MEDIA).catch((e) => { notice(`The call could not be answered: ${e.message}`); endCall(); });
}

function setSenders(s, enabled) {
  const pc = s.sessionDescriptionHandler?.peerConnection;
  pc?.getSenders().forEach((sender) => { if (sender.track) sender.track.enabled = enabled; });
}

function toggleMute() {
  if (!session || session.state !== SessionState.Established) return;
  const muted = $("mute").getAttribute("aria-pressed") !== "true";
  setSenders(session, !muted);
  $("mute").setAttribute("aria-pressed", String(muted));
  $("mute").textContent = muted ? "Unmute" : "Mute";
}

function toggleHold() {
  const s = session;
  if (!s || s.state !== SessionState.Established) return;
  const hold = $("hold").getAttribute("aria-pressed") !== "true";
  // A re-INVITE with a=sendonly (or a=sendrecv to resume), as SIP.js's SimpleUser does.
  s.sessionDescriptionHandlerOptionsReInvite = { hold };
  s.invite({
    requestDelegate: {
      onAccept: () => {
        $("hold").setAttribute("aria-pressed", String(hold));
        $("hold").textContent = hold ? "Resume" : "Hold";
        showCallState();
        const muted = $("mute").getAttribute("aria-pressed") === "true";
        setSenders(s, !hold && !muted);
      },
      onReject: () => notice("The PBX did not accept the hold.", "warn"),
    },
  }).catch((e) => notice(`Hold failed: ${e.message}`, "warn"));
}

// The audio section's direction in an offer (the session-level one when it has none,
// RFC 4566 §6): sendonly or inactive from the other side means it holds the call.
function offersHold(sdp) {
  const at = sdp.search(/^m=audio /m);
  const dir = (text) => text.match(/^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m)?.[1];
  const media = at < 0 ? null : dir(sdp.slice(at).split(/^(?=m=)/m)[0]);
  const d = media || dir(at < 0 ? sdp : sdp.slice(0, at)) || "sendrecv";
  return d === "sendonly" || d === "inactive";
}

function showCallState() {
  const own = $("hold").getAttribute("aria-pressed") === "true";
  $("call-state").textContent = own ? "On hold" : heldByPeer ? "Held by the other side" : "In call";
}

function dtmf(key) {
  const s = session;
  if (!s || s.state !== SessionState.Established) return;
  // RTCDTMFSender: RFC 4733 telephone-events in the media.
  s.sessionDescriptionHandler?.sendDtmf(key);
}

// ---- ring tone and call timer ----------------------------------------------------------

function startRing() {
  stopRing();
  try {
    const ctx = new AudioContext();
    const gain = ctx.createGain();
    gain.gain.value = 0;
    gain.connect(ctx.destination);
    for (const f of [440, 480]) {
      const o = ctx.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start();
    }
    // 2 s on, 4 s off (the North American ring cadence), at a modest level.
    const cadence = () => {
      const t = ctx.currentTime;
      gain.gain.setValueAtTime(0.08, t);
      gain.gain.setValueAtTime(0, t + 2);
    };
    cadence();
    ring = { ctx, interval: setInterval(cadence, 6000) };
  } catch { ring = null; }
}

function stopRing() {
  if (!ring) return;
  clearInterval(ring.interval);
  ring.ctx.close().catch(() => {});
  ring = null;
}

function startTimer() {
  stopTimer();
  const start = Date.now();
  $("call-timer").textContent = "0:00";
  timer = setInterval(() => { $("call-timer").textContent = duration((Date.now() - start) / 1000); }, 1000);
}

function stopTimer() {
  clearInterval(timer);
  timer = null;
}

// ---- dial pad ---------------------------------------------------------------------------

function buildPad(container, onKey) {
  for (const [k, letters] of KEYS) {
    const b = el("button", { type: "button", className: "key" }, k, el("small", {}, letters));
    b.dataset.key = k;
    b.addEventListener("click", () => onKey(k));
    container.append(b);
  }
}

buildPad($("pad"), (k) => { $("number").value += k; });
buildPad($("dtmf-pad"), dtmf);
$("backspace").addEventListener("click", () => { $("number").value = $("number").value.slice(0, -1); });
$("call").addEventListener("click", () => dialTyped());
$("number").addEventListener("keydown", (e) => { if (e.key === "Enter") dialTyped(); });
$("answer").addEventListener("click", answer);
$("reject").addEventListener("click", () => { session?.reject(); });
$("hangup").addEventListener("click", hangup);
$("mute").addEventListener("click", toggleMute);
$("hold").addEventListener("click", toggleHold);
$("keypad").addEventListener("click", () => {
  const pad = $("dtmf-pad");
  pad.hidden = !pad.hidden;
  $("keypad").setAttribute("aria-pressed", String(!pad.hidden));
});

// A number is dialled as typed; a name is looked up in the directory (dial by name).
async function dialTyped() {
  const typed = $("number").value.trim();
  if (!typed) return;
  if (/^[0-9*#+]+$/.test(typed)) { call(typed); return; }
  try {
    const found = await api(`/phone/api/directory?q=${encodeURIComponent(typed)}`);
    if (found.length === 1) { call(found[0].number); return; }
    $("search").value = typed;
    selectTab("directory");
    renderDirectory(found);
    notice(found.length ? `${found.length} colleagues match "${typed}": pick one.` : `Nobody matches "${typed}".`, "warn");
  } catch (e) { notice(e.message); }
}

// ---- lists ------------------------------------------------------------------------------

function selectTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
  }
  for (const t of ["directory", "history", "voicemail"]) $(`tab-${t}`).hidden = t !== name;
  if (name === "directory") loadDirectory();
  if (name === "history") loadHistory();
  if (name === "voicemail") loadVoicemail();
}

for (const b of document.querySelectorAll(".tabs button")) {
  b.addEventListener("click", () => selectTab(b.dataset.tab));
}

function refreshLists() {
  const open = document.querySelector('.tabs button[aria-selected="true"]')?.dataset.tab;
  if (open) selectTab(open);
}

function empty(list, text) {
  list.replaceChildren(el("li", { className: "empty" }, text));
}

const PRESENCE = { online: ["on", "Online"], on_the_phone: ["busy", "On the phone"], offline: ["", "Offline"] };

function renderDirectory(people) {
  const list = $("directory");
  const others = people.filter((p) => p.number !== me?.extension);
  if (!others.length) { empty(list, "Nobody found."); return; }
  list.replaceChildren(...others.map((p) => {
    const [dot, label] = PRESENCE[p.presence] || PRESENCE.offline;
    const btn = el("button", { type: "button", className: "btn small", textContent: "Call" });
    btn.addEventListener("click", () => call(p.number));
    const li = el("li", {},
      el("span", { className: `dot ${dot}`, title: label }),
      el("div", { className: "main" }, el("b", { textContent: p.name || p.number }),
        el("span", { textContent: `${p.number} · ${label}` })),
      btn);
    li.dataset.number = p.number;
    li.dataset.presence = p.presence;
    return li;
  }));
}

// Presence changes while the page is open: the directory is read again every 15 s.
setInterval(() => {
  if (!$("app").hidden && !$("tab-directory").hidden && me) loadDirectory();
}, 15000);

let searchTimer = null;
$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(loadDirectory, 200);
});

async function loadDirectory() {
  try {
    renderDirectory(await api(`/phone/api/directory?q=${encodeURIComponent($("search").value)}`));
  } catch (e) { empty($("directory"), e.message); }
}

async function loadHistory() {
  const list = $("history");
  try {
    const calls = await api("/phone/api/calls");
    if (!calls.length) { empty(list, "No calls yet."); return; }
    list.replaceChildren(...calls.map((c) => {
      const other = c.direction === "in" ? c.caller : c.called;
      const missed = c.direction === "in" && c.disposition !== "answered";
      const kind = missed ? "missed" : c.direction;
      const btn = el("button", { type: "button", className: "btn small", textContent: "Call" });
      btn.addEventListener("click", () => call(other));
      return el("li", {},
        el("span", { className: `dir-${kind}`, textContent: kind === "out" ? "↗" : missed ? "✕" : "↙" }),
        el("div", { className: "main" }, el("b", { textContent: other }),
          el("span", { textContent: `${when(c.started_at)} · ${c.disposition}${c.duration_secs ? ` · ${duration(c.duration_secs)}` : ""}` })),
        btn);
    }));
  } catch (e) { empty(list, e.message); }
}

async function loadVoicemail() {
  const list = $("voicemail");
  try {
    const messages = await api("/phone/api/voicemail");
    if (!messages.length) { empty(list, "No voicemail."); return; }
    list.replaceChildren(...messages.map((m) => {
      const li = el("li", { className: "vm" },
        el("div", { className: "main" },
          el("b", { textContent: m.caller_name || m.caller_number || "Unknown caller" }),
          el("span", { textContent: `${when(m.received_at)} · ${duration(m.duration_ms / 1000)}${m.folder === "new" ? " · new" : ""}` })),
        el("audio", { controls: true, preload: "none", src: m.audio }));
      li.dataset.id = m.id;
      return li;
    }));
  } catch (e) { empty(list, e.message); }
}

// ---- start ------------------------------------------------------------------------------

// A page reloaded keeps its session cookie but not the password the SIP account needs, so
// it asks for the password again with the extension filled in.
try {
  me = await api("/phone/api/me");
} catch { me = null; }
showLogin();
window.addEventListener("beforeunload", () => { hangup(); stopUa(); });
