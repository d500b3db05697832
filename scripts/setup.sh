#!/usr/bin/env bash
# One-time (idempotent) set-up of a Debian/Ubuntu machine for vmail.mailserver's
# demo and tests: system packages, the Docker engine, a Python venv with the
# pinned tooling, the collection symlink and the systemd base images.
#
# Environment: VENV (default .venv), VMAIL_SKIP_IMAGES=1 to skip image builds,
# VMAIL_IMAGE_DEBIAN12/13 to use your own images (see scripts/build-images.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="${VENV:-.venv}"

need_pkgs=()
for pkg in docker.io debootstrap mariadb-server mariadb-client testssl.sh shellcheck openssl git rsync python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$pkg")
done
# The docker engine may come from docker-ce instead of docker.io.
if command -v dockerd >/dev/null 2>&1; then
  need_pkgs=("${need_pkgs[@]/docker.io}")
fi
if [ -n "${need_pkgs[*]// /}" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need_pkgs[*]} (run as root or install them)" >&2
    exit 1
  fi
  echo "installing: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2068
  apt-get install -y -qq --no-install-recommends ${need_pkgs[@]} >/dev/null
fi
# The tests start their own MariaDB instances; the distribution's service is not needed.

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s requirements.txt "$venv/.requirements.installed" 2>/dev/null; then
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r requirements.txt
  cp requirements.txt "$venv/.requirements.installed"
fi

mkdir -p .cache/collections/ansible_collections/vmail
ln -sfn ../../../.. .cache/collections/ansible_collections/vmail/mailserver

scripts/start-dockerd.sh
if [ "${VMAIL_SKIP_IMAGES:-0}" != 1 ]; then
  scripts/build-images.sh
fi
echo "setup done (venv: $root/$venv)"
