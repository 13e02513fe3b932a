"""Fixtures for the end-to-end tests: a real `pbx serve` in a throw-away config dir.

Environment:
  PBX_BIN                the binary (default: target/release/pbx of this repository)
  PBX_E2E_DB             sqlite (default) | postgres
  PBX_E2E_POSTGRES_URL   for postgres: a URL of a server where databases may be created
                         (default: PBX_TEST_POSTGRES_URL); every PBX instance gets a fresh database
A required tool or service that is missing makes the test FAIL (never skip) with a clear message.
"""

import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLIENTS = os.path.join(ROOT, "tests", "clients")
PBX_BIN = os.environ.get("PBX_BIN", os.path.join(ROOT, "target", "release", "pbx"))
DB = os.environ.get("PBX_E2E_DB", "sqlite")
PG_URL = os.environ.get("PBX_E2E_POSTGRES_URL") or os.environ.get("PBX_TEST_POSTGRES_URL", "")
DOMAIN = "pbx.test"
MAX_AUTH_FAILURES = 5


def require(*tools):
    for t in tools:
        if not shutil.which(t):
            pytest.fail(f"required tool {t!r} is not installed (run scripts/install-test-deps.sh)")


# Ports handed out by free_port in this run. They come from a block of their own, below the
# kernel's ephemeral range (32768-60999, where clients' port-0 sockets land) and above the
# RTP blocks (10000-20000): binding port 0 and closing it could hand one number out twice,
# or hand out a port that an outgoing connection takes a moment later.
_HANDED_OUT = set()
_PORT_BLOCK = (21000, 31999)


def free_port(kind=socket.SOCK_STREAM, ip="127.0.0.1"):
    """A port not handed out before in this run and free now on `ip` for TCP and UDP alike
    (`kind` is kept for the callers; every port is checked both ways)."""
    del kind
    for _ in range(1000):
        port = random.randint(*_PORT_BLOCK)
        if port in _HANDED_OUT or not _bindable(ip, port):
            continue
        _HANDED_OUT.add(port)
        return port
    pytest.fail(f"no free port left in {_PORT_BLOCK} on {ip}")


def free_port_pair(ip="127.0.0.1"):
    """Two consecutive ports, both as free_port() gives them: baresip listens for SIP on the
    first (UDP, TCP) and for TLS on the next."""
    for _ in range(1000):
        port = random.randint(_PORT_BLOCK[0], _PORT_BLOCK[1] - 1)
        pair = (port, port + 1)
        if any(p in _HANDED_OUT or not _bindable(ip, p) for p in pair):
            continue
        _HANDED_OUT.update(pair)
        return port
    pytest.fail(f"no two free ports left in {_PORT_BLOCK} on {ip}")


def _bindable(ip, port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((ip, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kw)


class Pbx:
    """One PBX: its config dir, ports, process, and CLI."""

    def __init__(self, base, name="pbx", extra_toml="", dialplan=None, web_tls=False,
                 websocket=False):
        """`extra_toml` is appended to the config file (whole sections, e.g. `[calls]`);
        `dialplan` (TOML text) is written to `dialplan.toml` next to the config, which names
        it in `[dialplan] file`; `web_tls` serves the web listener over HTTPS (`[web] tls`);
        `websocket` adds `ws:` and `wss:` listeners to `[sip] listen` (ports `self.ws`,
        `self.wss`)."""
        self.web_tls = web_tls
        self.web_scheme = "https" if web_tls else "http"
        if not os.access(PBX_BIN, os.X_OK):
            pytest.fail(f"no PBX binary at {PBX_BIN} (cargo build --release -p pbx, or set PBX_BIN)")
        self.dir = os.path.join(str(base), name)
        os.makedirs(self.dir)
        self.udp = free_port(socket.SOCK_DGRAM)
        self.tcp = free_port()
        self.tls = free_port()
        self.web = free_port()
        self.ws = free_port() if websocket else None
        self.wss = free_port() if websocket else None
        # each instance relays media on its own port block: instances never collide
        self.rtp_ports = rtp_port_block()
        # an `[rtp]` block in extra_toml adds keys to the generated [rtp] section (TOML does
        # not allow the table twice)
        # (and leading `[sip]` and `[security]` blocks add keys to theirs the same way, in
        # the order sip, rtp, security)
        self.sip_extra, extra_toml = leading_section(extra_toml, "sip")
        self.rtp_extra, extra_toml = leading_section(extra_toml, "rtp")
        self.security_extra, extra_toml = leading_section(extra_toml, "security")
        self.extra_toml = extra_toml
        self.proc = None
        self.logs = []
        self.pg_db = None
        self.db_url = self._database()
        self.config = os.path.join(self.dir, "pbx.toml")
        self.dialplan = None
        if dialplan is not None:
            self.dialplan = os.path.join(self.dir, "dialplan.toml")
            self.write_dialplan(dialplan)
            self.extra_toml += '\n[dialplan]\nfile = "dialplan.toml"\n'
        with open(self.config, "w") as f:
            f.write(self.toml())

    def _database(self):
        if DB == "sqlite":
            return "sqlite://data/pbx.db"
        if DB != "postgres":
            pytest.fail(f"PBX_E2E_DB={DB!r}: expected sqlite or postgres")
        if not PG_URL:
            pytest.fail("PBX_E2E_DB=postgres needs PBX_E2E_POSTGRES_URL or PBX_TEST_POSTGRES_URL "
                        "(scripts/test.sh starts a throw-away PostgreSQL and sets it)")
        require("psql")
        self.pg_db = "pbx_e2e_" + uuid.uuid4().hex[:12]
        r = run(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-qc", f"CREATE DATABASE {self.pg_db}"])
        if r.returncode != 0:
            pytest.fail(f"cannot create database on {PG_URL}: {r.stderr}")
        return urlunsplit(urlsplit(PG_URL)._replace(path="/" + self.pg_db))

    def toml(self, security=None):
        sec = security or {}
        return f"""# written by tests/e2e/conftest.py
[sip]
listen = ["udp:127.0.0.1:{self.udp}", "tcp:127.0.0.1:{self.tcp}", "tls:127.0.0.1:{self.tls}"{self._ws_listen()}]
domain = "{DOMAIN}"
{self.sip_extra}

[rtp]
ports = "{self.rtp_ports[0]}-{self.rtp_ports[1]}"
{self.rtp_extra}

[database]
url = "{self.db_url}"

[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"

[security]
max_auth_failures = {sec.get("max_auth_failures", MAX_AUTH_FAILURES)}
failure_window = "{sec.get("failure_window", "60s")}"
ban_for = "{sec.get("ban_for", "1h")}"
{sec.get("extra", "")}
{self.security_extra}

[web]
listen = "127.0.0.1:{self.web}"
{"tls = true" if self.web_tls else ""}

[voicemail]
storage = "data/voicemail"
{self.extra_toml}"""

    def _ws_listen(self):
        if self.ws is None:
            return ""
        return f', "ws:127.0.0.1:{self.ws}", "wss:127.0.0.1:{self.wss}"'

    # ------------------------------------------------------------------ dialplan

    def write_dialplan(self, text, keep_mtime=False):
        """(Re)write the dialplan file. `keep_mtime`: give it back its previous modification
        time, so that only a SIGHUP (not the PBX's watch of the file) reloads it."""
        before = os.stat(self.dialplan) if keep_mtime else None
        with open(self.dialplan, "w") as f:
            f.write(text)
        if before is not None:
            os.utime(self.dialplan, ns=(before.st_atime_ns, before.st_mtime_ns))

    def sighup(self):
        """SIGHUP to the running PBX (it reloads its dialplan)."""
        assert self.alive(), f"pbx serve is not running\n{self.log_tail()}"
        self.proc.send_signal(signal.SIGHUP)

    def log_text(self):
        """The whole log of the current (last started) `pbx serve`."""
        if not self.logs:
            return ""
        with open(self.logs[-1], errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, after=0, timeout=5.0):
        """The first match of regex `pattern` in the log from character `after` on, once
        there is one, else None after `timeout` s."""
        end = time.time() + timeout
        while True:
            m = re.compile(pattern).search(self.log_text(), after)
            if m is not None or time.time() >= end:
                return m
            time.sleep(0.1)

    # ------------------------------------------------------------------ CLI

    def cli(self, *args, check=True, timeout=120):
        r = run([PBX_BIN, *args, "--config", self.config], timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail(f"pbx {' '.join(args)} exited {r.returncode}\nstdout:\n{r.stdout}\n"
                        f"stderr:\n{r.stderr}")
        return r

    def add_extension(self, number, password, name=None, media_encryption=None):
        """`media_encryption`: required | optional | off (None: the PBX's default)."""
        args = ["extension", "add", str(number), "--password", password]
        if name:
            args += ["--name", name]
        if media_encryption:
            args += ["--media-encryption", media_encryption]
        self.cli(*args)

    def import_extensions(self, pairs):
        path = os.path.join(self.dir, f"import-{uuid.uuid4().hex[:6]}.csv")
        with open(path, "w") as f:
            f.write("number,password,name,email,pin\n")
            f.writelines(f"{n},{p},Ext {n},,\n" for n, p in pairs)
        self.cli("extension", "import", path)

    def registration_lines(self):
        """The lines of `pbx registration list` that describe a binding (they hold a SIP URI)."""
        out = self.cli("registration", "list").stdout
        return [ln for ln in out.splitlines() if re.search(r"\bsips?:", ln)]

    def bindings(self, numbers=None):
        """{extension: [lines]} from `pbx registration list`, optionally only for `numbers`."""
        want = {str(n) for n in numbers} if numbers is not None else None
        out = {}
        for ln in self.registration_lines():
            ext = binding_extension(ln)
            if ext and (want is None or ext in want):
                out.setdefault(ext, []).append(ln)
        return out

    def wait_bindings(self, numbers, ok, timeout=5.0):
        """bindings(numbers) once ok(it) holds, or the last one read after `timeout` s: the
        server writes bindings to the database just behind its 200 OK, and the CLI reads the
        database."""
        end = time.time() + timeout
        while True:
            found = self.bindings(numbers)
            if ok(found) or time.time() >= end:
                return found
            time.sleep(0.25)

    def ban_list(self):
        return self.cli("ban", "list").stdout

    def cdrs(self, limit=50):
        """`pbx cdr list` as dicts keyed by its (lower-case) column names: start, caller,
        called, disposition, duration, hangup, codec, encrypted (newest first)."""
        return parse_table(self.cli("cdr", "list", "--limit", str(limit)).stdout)

    def wait_cdr(self, caller, called, timeout=5.0):
        """The newest CDR row from `caller` to `called`, once there is one (the PBX writes it
        just after the call ends), else None."""
        end = time.time() + timeout
        while True:
            for row in self.cdrs():
                if same_party(row.get("caller"), caller) and same_party(row.get("called"), called):
                    return row
            if time.time() >= end:
                return None
            time.sleep(0.25)

    def in_rtp_range(self, port):
        return self.rtp_ports[0] <= port <= self.rtp_ports[1]

    # ------------------------------------------------------------------ process

    def start(self, timeout=30):
        log = os.path.join(self.dir, f"serve-{len(self.logs) + 1}.log")
        self.logs.append(log)
        self.logf = open(log, "wb")
        self.proc = subprocess.Popen([PBX_BIN, "serve", "--config", self.config], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                self.logf.close()
                pytest.fail(f"pbx serve exited {rc} at start-up\n{self.log_tail()}")
            if self.http_status("/healthz") == 200:
                return self
            time.sleep(0.2)
        self.proc.kill()
        self.proc.wait(5)
        self.proc = None
        self.logf.close()
        pytest.fail(f"GET /healthz not 200 within {timeout}s\n{self.log_tail()}")

    def stop(self, timeout=10):
        """SIGTERM; the PBX must exit 0 within `timeout` s (contract: stops cleanly)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is not None:
            self.logf.close()
            pytest.fail(f"pbx serve had already exited with {proc.returncode}\n{self.log_tail()}")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            self.logf.close()
            pytest.fail(f"pbx serve did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        self.logf.close()
        assert rc == 0, f"pbx serve exited {rc} on SIGTERM\n{self.log_tail()}"

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=40):
        if not self.logs:
            return ""
        try:
            with open(self.logs[-1], errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        return f"--- last {n} lines of {self.logs[-1]}:\n" + "\n".join(lines[-n:])

    def http_status(self, path):
        try:
            with urllib.request.urlopen(f"{self.web_scheme}://127.0.0.1:{self.web}{path}",
                                        timeout=2, context=self._web_ssl()) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def http_get(self, path):
        with urllib.request.urlopen(f"{self.web_scheme}://127.0.0.1:{self.web}{path}",
                                    timeout=5, context=self._web_ssl()) as r:
            return r.status, r.read().decode("utf-8", "replace")

    def _web_ssl(self):
        """For HTTPS: the PBX's self-signed certificate is not checked."""
        if not self.web_tls:
            return None
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def drop_database(self):
        if self.pg_db:
            run(["psql", PG_URL, "-qc", f"DROP DATABASE IF EXISTS {self.pg_db}"])

    def server(self, transport="udp"):
        return ("127.0.0.1", {"udp": self.udp, "tcp": self.tcp, "tls": self.tls}[transport])

    def hostport(self, transport="udp"):
        return "127.0.0.1:%d" % self.server(transport)[1]


def leading_section(extra_toml, name):
    """(body, rest): the keys of a `[name]` block at the start of `extra_toml`, and the rest."""
    head = f"[{name}]"
    if not extra_toml.lstrip().startswith(head):
        return "", extra_toml
    body = extra_toml.lstrip()[len(head):]
    cut = body.find("\n[")
    return (body, "") if cut < 0 else (body[:cut], body[cut:])


def rtp_port_block(size=200, low=10000, high=20000):
    """(first, last) of `size` consecutive ports, even first, all free for UDP on 127.0.0.1
    now, for one PBX's `[rtp] ports` (below the kernel's ephemeral range, where clients bind)."""
    for _ in range(100):
        base = random.randrange(low, high - size, 2)
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base, base + size - 1
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail(f"no block of {size} free UDP ports in {low}-{high}")


def same_party(cell, number):
    """A CDR caller/called cell names extension `number` (the number alone, or a URI with it
    as user part)."""
    return bool(cell) and re.search(rf"(^|[^0-9]){re.escape(str(number))}([^0-9]|$)", cell) is not None


def parse_table(text):
    """Rows of a CLI table (a header line of upper-case column names, cells left-aligned
    under them) as dicts with lower-case keys; cells may hold single spaces."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = lines[0]
    cols = [(m.group(0).lower(), m.start()) for m in re.finditer(r"\S+", header)]
    rows = []
    for ln in lines[1:]:
        row = {}
        for i, (name, start) in enumerate(cols):
            end = cols[i + 1][1] if i + 1 < len(cols) else None
            row[name] = ln[start:end].strip() if end is not None else ln[start:].strip()
        rows.append(row)
    return rows


def binding_extension(line):
    """The extension a `registration list` line is about: its first all-digit field, else the
    user part of its first SIP URI."""
    for tok in re.split(r"[\s|,]+", line.strip()):
        if tok.isdigit():
            return tok
        if tok:
            break
    m = re.search(r"sips?:([^@;>\s]+)@", line)
    return m.group(1) if m else None


@pytest.fixture(scope="module")
def pbx_factory(tmp_path_factory):
    """Make (not start) PBX instances; every one is stopped (exit 0 asserted) at the end."""
    made = []

    def make(name="pbx", extra_toml="", dialplan=None, web_tls=False, websocket=False):
        p = Pbx(tmp_path_factory.mktemp("e2e"), name, extra_toml, dialplan, web_tls, websocket)
        made.append(p)
        return p

    yield make
    errors = []
    for p in made:
        try:
            p.stop()
        except BaseException as e:  # noqa: BLE001 - report every instance, then fail
            errors.append(str(e))
        p.drop_database()
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="module")
def pbx(pbx_factory):
    """A running PBX with extensions 1001-1009 (password secret<N>, added one by one with
    `pbx extension add`) and 2000-2599 (password pw<N>, one `pbx extension import`)."""
    p = pbx_factory()
    for n in range(1001, 1010):
        p.add_extension(n, f"secret{n}", name=f"Phone {n}")
    p.import_extensions([(n, f"pw{n}") for n in range(2000, 2600)])
    return p.start()


@pytest.fixture
def phones():
    """For the call tests: make(pbx, number, local_ip="127.0.0.1", register=True, **kw) -> a
    `callclient.Phone` for extension `number` (password pw<N>), registered over UDP (200
    asserted); all are un-registered and closed after the test, so that no binding left by
    one test rings in the next."""
    from callclient import Phone        # here: callclient imports this module
    made = []

    def make(pbx, number, local_ip="127.0.0.1", register=True, **kw):
        p = Phone(number, f"pw{number}", pbx.server("udp"), local_ip=local_ip, **kw)
        made.append(p)
        if register:
            r = p.register(expires=120)
            assert r is not None and r.status == 200, \
                f"{number}@{local_ip} could not register: {r}\n{pbx.log_tail()}"
        return p

    yield make
    for p in made:
        try:
            p.register(expires=0, timeout=1)
        except Exception:  # noqa: BLE001 - best effort clean-up
            pass
        p.close()


# ---------------------------------------------------------------------- the browser (web admin)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = os.environ.get("PBX_E2E_SCREENSHOTS")
    if out:
        out = out if os.path.isabs(out) else os.path.join(ROOT, out)
        os.makedirs(out, exist_ok=True)
        return out
    return str(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM} (run scripts/install-test-deps.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("PyPI playwright is missing (run scripts/install-test-deps.sh)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()
