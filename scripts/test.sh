#!/usr/bin/env bash
# test.sh - THE test command: installs what the tests need, then runs every test.
#
#   ./scripts/test.sh
#
# Steps (each one runs even when an earlier one failed, so the summary shows everything):
#   deps       scripts/install-test-deps.sh (Debian 12, root; idempotent; SKIP_INSTALL=1 skips)
#   postgres   a throw-away PostgreSQL: initdb into a temp dir as user `postgres` (root cannot
#              run it), listening on 127.0.0.1 on a free port, stopped and deleted at exit;
#              exports PBX_TEST_POSTGRES_URL (database pbx_test, for the Rust store tests) and
#              PBX_E2E_POSTGRES_URL (database postgres, where the e2e suite creates one fresh
#              database per PBX instance)
#   fmt        cargo fmt --all --check
#   clippy     cargo clippy --workspace --all-targets -- -D warnings
#   unit       cargo test --workspace
#   build      cargo build --release -p pbx
#   e2e-sqlite pytest tests/e2e against the release binary, SQLite databases
#   e2e-postgres  the same with PBX_E2E_DB=postgres, but the store_independent modules
# Env: CARGO_TARGET_DIR (default target), SKIP_INSTALL=1, PYTEST_ARGS (extra pytest args),
#      ONLY="fmt clippy ..." (run only these steps; postgres and build are added as needed).
# Exit: 0 when every step passed; 1 otherwise (the summary names the failed steps).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export PBX_BIN=${PBX_BIN:-$TARGET/release/pbx}
START=$(date +%s)
declare -a RESULTS=()
FAILED=0

step_wanted() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# run_step NAME CMD...: runs, times and records one step
run_step() {
  local name=$1; shift
  step_wanted "$name" || return 0
  local t0=$(date +%s)
  echo "==== $name: $*"
  "$@"
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ $rc -eq 0 ]; then
    RESULTS+=("PASS  $name (${dt}s)")
  else
    RESULTS+=("FAIL  $name (${dt}s, exit $rc)")
    FAILED=1
  fi
  echo "==== $name: exit $rc after ${dt}s"
  return $rc
}

summary() {
  echo
  echo "==== summary ($(( $(date +%s) - START ))s)"
  printf '  %s\n' "${RESULTS[@]}"
  if [ $FAILED -eq 0 ]; then echo "ALL PASSED"; else echo "SOME STEPS FAILED"; fi
}

# ---------------------------------------------------------------- throw-away PostgreSQL
PG_DIR=""
PG_CTL=""
PG_USER=postgres
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}
pg_stop() {
  if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
    as_pg "$PG_CTL" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  [ -n "$PG_DIR" ] && rm -rf "$PG_DIR"
  PG_DIR=""
}
pg_start() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql"; return 1; }
  PG_CTL=$bin/pg_ctl
  if [ "$(id -u)" = 0 ]; then
    # root cannot run postgres: use the package's `postgres` user, or make one
    id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER" \
      || { echo "cannot create user $PG_USER"; return 1; }
  else
    PG_USER=$(id -un)
  fi
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pbx-pg.XXXXXX")
  chmod 755 "$PG_DIR"
  [ "$(id -u)" = 0 ] && chown "$PG_USER" "$PG_DIR"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log"; return 1; }
  as_pg "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null || { cat "$PG_DIR/server.log"; return 1; }
  local base="postgres://postgres@127.0.0.1:$port"
  psql "$base/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE pbx_test" || return 1
  export PBX_TEST_POSTGRES_URL="$base/pbx_test"
  export PBX_E2E_POSTGRES_URL="$base/postgres"
  echo "postgres: $PBX_TEST_POSTGRES_URL (data in $PG_DIR)"
}
trap 'pg_stop' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

e2e() {
  local db=$1; shift
  [ -x "$PBX_BIN" ] || { echo "no PBX binary at $PBX_BIN (the build step failed)"; return 1; }
  # -p no:cacheprovider: nothing written into the source tree
  # --durations: the slowest tests named in the log, to see where the suite's time goes
  # On PostgreSQL, modules marked store_independent (protocol and media behaviour that no
  # store adapter changes) are not run a second time (tests/README.md).
  local only_store=()
  [ "$db" = postgres ] && only_store=(-m "not store_independent")
  PBX_E2E_DB=$db python3 -m pytest tests/e2e -v -p no:cacheprovider --durations=25 \
    "${only_store[@]}" ${PYTEST_ARGS:-}
}

# ---------------------------------------------------------------- the steps
if [ -z "${SKIP_INSTALL:-}" ]; then
  run_step deps ./scripts/install-test-deps.sh
fi
if step_wanted unit || step_wanted e2e-postgres; then
  ONLY_SAVE=${ONLY:-}; ONLY=""
  run_step postgres pg_start
  ONLY=$ONLY_SAVE
fi
run_step fmt cargo fmt --all --check
run_step clippy cargo clippy --workspace --all-targets -- -D warnings
run_step unit cargo test --workspace
if step_wanted build || step_wanted e2e-sqlite || step_wanted e2e-postgres; then
  ONLY_SAVE=${ONLY:-}; ONLY=""
  run_step build cargo build --release -p pbx
  ONLY=$ONLY_SAVE
fi
run_step e2e-sqlite e2e sqlite
if [ -n "${PBX_E2E_POSTGRES_URL:-}" ]; then
  run_step e2e-postgres e2e postgres
elif step_wanted e2e-postgres; then
  RESULTS+=("FAIL  e2e-postgres (no PostgreSQL: the postgres step failed)"); FAILED=1
fi

summary
exit $FAILED
