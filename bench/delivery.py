# -*- coding: utf-8 -*-
"""Delivery throughput of the converged mail server: Maildir vs the smtp-sink ceiling, mysql: vs proxy:mysql:.

Runs on the container left by bench/converge.py (`bench-conv`). All traffic
stays inside the container (127.0.0.1 there):

  * creates --boxes mailboxes in the domain bench.example with
    vmail.mailserver.mail_accounts (random passwords, in a 0700 temp dir only),
  * Postfix's own smtp-source sends --messages single-recipient messages
    (--size bytes) to 127.0.0.1:25, spread evenly over the mailboxes
    (--parallel smtp-source processes at a time, --sessions SMTP sessions each),
  * "maildir": the normal path, Postfix -> LMTP -> Dovecot -> Maildir; the time
    runs until every message is a file in the mailboxes' new/ directories;
  * "sink": the same Postfix with virtual_transport=smtp:[127.0.0.1]:2525 and
    Postfix's smtp-sink listening there (dumping each message to a file on
    the container's /tmp tmpfs): the ceiling of Postfix's own work;
  * both with the role's plain mysql: maps and with proxy:mysql: (Postfix's
    proxymap in front of the same maps; changed with postconf in this
    container only).

The four variants run interleaved, --rounds times, and the table gives the
median messages per second of each and the Maildir/sink ratio per map type.
The container's Postfix configuration is restored at the end.

  python bench/delivery.py [--messages 5000] [--boxes 100] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile

import yaml

from benchlib import REPO, ansible_env, playbook_cmd, write_private

NAME = 'bench-conv'
DOMAIN = 'bench.example'
TARGET = 0.60
MAP_KEYS = ('virtual_mailbox_domains', 'virtual_mailbox_maps', 'virtual_alias_maps', 'smtpd_sender_login_maps',
            'smtpd_recipient_restrictions', 'transport_maps')

# Runs inside the container: one measured variant. Prints one JSON line.
RUN_SH = r"""
set -eu
MODE=$1 MAPS=$2 N=$3 BOXES=$4 PAR=$5 SESS=$6 SIZE=$7 TIMEOUT=$8 DOMAIN=$9
ROOT=/var/mail/vhosts/$DOMAIN
SINKDIR=/tmp/bench-sink
STATE=/root/bench-delivery-orig
mkdir -p $STATE
for k in virtual_transport postscreen_client_connection_count_limit smtpd_client_connection_count_limit __MAP_KEYS__; do
    [ -e $STATE/$k ] || postconf -h $k > $STATE/$k
done
# All sessions come from 127.0.0.1: lift the per-client concurrency limits (50, "421 4.7.0 Error:
# too many connections"), which guard against one client, not a burst from many.
postconf -e postscreen_client_connection_count_limit=0 smtpd_client_connection_count_limit=0
for k in __MAP_KEYS__; do
    v=$(sed -E 's/(^|[ ,])proxy:mysql:/\1mysql:/g' $STATE/$k)
    [ "$MAPS" = mysql ] || v=$(printf '%s' "$v" | sed -E 's/(^|[ ,])mysql:/\1proxy:mysql:/g')
    postconf -e "$k=$v"
done
if [ "$MODE" = sink ]; then
    postconf -e 'virtual_transport=smtp:[127.0.0.1]:2525'
else
    postconf -e "virtual_transport=$(cat $STATE/virtual_transport)"
fi
postsuper -d ALL >/dev/null 2>&1 || true
systemctl restart postfix
mariadb -e 'FLUSH STATUS'
SINCE=$(date '+%Y-%m-%d %H:%M:%S')
for _ in $(seq 1 100); do
    (exec 3<>/dev/tcp/127.0.0.1/25) 2>/dev/null && break
    sleep 0.1
done
rm -rf "$ROOT"/* "$SINKDIR"
mkdir -p "$SINKDIR"; chown postfix "$SINKDIR"
SINKPID=""
if [ "$MODE" = sink ]; then
    smtp-sink -u postfix -d "$SINKDIR/" 127.0.0.1:2525 256 &
    SINKPID=$!
    sleep 0.5
fi
count() {
    if [ "$MODE" = sink ]; then find "$SINKDIR" -type f | wc -l
    else find "$ROOT" -type f -path '*/new/*' 2>/dev/null | wc -l; fi
}
PER=$((N / BOXES))
rm -f /tmp/bench-source.err /tmp/bench-sent
T0=$(date +%s.%N)
( seq 0 $((BOXES - 1)) | xargs -P "$PAR" -I{} sh -c \
    'smtp-source -s '"$SESS"' -m '"$PER"' -l '"$SIZE"' -f bench-sender@sender.test -t "box$(printf %03d {})@'"$DOMAIN"'" 127.0.0.1:25' \
    2>>/tmp/bench-source.err || true ;
  date +%s.%N > /tmp/bench-sent ) &
SENDER=$!
C=0
IDLE=0
while :; do
    C=$(count)
    [ "$C" -ge "$N" ] && break
    # smtp-source gives up a session at its first refusal: once every sender has finished and the
    # queue stays empty for 2 s, nothing more will arrive.
    if [ -e /tmp/bench-sent ] && [ -z "$(postqueue -j 2>/dev/null)" ]; then
        IDLE=$((IDLE + 1)); [ "$IDLE" -ge 8 ] && break
    else
        IDLE=0
    fi
    NOW=$(date +%s.%N)
    if [ "$(echo "$NOW - $T0 > $TIMEOUT" | bc)" = 1 ]; then break; fi
    sleep 0.25
done
T1=$(date +%s.%N)
wait $SENDER || true
TS=$(cat /tmp/bench-sent 2>/dev/null || echo "$T1")
[ -z "$SINKPID" ] || kill "$SINKPID" 2>/dev/null || true
Q=$(postqueue -j 2>/dev/null | wc -l)
SEC=$(echo "$T1 - $T0" | bc); SENT=$(echo "$TS - $T0" | bc)
# Temporary refusals: smtpd's 4xx rejects in the log (e.g. 451 4.3.0 Temporary lookup failure) and
# the errors smtp-source reported (4xx replies, including 451 4.3.0 queue file write error).
REJ=$(journalctl -q --since "$SINCE" -u postfix@- 2>/dev/null | grep -cE 'reject: .*: 4[0-9][0-9] 4\.' || true)
SRCERR=$(grep -cE '(^|[^0-9])4[0-9][0-9][ -]4\.' /tmp/bench-source.err 2>/dev/null || true)
MAXUSED=$(mariadb -N -B -e "SHOW GLOBAL STATUS LIKE 'Max_used_connections'" | cut -f2)
MAXCONN=$(mariadb -N -B -e 'SELECT @@GLOBAL.max_connections')
printf '{"mode": "%s", "maps": "%s", "count": %s, "seconds": %s, "sent_seconds": %s, "queued_after": %s, ' \
    "$MODE" "$MAPS" "$C" "$SEC" "$SENT" "$Q"
printf '"rejects_4xx": %s, "source_4xx": %s, "max_used_connections": %s, "max_connections": %s, "concurrency": %s}\n' \
    "${REJ:-0}" "${SRCERR:-0}" "$MAXUSED" "$MAXCONN" "$((PAR * SESS))"
"""

RESTORE_SH = r"""
set -eu
STATE=/root/bench-delivery-orig
[ -d $STATE ] || exit 0
for f in $STATE/*; do postconf -e "$(basename $f)=$(cat $f)"; done
rm -rf $STATE /tmp/bench-sink
systemctl restart postfix
"""


def dexec(*cmd, stdin=None, check=True):
    return subprocess.run(['docker', 'exec', '-i', NAME] + list(cmd), input=stdin, text=True, capture_output=True,
                          check=check)


def create_mailboxes(boxes, tmp):
    """boxNNN@bench.example through mail_accounts (ansible-playbook, docker connection)."""
    users = [{'email': 'box%03d@%s' % (i, DOMAIN), 'password': 'Bench-' + secrets.token_hex(12)} for i in range(boxes)]
    vars_file = write_private(os.path.join(tmp, 'vars.json'), {'bench_users': users})
    task = {'name': 'bench mailboxes', 'vmail.mailserver.mail_accounts': {
        'config_file': '/etc/vmail/mailsql-admin.cnf', 'domains': [{'name': DOMAIN}],
        'users': '{{ bench_users }}', 'update_password': 'on_create'}}
    play = [{'hosts': NAME, 'gather_facts': False, 'become': True, 'vars_files': [vars_file], 'tasks': [task]}]
    playbook = os.path.join(tmp, 'mailboxes.yml')
    with open(playbook, 'w') as handle:
        yaml.safe_dump(play, handle)
    inventory = os.path.join(tmp, 'hosts.ini')
    with open(inventory, 'w') as handle:
        handle.write('%s ansible_connection=community.docker.docker ansible_python_interpreter=/usr/bin/python3\n'
                     % NAME)
    env = ansible_env()
    proc = subprocess.run([playbook_cmd(), '-i', inventory, playbook], cwd=REPO, env=env, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise RuntimeError('creating the mailboxes failed')


def run_variant(mode, maps, args, parallel=None, sessions=None):
    script = RUN_SH.replace('__MAP_KEYS__', ' '.join(MAP_KEYS))
    proc = dexec('bash', '-s', '--', mode, maps, str(args.messages), str(args.boxes), str(parallel or args.parallel),
                 str(sessions or args.sessions), str(args.size), str(args.timeout), DOMAIN, stdin=script, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError('variant %s/%s failed' % (mode, maps))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result['rate'] = result['count'] / result['seconds']
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--messages', type=int, default=5000)
    parser.add_argument('--boxes', type=int, default=100)
    parser.add_argument('--size', type=int, default=2048, help='message size in bytes (default 2048)')
    parser.add_argument('--parallel', type=int, default=4, help='smtp-source processes at a time (default 4)')
    parser.add_argument('--sessions', type=int, default=5, help='SMTP sessions per smtp-source (default 5)')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--timeout', type=int, default=900, help='seconds per variant (default 900)')
    parser.add_argument('--json', help='write all runs to this JSON file')
    parser.add_argument('--concurrency', help='comma-separated parallel SMTP session counts (e.g. 5,50,100): '
                        'Maildir delivery only, mysql: against proxy:mysql: at each, with the temporary '
                        'refusals (4xx) and MariaDB Max_used_connections; replaces --parallel/--sessions')
    parser.add_argument('--chart', help='with --concurrency: write a PNG chart here')
    parser.add_argument('--container', default=NAME,
                        help='converged container to measure (default %s, from bench/converge.py)' % NAME)
    args = parser.parse_args()
    globals()['NAME'] = args.container  # dexec and create_mailboxes read it
    if args.messages % args.boxes:
        parser.error('--messages must be a multiple of --boxes')
    if subprocess.run(['docker', 'exec', args.container, 'true'], capture_output=True, check=False).returncode != 0:
        parser.error('container %s is not running: run bench/converge.py first' % args.container)
    for tool in ('smtp-source', 'smtp-sink', 'bc'):
        if dexec('sh', '-c', 'command -v %s' % tool, check=False).returncode != 0:
            if tool == 'bc':
                dexec('sh', '-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null')
            else:
                parser.error('%s not found in the container' % tool)

    tmp = tempfile.mkdtemp(prefix='vmail-bench-delivery-')
    os.chmod(tmp, 0o700)
    try:
        print('# creating %d mailboxes in %s ...' % (args.boxes, DOMAIN), flush=True)
        create_mailboxes(args.boxes, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if args.concurrency:
        concurrency_main(args)
        return
    runs = []
    try:
        for rnd in range(args.rounds):
            for maps in ('mysql', 'proxy'):
                for mode in ('maildir', 'sink'):
                    print('# round %d: %s, %s maps, %d messages ...' % (rnd + 1, mode, maps, args.messages), flush=True)
                    res = run_variant(mode, maps, args)
                    res['round'] = rnd + 1
                    res['load'] = os.getloadavg()[0]
                    runs.append(res)
                    print('#   %d delivered in %.1f s (%.0f msg/s; smtp-source done after %.1f s; load %.1f)'
                          % (res['count'], res['seconds'], res['rate'], res['sent_seconds'], res['load']), flush=True)
    finally:
        dexec('bash', '-s', stdin=RESTORE_SH, check=False)

    def median(mode, maps):
        vals = [r['rate'] for r in runs if r['mode'] == mode and r['maps'] == maps]
        return statistics.median(vals) if vals else 0.0

    print()
    print('%d single-recipient messages of %d bytes to %d mailboxes, %d rounds (median msg/s)'
          % (args.messages, args.size, args.boxes, args.rounds))
    print()
    print('| maps | Maildir (Dovecot LMTP) msg/s | smtp-sink ceiling msg/s | Maildir / sink | target >= 60% | met |')
    print('|---|---:|---:|---:|---|---|')
    for maps, label in (('mysql', 'mysql: (role default)'), ('proxy', 'proxy:mysql:')):
        md, sk = median('maildir', maps), median('sink', maps)
        ratio = md / sk if sk else 0
        print('| %s | %.0f | %.0f | %.0f%% | >= 60%% | %s |'
              % (label, md, sk, 100 * ratio, 'yes' if ratio >= TARGET else 'no'))
    faster = 'proxy:mysql:' if median('maildir', 'proxy') > median('maildir', 'mysql') else 'mysql:'
    print()
    print('Faster map type for Maildir delivery in this run: %s (%.0f vs %.0f msg/s)'
          % (faster, max(median('maildir', 'proxy'), median('maildir', 'mysql')),
             min(median('maildir', 'proxy'), median('maildir', 'mysql'))))
    incomplete = [r for r in runs if r['count'] < args.messages]
    if incomplete:
        print('WARNING: %d runs hit the timeout before all messages arrived' % len(incomplete))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'args': vars(args), 'runs': runs}, handle, indent=1)


def split_sessions(level):
    """smtp-source processes and sessions each for *level* parallel SMTP sessions (5 sessions a process)."""
    if level <= 5:
        return 1, level
    if level % 5:
        raise ValueError('concurrency levels above 5 must be multiples of 5')
    return level // 5, 5


def concurrency_main(args):
    """--concurrency: msg/s, 4xx and Max_used_connections for each level and map type, interleaved."""
    levels = [int(x) for x in args.concurrency.split(',') if x.strip()]
    for level in levels:
        procs, _sess = split_sessions(level)
        if procs > args.boxes:
            raise SystemExit('--concurrency %d needs --boxes >= %d' % (level, procs))
    runs = []
    try:
        for rnd in range(args.rounds):
            for level in levels:
                procs, sess = split_sessions(level)
                for maps in ('mysql', 'proxy'):
                    print('# round %d: %d sessions, %s maps, %d messages ...' % (rnd + 1, level, maps, args.messages),
                          flush=True)
                    res = run_variant('maildir', maps, args, parallel=procs, sessions=sess)
                    res.update(round=rnd + 1, level=level, load=os.getloadavg()[0])
                    runs.append(res)
                    print('#   %d delivered in %.1f s (%.0f msg/s), 4xx: %d logged / %d seen by smtp-source, '
                          'Max_used_connections %d of %d'
                          % (res['count'], res['seconds'], res['rate'], res['rejects_4xx'], res['source_4xx'],
                             res['max_used_connections'], res['max_connections']), flush=True)
    finally:
        dexec('bash', '-s', stdin=RESTORE_SH, check=False)

    def pick(level, maps, key, agg=statistics.median):
        vals = [r[key] for r in runs if r['level'] == level and r['maps'] == maps]
        return agg(vals) if vals else 0

    print()
    print('%d single-recipient messages of %d bytes to %d mailboxes per run, %d rounds (median msg/s; 4xx and '
          'connections: the worst round)' % (args.messages, args.size, args.boxes, args.rounds))
    print()
    print('| parallel sessions | maps | msg/s into Maildirs | delivered | 4xx replies | Max_used_connections '
          '/ max_connections |')
    print('|---:|---|---:|---:|---:|---:|')
    for level in levels:
        for maps, label in (('mysql', 'mysql:'), ('proxy', 'proxy:mysql: (role default)')):
            print('| %d | %s | %.0f | %d / %d | %d | %d / %d |'
                  % (level, label, pick(level, maps, 'rate'), pick(level, maps, 'count', min), args.messages,
                     max(pick(level, maps, 'rejects_4xx', max), pick(level, maps, 'source_4xx', max)),
                     pick(level, maps, 'max_used_connections', max), pick(level, maps, 'max_connections', max)))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'args': vars(args), 'runs': runs}, handle, indent=1)
    if args.chart:
        concurrency_chart(levels, pick, args.chart)


def concurrency_chart(levels, pick, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('# matplotlib missing (pip install -r bench/requirements.txt): no chart')
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for maps, label in (('mysql', 'mysql:'), ('proxy', 'proxy:mysql:')):
        left.plot(levels, [pick(lv, maps, 'rate') for lv in levels], marker='o', label=label)
        right.plot(levels, [pick(lv, maps, 'max_used_connections', max) for lv in levels], marker='o', label=label)
    right.plot(levels, [pick(lv, 'proxy', 'max_connections', max) for lv in levels], linestyle='--', color='grey',
               label='max_connections')
    left.set(xlabel='parallel SMTP sessions', ylabel='messages/s into Maildirs', title='Delivery rate')
    right.set(xlabel='parallel SMTP sessions', ylabel='connections', title='MariaDB Max_used_connections')
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print('# chart: %s' % path)


if __name__ == '__main__':
    main()
