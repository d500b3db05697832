#!/usr/bin/env bash
# The deploy-only controller path of the README, offline: a fresh venv with only
# ansible-core, the built tarball and the collections of requirements.yml, and
# nothing of this checkout on the Ansible paths.
#
#   1. build the tarball (ansible-galaxy collection build) into a temporary folder;
#   2. a venv .cache/install-venv with `pip install ansible-core` only, the same
#      version as the main venv's (reused while that version matches);
#   3. the collections of requirements.yml into an empty collections path. Galaxy
#      is not reachable here, so each entry is installed from the copy the main
#      venv already has (type: dir, ansible-galaxy collection install --offline);
#      an entry missing from requirements.yml is therefore missing here too;
#   4. the tarball with `ansible-galaxy collection install --offline`: its
#      galaxy.yml dependencies must be met by step 3 (with Galaxy reachable, the
#      README's commands are the same without --offline);
#   5. every community.*/ansible.* module and filter the installed roles and
#      playbooks name resolves, and `ansible-playbook vmail.mailserver.site
#      --syntax-check` (and .accounts) with a copy of inventories/example whose vault
#      is filled from its example; no warning in any step (a collection whose
#      requires_ansible excludes this ansible-core warns).
#
#   VENV=.venv scripts/test-install.sh
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$REPO/$VENV" ;; esac
INSTALL_VENV=${INSTALL_VENV:-$REPO/.cache/install-venv}
[ -x "$VENV/bin/python" ] || { echo "test-install: $VENV/bin/python not found (run make setup)" >&2; exit 2; }

# The main venv's versions: ansible-core, and cryptography (pinned in requirements.txt
# because newer ones print a deprecation warning at every ansible command).
read -r core_version crypto_version < <("$VENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("ansible-core"), m.version("cryptography"))')
have=$("$INSTALL_VENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("ansible-core"), m.version("cryptography"))' 2>/dev/null || true)
if [ "$have" != "$core_version $crypto_version" ]; then
    echo "test-install: pip install ansible-core==$core_version into $INSTALL_VENV"
    rm -rf "$INSTALL_VENV"
    mkdir -p "$(dirname "$INSTALL_VENV")"
    "$VENV/bin/python" -m venv "$INSTALL_VENV"
    "$INSTALL_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "ansible-core==$core_version" "cryptography==$crypto_version" >"$INSTALL_VENV.log" 2>&1 \
        || { cat "$INSTALL_VENV.log" >&2; exit 1; }
fi

TMP=$(mktemp -d /tmp/vmail-install.XXXXXX)
trap 'rm -rf "$TMP"' EXIT INT TERM
COLLECTIONS="$TMP/collections"
mkdir -p "$COLLECTIONS" "$TMP/run"
: >"$TMP/ansible.cfg"
# Nothing of this checkout or the main venv: only the fresh venv's ansible-core,
# an empty configuration and the temporary collections path.
run() {
    (cd "$TMP/run" && env -u ANSIBLE_COLLECTIONS_PATHS PATH="$INSTALL_VENV/bin:/usr/bin:/bin" \
        ANSIBLE_CONFIG="$TMP/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS" \
        ANSIBLE_LOCAL_TEMP="$TMP/ansible-tmp" ANSIBLE_NOCOLOR=1 "$@")
}
# Runs a step, shows its output, and fails on a warning or error in it.
step() {
    local name=$1; shift
    echo "test-install: $name"
    if ! run "$@" >"$TMP/step.log" 2>&1; then
        cat "$TMP/step.log" >&2
        echo "test-install: FAILED at: $name" >&2
        exit 1
    fi
    sed 's/^/    /' "$TMP/step.log"
    if grep -qE '\[(WARNING|ERROR|DEPRECATION WARNING)\]' "$TMP/step.log"; then
        echo "test-install: FAILED: warnings at: $name" >&2
        exit 1
    fi
}

step "build the tarball" ansible-galaxy collection build --output-path "$TMP" "$REPO"
tarball=$(ls "$TMP"/vmail-mailserver-*.tar.gz)

# requirements.yml with each entry pointing at the main venv's installed copy.
"$INSTALL_VENV/bin/python" - "$REPO/requirements.yml" "$VENV/bin/ansible-galaxy" >"$TMP/requirements-local.yml" <<'PYEOF'
import json, subprocess, sys, yaml
wanted = yaml.safe_load(open(sys.argv[1]))['collections']
# Where the main venv's Ansible finds each collection (ansible-galaxy collection list).
out = subprocess.run([sys.argv[2], 'collection', 'list', '--format', 'json'],
                     capture_output=True, text=True, check=True).stdout
paths = {}
for root, found in json.loads(out).items():
    for name in found:
        paths.setdefault(name, '%s/%s' % (root, name.replace('.', '/')))
local = []
for entry in wanted:
    name = entry['name'] if isinstance(entry, dict) else entry
    if name not in paths:
        sys.exit('test-install: %s (requirements.yml) is not installed in the main venv' % name)
    local.append({'name': paths[name], 'type': 'dir'})
print(yaml.safe_dump({'collections': local}, default_flow_style=False))
PYEOF
step "install requirements.yml (from the main venv's copies)" \
    ansible-galaxy collection install --offline -p "$COLLECTIONS" -r "$TMP/requirements-local.yml"
step "install $(basename "$tarball") --offline" \
    ansible-galaxy collection install --offline -p "$COLLECTIONS" "$tarball"
step "installed collections" ansible-galaxy collection list

# The dependency modules and filters of the installed roles and playbooks resolve
# (--syntax-check alone does not look into include_tasks files or filters in vars).
step "modules and filters the roles name resolve" python - "$COLLECTIONS/ansible_collections/vmail/mailserver" <<'PYEOF'
import pathlib, re, sys
from ansible.plugins.loader import filter_loader, init_plugin_loader, module_loader
init_plugin_loader()
root = pathlib.Path(sys.argv[1])
names = set()
for path in list(root.glob('roles/**/*.yml')) + list(root.glob('roles/**/*.j2')) + list(root.glob('playbooks/*.yml')):
    for match in re.finditer(r'(?<![\w/.])((?:community|ansible)\.[a-z_]+\.[a-z_0-9]+)\b', path.read_text()):
        if not match.group(1).startswith('ansible.builtin.'):
            names.add(match.group(1))
missing = [n for n in sorted(names) if not module_loader.find_plugin(n) and not filter_loader.get(n)]
print('resolved: %s' % ', '.join(sorted(set(names) - set(missing))))
sys.exit('[ERROR] not found: %s' % ', '.join(missing) if missing else 0)
PYEOF

# The example inventory as the README's quickstart makes it.
cp -r "$REPO/inventories/example" "$TMP/inventory"
rm -f "$TMP/inventory/group_vars/all/vault.yml"
cp "$TMP/inventory/group_vars/all/vault.yml.example" "$TMP/inventory/group_vars/all/vault.yml"
step "ansible-inventory --graph" ansible-inventory -i "$TMP/inventory/hosts.yml" --graph
step "ansible-playbook vmail.mailserver.site --syntax-check" \
    ansible-playbook vmail.mailserver.site --syntax-check -i "$TMP/inventory/hosts.yml"
step "ansible-playbook vmail.mailserver.accounts --syntax-check" \
    ansible-playbook vmail.mailserver.accounts --syntax-check -i "$TMP/inventory/hosts.yml"
echo "test-install: passed"
