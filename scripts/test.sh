#!/usr/bin/env bash
# Run every test of vmail.mailserver (what `make test` and .ci/run call).
# Stages: sanity (ansible-test + ansible-doc), module tests against a throwaway
# MariaDB, ansible-lint (production profile), galaxy-importer on the built
# tarball, the deploy-only install of that tarball in a fresh venv
# (scripts/test-install.sh), Molecule scenarios default and adopt on Debian 12
# and 13, and the scale-out scenario cluster (Galera + two mail nodes) on Debian 12.
# VMAIL_TEST_STAGES="sanity modules lint galaxy install molecule adopt cluster" selects stages
# (`make test-quick` runs "sanity modules lint quick": one Debian 12 converge and
# the mail-flow tests, molecule/quick);
# VMAIL_TEST_PARALLEL=0 runs every stage one after the other.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
venv="${VENV:-.venv}"
export PATH="$PWD/$venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections:${HOME}/.ansible/collections"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
export PY_COLORS=0 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 NO_COLOR=1

stages=${VMAIL_TEST_STAGES:-sanity modules lint galaxy install molecule adopt cluster}
passed=0
failed=0
failed_names=()
declare -A seconds

run_stage() {
  local name=$1; shift
  echo
  echo "===== stage: $name ($*)"
  local start=$SECONDS
  mkdir -p "$logdir"
  if "$@" 2>&1 | tee "$logdir/$name.log"; then
    passed=$((passed + 1))
    echo "===== stage $name: passed"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "===== stage $name: FAILED"
  fi
  seconds[$name]=$((SECONDS - start))
}

# The Molecule scenarios share nothing (own containers, ports, networks and
# ephemeral directories) and spend most of their time waiting on the
# containers, so they start first and run side by side, in the background,
# while the quick stages run in the foreground (VMAIL_TEST_PARALLEL=0: all
# one after the other). The adopt and cluster scenarios run one after the
# other in one background lane, beside the default scenario's (two cores:
# three converges at once cost more than they save). Each writes its own
# log, printed whole when all are done.
parallel=${VMAIL_TEST_PARALLEL:-1}
bg_names=()
logdir=.cache/test-logs

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

# What failed, at the very end of the output (CI keeps only its tail): the
# pytest summary lines, failed Ansible tasks and Molecule's errors of each
# failed stage, at most 40 lines a stage.
digest() {
  local name
  for name in "${failed_names[@]}"; do
    echo
    echo "===== why $name failed ($logdir/$name.log)"
    grep -E '^(FAILED|ERROR|FATAL)[: ]|^fatal: |^failed: |CRITICAL|^E +[A-Za-z]|Executed: Failed|Error: ' "$logdir/$name.log" 2>/dev/null |
      cut -c1-400 | head -40
  done
}

# A lane: stages run one after the other in the background.
start_lane() {
  local stage name
  for stage in "$@"; do
    bg_names+=("$stage")
  done
  mkdir -p "$logdir"
  (
    for name in "$@"; do
      start=$SECONDS
      if molecule test -s "$(scenario_of "$name")" >"$logdir/$name.log" 2>&1; then result=passed; else result=FAILED; fi
      echo "$result $((SECONDS - start))" >"$logdir/$name.status"
    done
  ) &
  echo
  echo "===== stages: $* started in the background (logs: $logdir/<stage>.log)"
}

scenario_of() {
  case "$1" in
    molecule) echo default ;;
    *) echo "$1" ;;
  esac
}

is_molecule() {
  case "$1" in molecule | adopt | cluster | quick) return 0 ;; *) return 1 ;; esac
}

lint() {
  ansible-lint --profile production && python scripts/gen-vars-doc.py --check
}

if [ "$parallel" != 0 ]; then
  lane1=() lane2=()
  for stage in $stages; do
    case "$stage" in
      molecule | quick) lane1+=("$stage") ;;
      adopt | cluster) lane2+=("$stage") ;;
    esac
  done
  [ ${#lane1[@]} -eq 0 ] || start_lane "${lane1[@]}"
  [ ${#lane2[@]} -eq 0 ] || start_lane "${lane2[@]}"
fi

for stage in $stages; do
  if is_molecule "$stage"; then
    [ "$parallel" != 0 ] || run_stage "$stage" molecule test -s "$(scenario_of "$stage")"
    continue
  fi
  case "$stage" in
    sanity) run_stage sanity scripts/sanity.sh ;;
    modules) run_stage modules scripts/test-modules.sh ;;
    lint) run_stage lint lint ;;
    galaxy) run_stage galaxy scripts/galaxy-import.sh ;;
    install) run_stage install scripts/test-install.sh ;;
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
digest
[ "$failed" -eq 0 ]
