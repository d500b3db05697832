# -*- coding: utf-8 -*-
"""site.yml converge time on a fresh systemd container, its no-change re-run, and where the time goes.

Starts a container `bench-conv` from vmail/debian:12 the way Molecule's default
scenario does (systemd as PID 1), writes an inventory (community.docker.docker
connection, groups mail_db + mail_servers, the variables of
molecule/default/inventory/group_vars/all.yml but with the role's self-signed
certificate instead of the scenario's test CA), then runs playbooks/site.yml:

  1. converge on the fresh container,
  2. the no-change re-run (must report changed=0),
  3. (unless --no-variants) the same re-run with ANSIBLE_PIPELINING=False.
The project's ansible.cfg turns pipelining on (runs 1 and 2 set it explicitly),
a controller setting that needs no role change.

Every run uses the ansible.posix.profile_tasks callback; the script prints the
wall time of each run, the number of task results, and the top tasks of the
re-run. Logs go to --logdir (default /tmp/vmail-bench-converge). The container
is kept for bench/delivery.py unless --rm is given.

  python bench/converge.py [--image vmail/debian:12] [--top 15] [--rm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

from benchlib import REPO, ansible_env, playbook_cmd

NAME = 'bench-conv'
TARGET_RERUN = 30.0

INVENTORY = """\
all:
  children:
    mail_db:
      hosts:
        {name}:
    mail_servers:
      hosts:
        {name}:
  vars:
    ansible_connection: community.docker.docker
    ansible_python_interpreter: /usr/bin/python3
"""

PROFILE_LINE = re.compile(r'^(?P<task>.+?) -{3,} (?P<sec>[0-9.]+)s$')
RECAP = re.compile(r'ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)')


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def group_vars():
    """molecule/default's group_vars minus the test-CA certificate (the role's self-signed default is used)."""
    import yaml
    with open(os.path.join(REPO, 'molecule', 'default', 'inventory', 'group_vars', 'all.yml')) as handle:
        data = yaml.safe_load(handle)
    for key in list(data):
        if key.endswith('_tls_cert_file') or key.endswith('_tls_key_file'):
            del data[key]
    return data


def start_container(image):
    subprocess.run(['docker', 'rm', '-f', NAME], capture_output=True, check=False)
    sh(['docker', 'run', '-d', '--name', NAME, '--hostname', 'mail.example.com', '--cap-add', 'SYS_ADMIN',
        '--security-opt', 'seccomp=unconfined', '--cgroupns', 'host', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
        '--tmpfs', '/run', '--tmpfs', '/tmp', image, '/sbin/init'])
    for _attempt in range(120):
        state = subprocess.run(['docker', 'exec', NAME, 'systemctl', 'is-system-running'], capture_output=True,
                               text=True, check=False).stdout.strip()
        if state in ('running', 'degraded'):
            return state
        time.sleep(0.5)
    raise RuntimeError('systemd in %s did not come up' % NAME)


def run_site(invdir, logpath, extra_env=None):
    env = ansible_env(ANSIBLE_CALLBACKS_ENABLED='ansible.posix.profile_tasks', PROFILE_TASKS_TASK_OUTPUT_LIMIT='all')
    env.update(extra_env or {})
    playbook = playbook_cmd()
    start = time.perf_counter()
    with open(logpath, 'w') as log:
        proc = subprocess.run([playbook, '-i', os.path.join(invdir, 'hosts.yml'),
                               os.path.join(REPO, 'playbooks', 'site.yml')],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    elapsed = time.perf_counter() - start
    with open(logpath) as log:
        text = log.read()
    if proc.returncode != 0:
        sys.stderr.write(text[-5000:])
        raise RuntimeError('site.yml failed (rc=%d), log %s' % (proc.returncode, logpath))
    return elapsed, parse(text)


def parse(text):
    """Task timings from profile_tasks' summary, the recap counts and the number of task results."""
    tasks = []
    summary = text.split('=' * 20)[-1] if '=' * 20 in text else text
    for line in summary.splitlines():
        m = PROFILE_LINE.match(line.strip())
        if m:
            tasks.append((m.group('task').strip(), float(m.group('sec'))))
    recap = RECAP.search(text)
    ok, changed, _unreachable, failed, skipped = (int(x) for x in recap.groups()) if recap else (0, 0, 0, 0, 0)
    return {'tasks': tasks, 'ok': ok, 'changed': changed, 'failed': failed, 'skipped': skipped,
            'task_seconds': sum(sec for _task, sec in tasks)}


def calibrate(invdir, logdir, tasks=20, extra_env=None):
    """Seconds per task round trip on this connection: (N+1 pings - 1 ping) / N, facts off."""
    import yaml
    times = []
    for n in (1, tasks + 1):
        play = [{'hosts': NAME, 'gather_facts': False,
                 'tasks': [{'name': 'ping %d' % i, 'ansible.builtin.ping': {}} for i in range(n)]}]
        path = os.path.join(logdir, 'calibrate-%d.yml' % n)
        with open(path, 'w') as handle:
            yaml.safe_dump(play, handle)
        env = ansible_env(**(extra_env or {}))
        start = time.perf_counter()
        subprocess.run([playbook_cmd(), '-i', os.path.join(invdir, 'hosts.yml'), path], cwd=REPO, env=env,
                       capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return (times[1] - times[0]) / tasks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--image', default=os.environ.get('VMAIL_IMAGE_DEBIAN12', 'vmail/debian:12'))
    parser.add_argument('--top', type=int, default=15)
    parser.add_argument('--logdir', default='/tmp/vmail-bench-converge')
    parser.add_argument('--no-variants', action='store_true', help='skip the re-run without pipelining')
    parser.add_argument('--rm', action='store_true', help='remove the container at the end')
    parser.add_argument('--json', help='write the figures to this JSON file')
    args = parser.parse_args()

    import yaml
    os.makedirs(args.logdir, mode=0o700, exist_ok=True)
    invdir = os.path.join(args.logdir, 'inventory')
    os.makedirs(os.path.join(invdir, 'group_vars'), mode=0o700, exist_ok=True)
    with open(os.path.join(invdir, 'hosts.yml'), 'w') as handle:
        handle.write(INVENTORY.format(name=NAME))
    with open(os.path.join(invdir, 'group_vars', 'all.yml'), 'w') as handle:
        yaml.safe_dump(group_vars(), handle)

    print('# load %.1f; starting %s from %s' % (os.getloadavg()[0], NAME, args.image), flush=True)
    start_container(args.image)
    runs = []
    # ansible.cfg turns pipelining on; the runs set it explicitly so both are measured.
    plan = [('converge (fresh container)', 'converge', {'ANSIBLE_PIPELINING': 'True'}),
            ('no-change re-run', 'rerun', {'ANSIBLE_PIPELINING': 'True'})]
    if not args.no_variants:
        plan.append(('no-change re-run, ANSIBLE_PIPELINING=False', 'rerun-nopipelining', {'ANSIBLE_PIPELINING': 'False'}))
    try:
        for label, key, extra in plan:
            print('# %s ...' % label, flush=True)
            sec, info = run_site(invdir, os.path.join(args.logdir, key + '.log'), extra)
            info.update(label=label, key=key, seconds=sec, load=os.getloadavg()[0])
            runs.append(info)
            if key.startswith('rerun') and info['changed']:
                print('WARNING: %s reported changed=%d' % (label, info['changed']))
        print('# calibration: seconds per task round trip (ping) ...', flush=True)
        per_task = calibrate(invdir, args.logdir, extra_env={'ANSIBLE_PIPELINING': 'False'})
        per_task_pipe = calibrate(invdir, args.logdir, extra_env={'ANSIBLE_PIPELINING': 'True'})
    finally:
        if args.rm:
            subprocess.run(['docker', 'rm', '-f', NAME], capture_output=True, check=False)

    print()
    print('| run | wall s | task results (ok/changed/skipped) | sum of task times s | target | met |')
    print('|---|---:|---|---:|---|---|')
    for run in runs:
        target = met = ''
        if run['key'].startswith('rerun'):
            target = '< %d s' % TARGET_RERUN
            met = 'yes' if run['seconds'] < TARGET_RERUN else 'no'
        print('| %s | %.1f | %d/%d/%d | %.1f | %s | %s |'
              % (run['label'], run['seconds'], run['ok'], run['changed'], run['skipped'], run['task_seconds'],
                 target, met))
    rerun = next(r for r in runs if r['key'] == 'rerun')
    print()
    print('Top %d tasks of the no-change re-run (profile_tasks):' % args.top)
    print()
    print('| task | s |')
    print('|---|---:|')
    for task, sec in rerun['tasks'][:args.top]:
        print('| %s | %.2f |' % (task.replace('|', '\\|'), sec))
    print()
    print('Task round trip on this connection (ansible.builtin.ping, %d tasks): %.2f s, with pipelining %.2f s; '
          'the re-run had %d ok task results (loops count once; set_fact/assert/debug run on the controller), '
          'so remote round trips cost up to about %.0f s of it.'
          % (20, per_task, per_task_pipe, rerun['ok'], per_task_pipe * rerun['ok']))
    print()
    print('%d timed tasks in the re-run; the other %d took %.1f s together'
          % (len(rerun['tasks']), max(0, len(rerun['tasks']) - args.top),
             sum(sec for _task, sec in rerun['tasks'][args.top:])))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'runs': runs, 'per_task': per_task, 'per_task_pipelining': per_task_pipe}, handle, indent=1)


if __name__ == '__main__':
    main()
