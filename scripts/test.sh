#!/usr/bin/env bash
# Run every test of vmail.mailserver (what `make test` and .ci/run call).
# Stages: sanity (ansible-test + ansible-doc), module tests against a throwaway
# MariaDB, ansible-lint (production profile), galaxy-importer on the built
# tarball, Molecule scenarios default and adopt on Debian 12 and 13.
# VMAIL_TEST_STAGES="sanity modules lint galaxy molecule adopt" selects stages;
# VMAIL_TEST_PARALLEL=0 runs the two Molecule scenarios one after the other.
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

# The two Molecule scenarios share nothing (own containers, ports and
# ephemeral directories) and spend most of their time waiting on the
# containers, so they run side by side unless VMAIL_TEST_PARALLEL=0. Each
# writes its own log, printed whole when both are done.
parallel=${VMAIL_TEST_PARALLEL:-1}
bg_names=()
logdir=.cache/test-logs

start_bg() {
  local name=$1; shift
  mkdir -p "$logdir"
  echo
  echo "===== stage: $name ($*) started alongside the other Molecule scenario (log: $logdir/$name.log)"
  (
    start=$SECONDS
    if "$@" >"$logdir/$name.log" 2>&1; then result=passed; else result=FAILED; fi
    echo "$result $((SECONDS - start))" >"$logdir/$name.status"
  ) &
  bg_names+=("$name")
}

finish_bg() {
  [ ${#bg_names[@]} -gt 0 ] || return 0
  wait
  local name result secs
  for name in "${bg_names[@]}"; do
    echo
    echo "===== stage: $name (output)"
    cat "$logdir/$name.log"
    read -r result secs <"$logdir/$name.status" || { result=FAILED; secs=0; }
    seconds[$name]=$secs
    echo "===== stage $name: $result"
    if [ "$result" = passed ]; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      failed_names+=("$name")
    fi
  done
}

molecule_stage() {
  local name=$1; shift
  if [ "$parallel" != 0 ] && [[ " $stages " == *" molecule "* ]] && [[ " $stages " == *" adopt "* ]]; then
    start_bg "$name" "$@"
  else
    run_stage "$name" "$@"
  fi
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
    molecule) molecule_stage molecule molecule test -s default ;;
    adopt) molecule_stage adopt molecule test -s adopt ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done

finish_bg

echo
echo "===== summary"
for stage in $stages; do
  echo "  $stage: ${seconds[$stage]:-0}s"
done
[ ${#failed_names[@]} -eq 0 ] || echo "  failed stages: ${failed_names[*]}"
echo "stages: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
