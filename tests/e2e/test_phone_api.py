"""The browser phone's server side (`/phone/...` on the web listener) against the real PBX:
login with the extension's SIP password, the directory with presence from the engine (a
colleague registered over `/ws` shows online), the extension's own voicemail and its audio
(another mailbox's message refused), and failed logins banning the source for SIP over
WebSocket too (one guard)."""

import http.client
import json
import os

import pytest
from websockets.exceptions import InvalidStatus

from conftest import DB, MAX_AUTH_FAILURES, require, run
from wsclient import WsPhone, open_socket

IP_PAGE = "127.0.79.1"
IP_BROWSER = "127.0.79.2"
IP_GUESSER = "127.0.79.9"


@pytest.fixture(scope="module")
def phone_pbx(pbx_factory):
    p = pbx_factory("phone")
    for n, name in ((1001, "Alice"), (1002, "Bob"), (1003, "Carol")):
        p.add_extension(n, f"pw{n}", name=name)
    return p.start()


def call(pbx, method, path, body=None, cookie="", ip=IP_PAGE, headers=None):
    """(status, headers, body bytes) of one request from `ip`."""
    conn = http.client.HTTPConnection("127.0.0.1", pbx.web, timeout=5, source_address=(ip, 0))
    try:
        hdrs = dict(headers or {})
        if cookie:
            hdrs["Cookie"] = cookie
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def login(pbx, number, password, ip=IP_PAGE):
    status, headers, body = call(pbx, "POST", "/phone/login",
                                 {"extension": str(number), "password": password}, ip=ip)
    cookie = None
    for value in headers.get_all("Set-Cookie") or []:
        if value.startswith("pbx_phone="):
            cookie = value.split(";", 1)[0]
    return status, cookie, json.loads(body or b"null")


def test_login_directory_and_presence(phone_pbx):
    status, _, body = login(phone_pbx, 1001, "wrong")
    assert status == 401 and body["error"] == "wrong extension or password", body
    status, cookie, me = login(phone_pbx, 1001, "pw1001")
    assert status == 200 and cookie, me
    assert me["extension"] == "1001" and me["name"] == "Alice" and me["domain"] == "pbx.test"

    browser = WsPhone(f"ws://127.0.0.1:{phone_pbx.web}/ws", 1002, "pw1002", local_ip=IP_BROWSER)
    try:
        assert browser.register().status == 200
        status, _, body = call(phone_pbx, "GET", "/phone/api/directory", cookie=cookie)
        assert status == 200
        rows = {r["number"]: r for r in json.loads(body)}
        assert rows["1002"]["presence"] == "online" and rows["1002"]["name"] == "Bob", rows
        assert rows["1003"]["presence"] == "offline", rows
        status, _, body = call(phone_pbx, "GET", "/phone/api/directory?q=car", cookie=cookie)
        assert [r["number"] for r in json.loads(body)] == ["1003"]
    finally:
        browser.close()
    status, _, _ = call(phone_pbx, "GET", "/phone/api/directory")
    assert status == 401, "no directory without a login"

    status, _, body = call(phone_pbx, "GET", "/phone/api/calls", cookie=cookie)
    assert status == 200 and json.loads(body) == []


def sql(pbx, statement):
    if DB == "sqlite":
        require("sqlite3")
        argv = ["sqlite3", "-cmd", ".timeout 5000", os.path.join(pbx.dir, "data", "pbx.db"),
                statement]
    else:
        argv = ["psql", pbx.db_url, "-v", "ON_ERROR_STOP=1", "-qc", statement]
    r = run(argv)
    assert r.returncode == 0, f"{argv}: {r.stderr}"


def test_voicemail_is_the_extensions_own(phone_pbx):
    storage = os.path.join(phone_pbx.dir, "data", "voicemail")
    os.makedirs(storage, exist_ok=True)
    for mailbox in ("1001", "1002"):
        path = os.path.join(storage, f"phone-test-{mailbox}.wav")
        with open(path, "wb") as f:
            f.write(b"RIFF audio of " + mailbox.encode())
        sql(phone_pbx, "INSERT INTO voicemail_messages (mailbox, folder, caller_number, "
                       "caller_name, received_at, duration_ms, path) VALUES "
                       f"('{mailbox}', 'new', '1003', 'Carol', 1, 3000, '{path}')")
    _, cookie, _ = login(phone_pbx, 1001, "pw1001")
    status, _, body = call(phone_pbx, "GET", "/phone/api/voicemail", cookie=cookie)
    assert status == 200
    messages = json.loads(body)
    assert len(messages) == 1 and messages[0]["caller_name"] == "Carol", messages
    status, headers, audio = call(phone_pbx, "GET", messages[0]["audio"], cookie=cookie)
    assert status == 200 and audio == b"RIFF audio of 1001"
    assert headers["Content-Type"] == "audio/wav"
    # 1002's message, asked for by its id (the next one): refused.
    theirs = messages[0]["audio"].replace(f"/{messages[0]['id']}/", f"/{messages[0]['id'] + 1}/")
    status, _, body = call(phone_pbx, "GET", theirs, cookie=cookie)
    assert status == 404 and b"1002" not in body


def test_failed_logins_ban_the_source_for_sip_over_websocket_too(phone_pbx):
    for _ in range(MAX_AUTH_FAILURES - 1):
        status, _, _ = login(phone_pbx, 1003, "guess", ip=IP_GUESSER)
        assert status == 401
    status, _, body = login(phone_pbx, 1003, "guess", ip=IP_GUESSER)
    assert status == 403, body
    status, _, _ = login(phone_pbx, 1003, "pw1003", ip=IP_GUESSER)
    assert status == 403, "banned, even with the password"
    assert IP_GUESSER in phone_pbx.ban_list()
    with pytest.raises(InvalidStatus) as refused:
        open_socket(f"ws://127.0.0.1:{phone_pbx.web}/ws", IP_GUESSER)
    assert refused.value.response.status_code == 403
    phone_pbx.cli("ban", "remove", IP_GUESSER)
