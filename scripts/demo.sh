#!/usr/bin/env bash
# The main job: converge a demo mail server in a local container with
# playbooks/site.yml, send a message through submission (587, STARTTLS + AUTH)
# and fetch it back over IMAPS (993), then print how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections:${HOME}/.ansible/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

mkdir -p .cache/demo
chmod 700 .cache/demo
if [ ! -s .cache/demo/password ]; then
  (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(18))' > .cache/demo/password)
fi
VMAIL_DEMO_PASSWORD=$(cat .cache/demo/password)
export VMAIL_DEMO_PASSWORD

molecule create -s demo
molecule converge -s demo
docker cp vmail-demo:/etc/vmail/tls/mail.crt .cache/demo/mail.crt >/dev/null
python3 scripts/demo_mail.py --port-base 10000 --user demo@example.com --cafile .cache/demo/mail.crt
cat <<EOT

The demo mail server runs in the container 'vmail-demo' (Debian, Postfix, Dovecot, MariaDB).
  SMTP        127.0.0.1:10025
  Submission  127.0.0.1:10587 (STARTTLS, AUTH)   Submissions 127.0.0.1:10465 (TLS, AUTH)
  IMAPS       127.0.0.1:10993                    POP3S       127.0.0.1:10995
  Login       demo@example.com   password in .cache/demo/password
  Certificate .cache/demo/mail.crt (self-signed for mail.example.com)
Shell: docker exec -it vmail-demo bash      Remove: make demo-destroy
EOT
