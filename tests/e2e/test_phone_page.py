"""The browser phone page (`/phone`) in a real browser: Debian's chromium, driven by
Playwright, with a fake microphone that plays a tone (`--use-file-for-fake-audio-capture`).
The page logs in over its JSON API, registers with SIP.js over the web listener's `/ws`, and
its calls carry WebRTC media (ICE-lite, DTLS-SRTP) through the PBX.

What each test hears is checked by frequency: a baresip phone's recording (media.py's
analyse_tone), and in the page, an AnalyserNode on the remote stream (dominant frequency).

- a wrong password shows its message; the right one registers (`pbx registration list`);
- a microphone the browser denies shows its message, and no call starts;
- the page calls a baresip extension: each side hears the other's tone; DTMF from the
  page's keypad reaches baresip; hold, resume and mute;
- baresip calls the page: it rings with the caller's name, answers, hears baresip's tone;
- the page calls `600` (echo) and hears its own tone back;
- page to page (two browsers with two tones, two extensions);
- an extension with baresip and a page: both ring, baresip answers, the page stops ringing;
- a page reloaded mid-call: the call ends, with a CDR;
- the directory with presence, the history and a voicemail message played in the page;
- the PBX stopped: the page says the connection is lost, and registers again by itself once
  the PBX is back;
- over HTTPS (`[web] tls`), the page registers over `wss:` and calls.

Screenshots (idle, at a phone's width, ringing, in call, directory, voicemail) go to PBX_E2E_SCREENSHOTS when set
(docs/screenshots/ holds the committed ones). Addresses: baresip phones 127.0.83.x.
"""

import os
import re
import time

import pytest

from baresip_phone import BaresipPhone, wait_file_stable
from callhelpers import wait_cdr
from conftest import CHROMIUM, DB, require, run
from media import analyse_tone, write_tone_wav

PAGE_A, PAGE_B, DESK, SHARED = 3701, 3702, 3703, 3704
TONE_A, TONE_B, TONE_DESK = 1000, 640, 440
BARESIP_IP = "127.0.83.1"
SHARED_IP = "127.0.83.2"

PLAN = """\
# written by tests/e2e/test_phone_page.py
[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "600"
steps = ["answer", "echo"]

[[context.staff.rule]]
extension = true
steps = [{ dial = { targets = ["${number}"], timeout = "20s" } }]
"""

NAMES = {PAGE_A: "Ada Lovelace", PAGE_B: "Bob Page", DESK: "Desk Phone", SHARED: "Sam Shared"}


def pw(n):
    return f"page{n}"


@pytest.fixture(scope="module")
def page_pbx(pbx_factory):
    p = pbx_factory("phonepage", dialplan=PLAN)
    for n, name in NAMES.items():
        p.add_extension(n, pw(n), name=name)
    return p.start()


def launch(pw_, wav):
    return pw_.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-loopback-in-peer-connection"])


@pytest.fixture(scope="module")
def browsers(tmp_path_factory):
    """Two chromium processes, one per fake microphone tone: (TONE_A browser, TONE_B one)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM} (run scripts/install-test-deps.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("PyPI playwright is missing (run scripts/install-test-deps.sh)")
    d = tmp_path_factory.mktemp("tones")
    wavs = []
    for f in (TONE_A, TONE_B):
        path = str(d / f"tone{f}.wav")
        write_tone_wav(path, f, 2, rate=48000)
        wavs.append(path)
    with sync_playwright() as p:
        a, b = launch(p, wavs[0]), launch(p, wavs[1])
        yield a, b
        a.close()
        b.close()


@pytest.fixture
def pages(browsers, page_pbx):
    """open(which, number) -> a logged-in, registered page; all closed after the test."""
    opened = []

    def open_page(which, number, password=None, register=True):
        ctx = browsers[which].new_context(viewport={"width": 1000, "height": 720})
        opened.append(ctx)
        page = ctx.new_page()
        page.goto(f"http://127.0.0.1:{page_pbx.web}/phone")
        page.wait_for_selector("#login-form", state="visible")
        page.fill("#login-extension", str(number))
        page.fill("#login-password", password or pw(number))
        page.click("#login-form button[type=submit]")
        if register:
            page.wait_for_selector('#status[data-state="registered"]', timeout=10000)
        return page

    yield open_page
    for ctx in opened:
        try:
            ctx.close()
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass


@pytest.fixture
def desk(tmp_path):
    """make(number, ip, tone, answer, seconds) -> a started, registered baresip playing
    `tone` for `seconds` (then silence); stopped after."""
    made = []

    def make(pbx, number, ip, tone=TONE_DESK, answer="auto", seconds=2):
        wav = str(tmp_path / f"desk{number}-{seconds}s.wav")
        write_tone_wav(wav, tone, seconds)
        phone = BaresipPhone(tmp_path, number, pw(number), server=pbx.hostport("udp"),
                             local_ip=ip, play=wav, answer=answer, call_seconds=20)
        made.append(phone)
        phone.start()
        assert phone.wait_registered(), phone.log()
        return phone

    yield make
    for p in made:
        p.stop()


SHOTS = os.environ.get("PBX_E2E_SCREENSHOTS")


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"phone-{name}.png"))


# The dominant frequency of the page's received audio (the remote stream of #remote).
HEARD = """async () => {
  const stream = document.getElementById('remote').srcObject;
  if (!stream || !stream.getAudioTracks().length) return null;
  const ctx = new AudioContext();
  await ctx.resume();
  const an = ctx.createAnalyser();
  an.fftSize = 8192;
  ctx.createMediaStreamSource(stream).connect(an);
  await new Promise((r) => setTimeout(r, 600));
  const data = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(data);
  await ctx.close();
  let best = 1;
  for (let i = 2; i < data.length; i++) if (data[i] > data[best]) best = i;
  return { freq: best * ctx.sampleRate / an.fftSize, db: data[best] };
}"""


def wait_hears(page, freq, timeout=8.0, tol=25.0):
    """Polls the page's received audio until its dominant frequency is `freq`."""
    heard = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        h = page.evaluate(HEARD)
        heard.append(h)
        if h and abs(h["freq"] - freq) <= tol and h["db"] > -70:
            return h
        time.sleep(0.2)
    pytest.fail(f"the page never heard {freq} Hz: {heard[-5:]}")


def wait_in_call(page, timeout=10000):
    page.wait_for_function(
        "() => document.getElementById('call-state').textContent === 'In call' "
        "&& !document.getElementById('incall').hidden", timeout=timeout)


def wait_idle(page, timeout=10000):
    page.wait_for_selector("#idle", state="visible", timeout=timeout)


def dial(page, number):
    page.fill("#number", str(number))
    page.click("#call")


def wait_recorded(phone, seconds=2.0, timeout=10.0):
    """Until baresip has recorded `seconds` of the call (8 kHz, 16-bit mono) while it is up."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        rec = phone.recording()
        if rec and os.path.getsize(rec) > 44 + int(16000 * seconds):
            return
        time.sleep(0.2)
    pytest.fail(f"baresip recorded less than {seconds} s\n{phone.log()}")


def recording_tone(phone):
    rec = phone.recording()
    assert rec and wait_file_stable(rec), phone.log()
    return analyse_tone(rec)


# ------------------------------------------------------------------------------------ tests


def test_wrong_password_shows_its_message_and_the_right_one_registers(pages, page_pbx):
    page = pages(0, PAGE_A, password="wrong", register=False)
    page.wait_for_selector("#login-error", state="visible")
    assert page.text_content("#login-error") == "wrong extension or password"
    assert page.is_hidden("#app")

    page.fill("#login-password", pw(PAGE_A))
    page.click("#login-form button[type=submit]")
    page.wait_for_selector('#status[data-state="registered"]', timeout=10000)
    assert page.text_content("#who") == f"{NAMES[PAGE_A]} · {PAGE_A}"
    lines = page_pbx.wait_bindings([PAGE_A], lambda b: str(PAGE_A) in b).get(str(PAGE_A))
    assert lines and all(re.search(r"\bws\b", ln, re.I) for ln in lines), lines
    shot(page, "idle")
    page.set_viewport_size({"width": 390, "height": 780})     # a phone's width
    shot(page, "narrow")


def test_a_denied_microphone_shows_its_message(browsers, page_pbx):
    # a browser that asks (no --use-fake-ui-for-media-stream) and a context that was given
    # no permission: headless chromium refuses the microphone, as after a click on "Block"
    b = browsers[0].browser_type.launch(executable_path=CHROMIUM, headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--use-fake-device-for-media-stream"])
    try:
        page = b.new_page()
        page.goto(f"http://127.0.0.1:{page_pbx.web}/phone")
        page.fill("#login-extension", str(PAGE_A))
        page.fill("#login-password", pw(PAGE_A))
        page.click("#login-form button[type=submit]")
        page.wait_for_selector('#status[data-state="registered"]', timeout=10000)
        dial(page, 600)
        page.wait_for_selector("#notice", state="visible")
        assert "denied the microphone" in page.text_content("#notice")
        assert page.is_visible("#idle"), "no call was started"
    finally:
        b.close()


def test_page_calls_baresip_and_both_hear_each_other(pages, desk, page_pbx):
    phone = desk(page_pbx, DESK, BARESIP_IP)
    page = pages(0, PAGE_A)
    dial(page, DESK)
    wait_in_call(page)
    wait_hears(page, TONE_DESK)
    shot(page, "in-call")
    wait_recorded(phone)     # baresip records the page's tone for a while
    # DTMF from the keypad: RFC 4733 events, which baresip reports as keys
    page.click("#keypad")
    page.click('#dtmf-pad button[data-key="5"]')
    key = phone.wait_event({"CALL_DTMF_START"}, 5)
    assert key is not None and key.get("param") == "5", phone.log()
    # hold and resume (re-INVITEs answered by the PBX), mute
    page.click("#hold")
    page.wait_for_function("() => document.getElementById('call-state').textContent === 'On hold'")
    page.click("#hold")
    wait_in_call(page)
    page.click("#mute")
    assert page.get_attribute("#mute", "aria-pressed") == "true"
    page.click("#hangup")
    wait_idle(page)
    row = wait_cdr(page_pbx, PAGE_A, DESK)
    assert row["disposition"] == "answered", row
    tone = recording_tone(phone)
    assert tone.has_tone(TONE_A, min_seconds=1.0), str(tone)


def test_baresip_calls_the_page_which_rings_and_answers(pages, desk, page_pbx):
    phone = desk(page_pbx, DESK, BARESIP_IP, answer="manual")
    page = pages(0, PAGE_A)
    phone.dial(str(PAGE_A))
    page.wait_for_selector("#ringing", state="visible", timeout=10000)
    # baresip sends no display name: the page names the caller from the directory
    page.wait_for_function("(name) => document.getElementById('ringing-name').textContent === name",
                           arg=NAMES[DESK], timeout=5000)
    assert page.text_content("#ringing-number") == str(DESK)
    shot(page, "ringing")
    page.click("#answer")
    wait_in_call(page)
    wait_hears(page, TONE_DESK)
    wait_recorded(phone)
    phone.hangup()
    wait_idle(page)
    row = wait_cdr(page_pbx, DESK, PAGE_A)
    assert row["disposition"] == "answered", row
    tone = recording_tone(phone)
    assert tone.has_tone(TONE_A, min_seconds=1.0), str(tone)


def test_page_calls_the_echo_and_hears_itself(pages):
    page = pages(1, PAGE_B)
    dial(page, 600)
    wait_in_call(page)
    wait_hears(page, TONE_B)
    page.click("#hangup")
    wait_idle(page)


def test_page_calls_page(pages, page_pbx):
    a = pages(0, PAGE_A)
    b = pages(1, PAGE_B)
    dial(a, PAGE_B)
    b.wait_for_selector("#ringing", state="visible", timeout=10000)
    assert b.text_content("#ringing-name") == NAMES[PAGE_A]
    b.click("#answer")
    wait_in_call(a)
    wait_in_call(b)
    wait_hears(a, TONE_B)
    wait_hears(b, TONE_A)
    b.click("#hangup")
    wait_idle(a)
    wait_idle(b)
    row = wait_cdr(page_pbx, PAGE_A, PAGE_B)
    assert row["disposition"] == "answered", row


def test_desk_phone_and_page_of_one_extension_ring_together(pages, desk, page_pbx):
    phone = desk(page_pbx, SHARED, SHARED_IP, answer="manual")
    shared = pages(1, SHARED)
    caller = pages(0, PAGE_A)
    dial(caller, SHARED)
    shared.wait_for_selector("#ringing", state="visible", timeout=10000)
    incoming = phone.wait_event({"CALL_INCOMING"}, 10)
    assert incoming is not None, phone.log()
    phone.command("accept")
    wait_in_call(caller)
    # the page stops ringing as soon as the desk phone has the call (RFC 3261 CANCEL)
    wait_idle(shared, timeout=5000)
    wait_hears(caller, TONE_DESK)
    caller.click("#hangup")
    wait_idle(caller)
    row = wait_cdr(page_pbx, PAGE_A, SHARED)
    assert row["disposition"] == "answered", row


def test_page_reloaded_mid_call_ends_the_call_with_a_cdr(pages, desk, page_pbx):
    phone = desk(page_pbx, DESK, BARESIP_IP)
    page = pages(0, PAGE_A)
    dial(page, DESK)
    wait_in_call(page)
    page.reload()
    page.wait_for_selector("#login-form", state="visible")
    # the extension is filled in again (the session cookie is kept), the password is not
    assert page.input_value("#login-extension") == str(PAGE_A)
    closed = phone.wait_event({"CALL_CLOSED"}, 10)
    assert closed is not None, phone.log()
    row = wait_cdr(page_pbx, PAGE_A, DESK)
    assert row["disposition"] == "answered", row


def sql(pbx, statement):
    if DB == "sqlite":
        require("sqlite3")
        argv = ["sqlite3", "-cmd", ".timeout 5000", os.path.join(pbx.dir, "data", "pbx.db"),
                statement]
    else:
        argv = ["psql", pbx.db_url, "-v", "ON_ERROR_STOP=1", "-qc", statement]
    r = run(argv)
    assert r.returncode == 0, f"{argv}: {r.stderr}"


def test_directory_history_and_voicemail_in_the_page(pages, page_pbx):
    storage = os.path.join(page_pbx.dir, "data", "voicemail")
    os.makedirs(storage, exist_ok=True)
    path = os.path.join(storage, "phone-page-test.wav")
    write_tone_wav(path, 800, 2)
    sql(page_pbx, "INSERT INTO voicemail_messages (mailbox, folder, caller_number, "
                  "caller_name, received_at, duration_ms, path) VALUES "
                  f"('{PAGE_A}', 'new', '{DESK}', 'Desk Phone', 1700000000, 2000, '{path}')")
    b = pages(1, PAGE_B)
    a = pages(0, PAGE_A)
    row = a.locator(f'#directory li[data-number="{PAGE_B}"]')
    row.wait_for()
    a.wait_for_function(
        f"() => document.querySelector('#directory li[data-number=\"{PAGE_B}\"]')"
        "?.dataset.presence === 'online'")
    assert a.locator(f'#directory li[data-number="{PAGE_A}"]').count() == 0, "not oneself"
    a.fill("#search", "bob")
    a.wait_for_function("() => document.querySelectorAll('#directory li').length === 1")
    shot(a, "directory")
    # dial by name: a name that matches one colleague calls them
    dial(a, "Bob")
    b.wait_for_selector("#ringing", state="visible", timeout=10000)
    b.click("#reject")
    wait_idle(a)
    a.wait_for_selector("#notice", state="visible")
    assert a.text_content("#notice") == f"{PAGE_B} did not take the call.", \
        a.text_content("#notice")
    b.wait_for_selector("#idle", state="visible")

    a.click('.tabs button[data-tab="history"]')
    a.wait_for_selector("#history li .main")
    assert str(PAGE_B) in a.text_content("#history")

    a.click('.tabs button[data-tab="voicemail"]')
    a.wait_for_selector("#voicemail li.vm")
    assert "Desk Phone" in a.text_content("#voicemail")
    seconds = a.evaluate("""() => new Promise((ok, fail) => {
        const audio = document.querySelector('#voicemail audio');
        audio.addEventListener('loadedmetadata', () => ok(audio.duration), { once: true });
        audio.addEventListener('error', () => fail(new Error('audio error')), { once: true });
        audio.load();
    })""")
    assert 1.5 < seconds < 2.5, seconds
    shot(a, "voicemail")


def test_a_lost_connection_is_shown_and_the_page_reconnects(pages, page_pbx):
    page = pages(0, PAGE_A)
    page_pbx.stop()
    try:
        page.wait_for_selector('#status[data-state="offline"]', timeout=10000)
        page.wait_for_selector("#notice", state="visible")
        assert "connection to the PBX was lost" in page.text_content("#notice")
    finally:
        page_pbx.start()
    # it reconnects by itself and registers again (a binding over the new socket)
    page.wait_for_selector('#status[data-state="registered"]', timeout=20000)
    assert page.is_hidden("#notice")
    lines = page_pbx.wait_bindings([PAGE_A], lambda b: str(PAGE_A) in b).get(str(PAGE_A))
    assert lines, page_pbx.registration_lines()


def test_over_https_the_page_registers_over_wss_and_calls(browsers, pbx_factory):
    """`[web] tls`: the page is served over HTTPS (the PBX's self-signed certificate,
    accepted by the test as a user would once) and its SIP goes over `wss:` to `/ws`."""
    p = pbx_factory("phonepage-tls", dialplan=PLAN, web_tls=True)
    p.add_extension(PAGE_B, pw(PAGE_B), name=NAMES[PAGE_B])
    p.start()
    ctx = browsers[1].new_context(ignore_https_errors=True)
    try:
        page = ctx.new_page()
        page.goto(f"https://127.0.0.1:{p.web}/phone")
        page.fill("#login-extension", str(PAGE_B))
        page.fill("#login-password", pw(PAGE_B))
        page.click("#login-form button[type=submit]")
        page.wait_for_selector('#status[data-state="registered"]', timeout=10000)
        lines = p.wait_bindings([PAGE_B], lambda b: str(PAGE_B) in b).get(str(PAGE_B))
        assert lines and all(re.search(r"\bwss\b", ln, re.I) for ln in lines), lines
        dial(page, 600)
        wait_in_call(page)
        wait_hears(page, TONE_B)
        page.click("#hangup")
        wait_idle(page)
    finally:
        ctx.close()
