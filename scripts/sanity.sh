#!/usr/bin/env bash
# ansible-test sanity for vmail.mailserver, offline-capable, plus an ansible-doc check of every module and filter.
#
# ansible-test needs the collection at <root>/ansible_collections/<ns>/<name>, so the files
# that git lists (tracked + untracked non-ignored) are copied to a temporary tree, which is
# made a git repository of its own (ansible-test uses git to list the files to test).
#
#   VENV=.venv scripts/sanity.sh [extra ansible-test sanity args, e.g. --test pylint]
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "sanity: $PY not found (run make setup or set VENV)" >&2; exit 2; }
PYVER=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
export PATH="$VENV/bin:$PATH"

# --- offline pip bootstrap for ansible-test's sanity virtualenvs -------------------------
# ansible-test downloads get-pip-<ver>.py from ci-files.testing.ansible.com (unreachable here)
# unless ~/.ansible/test/cache/get_pip_<ver with underscores>.py exists. Seed a stand-in that
# bootstraps pip with ensurepip and then installs what ansible-test asked for from the
# configured package index.
PIP_VER=$("$PY" - <<'PYEOF'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
m = re.search(r"default_packages = dict\(\s*pip='([^']+)'", src)
print(m.group(1) if m else '')
PYEOF
)
[ -n "$PIP_VER" ] || { echo "sanity: cannot find ansible-test's pip version" >&2; exit 2; }
CACHE="$HOME/.ansible/test/cache/get_pip_${PIP_VER//./_}.py"
mkdir -p "$(dirname "$CACHE")"
if [ ! -f "$CACHE" ]; then
    cat > "$CACHE" <<'PYEOF'
# vmail.mailserver stand-in for get-pip.py (offline): ensurepip, then pip install the given arguments.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--default-pip'])
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
PYEOF
fi

# --- temporary collection tree ------------------------------------------------------------
TMP=$(mktemp -d /tmp/vmail-sanity.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
DEST="$TMP/ansible_collections/vmail/mailserver"
mkdir -p "$DEST"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] || continue            # deleted in the work tree
    mkdir -p "$DEST/$(dirname "$f")"
    cp -P "$f" "$DEST/$f"
done
(cd "$DEST" && git init -q && git add -A && git -c user.name=sanity -c user.email=sanity@invalid commit -qm sanity)

RC=0
(cd "$DEST" && ansible-test sanity --local --requirements --python "$PYVER" --color no "$@") || RC=$?

# --- ansible-doc renders every module and filter --------------------------------------------
for plugin in "$REPO"/plugins/modules/*.py "$REPO"/plugins/filter/*.py; do
    [ -e "$plugin" ] || continue
    name=$(basename "$plugin" .py)
    type=module
    case "$plugin" in */plugins/filter/*) type=filter ;; esac
    if ! ANSIBLE_COLLECTIONS_PATH="$TMP" ansible-doc -t "$type" "vmail.mailserver.$name" >/dev/null 2>"$TMP/doc.err" \
        || [ -s "$TMP/doc.err" ]; then
        echo "sanity: ansible-doc -t $type vmail.mailserver.$name failed:" >&2
        cat "$TMP/doc.err" >&2
        RC=1
    else
        echo "ansible-doc -t $type vmail.mailserver.$name: ok"
    fi
done
exit $RC
