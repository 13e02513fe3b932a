#!/usr/bin/env bash
# install-test-deps.sh - installs what ./scripts/test.sh needs, on Debian 12, as root.
#   Idempotent: only missing Debian packages are installed (apt-get update runs only then),
#   pytest is pip-installed only when `python3` cannot import it, rustfmt/clippy are added
#   with rustup only when cargo lacks them.
#   Packages: sip-tester (SIPp 3.6.1), baresip-core, libasound2, sox, openssl (the client
#   recipes in tests/clients), postgresql (the throw-away server of the test run), sqlite3,
#   procps, iproute2, python3, ca-certificates, chromium + fonts-dejavu-core and zbar-tools
#   (the web admin's browser test and its QR decoder); from PyPI pytest, sipvicious (the
#   attacker tools of the security tests), aiosmtpd (the SMTP server of the mail test), dnslib (the
#   DNS server of the trunk DNS test),
#   playwright (drives Debian's chromium through executable_path; never `playwright
#   install`), schemathesis (fuzzes the REST API against its OpenAPI document), websockets
#   (the SIP-over-WebSocket client); nodejs + npm, and JsSIP + ws from npm into
#   tests/clients/jssip (pinned by its lock file).
#   Exit: 0 when everything is there afterwards, 1 otherwise.
set -euo pipefail
APT_PKGS=(sip-tester baresip-core libasound2 sox openssl postgresql sqlite3 procps iproute2
          python3 ca-certificates chromium fonts-dejavu-core zbar-tools kamailio
          kamailio-tls-modules nodejs)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install-test-deps: missing ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # the postgresql package tries to start its own cluster; tests run their own, so a
  # failure to start that one (no init system in a container) is not an error here
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import pytest' 2>/dev/null; then
  echo "install-test-deps: pip install pytest"
  python3 -m pip install --quiet --disable-pip-version-check 'pytest>=7'
fi

# sipvicious (svmap, svwar, svcrack): the attackers of tests/e2e/test_sipvicious.py
if ! python3 -c 'import sipvicious' 2>/dev/null; then
  echo "install-test-deps: pip install sipvicious"
  python3 -m pip install --quiet --disable-pip-version-check 'sipvicious==0.3.8'
fi

# aiosmtpd: the real SMTP server of tests/e2e/test_mail.py (tests/clients/smtp/smtp-sink.py)
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  echo "install-test-deps: pip install aiosmtpd"
  python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd>=1.4'
fi

# dnslib: the DNS server (NAPTR, SRV, A) of tests/e2e/test_trunk_dns.py
if ! python3 -c 'import dnslib' 2>/dev/null; then
  echo "install-test-deps: pip install dnslib"
  python3 -m pip install --quiet --disable-pip-version-check 'dnslib==0.9.26'
fi

# aiortc: the third-party WebRTC stack of tests/e2e/test_webrtc_media.py (ICE, DTLS-SRTP)
if ! python3 -c 'import aiortc' 2>/dev/null; then
  echo "install-test-deps: pip install aiortc"
  python3 -m pip install --quiet --disable-pip-version-check 'aiortc==1.16.0'
fi

# playwright: tests/e2e/test_web_admin.py drives /usr/bin/chromium with it
if ! python3 -c 'import playwright.sync_api' 2>/dev/null; then
  echo "install-test-deps: pip install playwright"
  python3 -m pip install --quiet --disable-pip-version-check 'playwright>=1.40'
fi

# websockets: the SIP-over-WebSocket client of tests/e2e/test_websocket.py (tests/e2e/wsclient.py)
if ! python3 -c 'import websockets' 2>/dev/null; then
  echo "install-test-deps: pip install websockets"
  python3 -m pip install --quiet --disable-pip-version-check 'websockets==17.4'
fi

# JsSIP and ws from npm, pinned by tests/clients/jssip/package-lock.json: the third-party
# SIP-over-WebSocket client of tests/e2e/test_websocket_jssip.py
JSSIP_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/clients/jssip"
if ! command -v npm >/dev/null; then
  # Debian's nodejs comes without npm (other builds of nodejs bring their own).
  echo "install-test-deps: installing npm"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
if [ ! -f "$JSSIP_DIR/node_modules/jssip/package.json" ] || [ ! -f "$JSSIP_DIR/node_modules/ws/package.json" ]; then
  echo "install-test-deps: npm ci in tests/clients/jssip"
  (cd "$JSSIP_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi

# schemathesis: tests/e2e/test_web_admin_schema.py runs the API's OpenAPI document with it
if ! python3 -c 'import schemathesis' 2>/dev/null; then
  echo "install-test-deps: pip install schemathesis"
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
fi

if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

for t in sipp baresip sox openssl sqlite3 psql chromium zbarimg node; do
  command -v "$t" >/dev/null || { echo "install-test-deps: $t still missing" >&2; exit 1; }
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || { echo "install-test-deps: no initdb under /usr/lib/postgresql" >&2; exit 1; }
python3 -c 'import pytest' || exit 1
python3 -c 'import sipvicious' || exit 1
python3 -c 'import playwright.sync_api' || exit 1
python3 -c 'import aiosmtpd' || exit 1
python3 -c 'import dnslib' || exit 1
python3 -c 'import websockets' || exit 1
[ -f "$JSSIP_DIR/node_modules/jssip/package.json" ] || exit 1
python3 -c 'import schemathesis' || exit 1
python3 -c 'import aiortc' || exit 1
python3 -c 'import pylibsrtp' || exit 1
# PyAV comes with aiortc; test_applications_opus.py encodes and decodes with its libopus.
python3 -c "import av; av.codec.Codec('libopus', 'w')" || exit 1
echo "install-test-deps: ok"
