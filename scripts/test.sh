#!/usr/bin/env bash
# Run every test of vmail.mailserver (what `make test` and .ci/run call).
# Stages: sanity (ansible-test + ansible-doc), module tests against a throwaway
# MariaDB, ansible-lint (production profile), galaxy-importer on the built
# tarball, Molecule scenarios default and adopt on Debian 12 and 13.
# VMAIL_TEST_STAGES="sanity modules lint galaxy molecule adopt" selects stages.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
venv="${VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections:${HOME}/.ansible/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1

stages=${VMAIL_TEST_STAGES:-sanity modules lint galaxy molecule adopt}
passed=0
failed=0
failed_names=()
declare -A seconds

run_stage() {
  local name=$1; shift
  echo
  echo "===== stage: $name ($*)"
  local start=$SECONDS
  if "$@"; then
    passed=$((passed + 1))
    echo "===== stage $name: passed"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "===== stage $name: FAILED"
  fi
  seconds[$name]=$((SECONDS - start))
}

lint() {
  ansible-lint --profile production && python scripts/gen-vars-doc.py --check
}

for stage in $stages; do
  case "$stage" in
    sanity) run_stage sanity scripts/sanity.sh ;;
    modules) run_stage modules scripts/test-modules.sh ;;
    lint) run_stage lint lint ;;
    galaxy) run_stage galaxy scripts/galaxy-import.sh ;;
    molecule) run_stage molecule molecule test -s default ;;
    adopt) run_stage adopt molecule test -s adopt ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done

echo
echo "===== summary"
for stage in $stages; do
  echo "  $stage: ${seconds[$stage]:-0}s"
done
[ ${#failed_names[@]} -eq 0 ] || echo "  failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
