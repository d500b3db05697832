#!/usr/bin/env bash
# Run the unit and module tests of vmail.mailserver against a throwaway MariaDB.
#
# Starts its own mariadbd in a temporary datadir (unix socket + 127.0.0.1 on a
# free port), runs `pytest tests/unit tests/modules` with the venv's python and
# stops the server again. Exit status is pytest's (non-zero on any failure).
#
#   VENV=.venv scripts/test-modules.sh [extra pytest args]
#   VENV=.venv scripts/test-modules.sh tests/modules/test_lookups.py [-k ...]   # only these paths
#   KEEP_DB=1 scripts/test-modules.sh   # leave the server running (prints how to reach it)
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "test-modules: $PY not found (run make setup or set VENV)" >&2; exit 2; }

if ! { command -v mariadbd || [ -x /usr/sbin/mariadbd ]; } >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; then
    echo "test-modules: installing mariadb-server" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server mariadb-client >/dev/null
fi
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)

TMP=$(mktemp -d /tmp/vmail-modtest.XXXXXX)
chmod 0700 "$TMP"
DATADIR="$TMP/data"
SOCKET="$TMP/mysqld.sock"
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
USER_OPT=()
[ "$(id -u)" -ne 0 ] || USER_OPT=(--user=root)
PID=""

# shellcheck disable=SC2317  # invoked through trap
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        if [ -z "${KEEP_DB:-}" ]; then
            kill "$PID" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$PID" 2>/dev/null || true
        fi
    fi
    [ -n "${KEEP_DB:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mariadb-install-db --no-defaults --datadir="$DATADIR" "${USER_OPT[@]}" --auth-root-authentication-method=normal \
    --skip-test-db >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log" >&2; exit 2; }
"$MARIADBD" --no-defaults --datadir="$DATADIR" --socket="$SOCKET" --port="$PORT" --bind-address=127.0.0.1 \
    --pid-file="$TMP/mysqld.pid" --log-error="$TMP/error.log" --skip-name-resolve --innodb-buffer-pool-size=32M \
    --innodb-log-file-size=16M --innodb-flush-log-at-trx-commit=2 --skip-log-bin "${USER_OPT[@]}" &
PID=$!
for _ in $(seq 1 150); do
    [ -S "$SOCKET" ] && mariadb --no-defaults --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/error.log" >&2; exit 2; }
    sleep 0.2
done
mariadb --no-defaults --socket="$SOCKET" -uroot -e 'SELECT 1' >/dev/null || { cat "$TMP/error.log" >&2; exit 2; }
# root password for TCP tests; the socket keeps working with it
ROOT_PW=$("$PY" -c 'import secrets; print(secrets.token_hex(16))')
mariadb --no-defaults --socket="$SOCKET" -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED BY '$ROOT_PW'; \
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '$ROOT_PW'; \
    GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"

export VMAIL_TEST_DB_SOCKET="$SOCKET" VMAIL_TEST_DB_PORT="$PORT" VMAIL_TEST_DB_ROOT_PASSWORD="$ROOT_PW"
export VMAIL_TEST_VENV="$REPO/$VENV"
[ "${VENV#/}" = "$VENV" ] || VMAIL_TEST_VENV="$VENV"
if [ -n "${KEEP_DB:-}" ]; then
    echo "export VMAIL_TEST_DB_SOCKET=$SOCKET VMAIL_TEST_DB_PORT=$PORT VMAIL_TEST_DB_ROOT_PASSWORD=$ROOT_PW  # server pid $PID"
fi
set +e
# A first argument that is a test path narrows the run to the paths given.
if [ $# -gt 0 ] && [ -e "${1%%::*}" ]; then
    "$PY" -m pytest "$@"
else
    "$PY" -m pytest tests/unit tests/modules "$@"
fi
RC=$?
set -e
exit $RC
