# -*- coding: utf-8 -*-
"""Capacity of the clustered topology: lookups per message, lookups/s and writes/s one DB node serves,
messages/s one mail node delivers; extrapolated to 100,000 mailboxes (docs/scaling.md).

Runs on the containers of the Molecule scenario `cluster` (three Galera DB nodes, two mail
nodes), left up by `molecule converge -s cluster`. All traffic stays on the scenario's own
network; secrets stay in the containers (the measuring scripts read the lookup account from
the Postfix map files there) or in 0600 files of a 0700 temp directory.

  * mailboxes: --boxes mailboxes in bench.example, homed on mail1, created with
    vmail.mailserver.mail_accounts on db1 (random passwords, never printed);
  * lookups/s: --procs processes on mail2, each with one persistent TLS connection (as
    Postfix's and Dovecot's processes keep theirs) to db1, run the exact query of
    virtual_mailbox_maps (read from mail2's map file) for --seconds seconds, random
    mailboxes; mail2's client processes share the machine's two cores with db1, so the
    figure is a lower bound of what a DB node with its own cores serves;
  * writes/s: the same processes run what Dovecot's dict writes at each login
    (INSERT ... ON DUPLICATE KEY UPDATE into vmail_last_login) through db1: every commit is
    certified by the whole Galera cluster;
  * messages: Postfix's smtp-source on mail2 sends --messages messages to mail1:25 (mail
    from outside mail1's mynetworks, postscreen passed first) spread over the mailboxes;
    the time runs until every message is a file in a Maildir on mail1; the SELECTs the three
    DB nodes ran in that time (Com_select) divided by the messages gives lookups per
    message;
  * the same messages sent to mail2 for mailboxes homed on mail1 (relayed over LMTP).

  python bench/scaling.py [--boxes 10000] [--messages 1000] [--seconds 20] [--procs 4] [--chart docs/scaling.png]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

import yaml

from benchlib import REPO, ansible_env, playbook_cmd, write_private

DOMAIN = 'bench.example'

# Runs on a mail node as root: reads the lookup account and the mailbox query from Postfix's
# map file, then P processes hammer one DB node for S seconds. Prints one JSON line.
LOAD_PY = r'''
import json, multiprocessing, random, sys, time
import pymysql

mode, db, procs, seconds, boxes, domain = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
conf = {}
for line in open("/etc/postfix/mysql-virtual-mailbox-maps.cf"):
    if "=" in line and not line.lstrip().startswith("#"):
        key, value = line.split("=", 1)
        conf[key.strip()] = value.strip()
query = conf["query"].replace("'%s'", "%s")


def worker(seed, out):
    try:
        out.put(work(seed))
    except Exception as exc:  # reported by the parent, which must not wait forever
        out.put(repr(exc))


def work(seed):
    rnd = random.Random(seed)
    ssl = {"ca": conf["tls_CAfile"], "check_hostname": True} if conf.get("tls_CAfile") else None
    conn = pymysql.connect(host=db, user=conf["user"], password=conf["password"], database=conf["dbname"],
                           ssl=ssl, autocommit=True)
    cur = conn.cursor()
    done, end = 0, time.time() + seconds
    while time.time() < end:
        email = "box%05d@%s" % (rnd.randrange(boxes), domain)
        if mode == "lookup":
            cur.execute(query, (email,))
            cur.fetchall()
        else:
            cur.execute("INSERT INTO vmail_last_login (email, last_login) VALUES (%s, %s) "
                        "ON DUPLICATE KEY UPDATE last_login = VALUES(last_login)", (email, int(time.time())))
        done += 1
    conn.close()
    return done


out = multiprocessing.Queue()
workers = [multiprocessing.Process(target=worker, args=(i, out)) for i in range(procs)]
start = time.time()
for w in workers:
    w.start()
results = [out.get() for _ in workers]
for w in workers:
    w.join()
errors = [r for r in results if not isinstance(r, int)]
if errors:
    sys.exit("load %s failed: %s" % (mode, errors[0]))
print(json.dumps({"count": sum(results), "seconds": time.time() - start}))
'''


def dexec(container, *cmd, stdin=None, check=True):
    proc = subprocess.run(['docker', 'exec', '-i', container] + list(cmd), input=stdin, text=True,
                          capture_output=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError('%s %s: %s%s' % (container, ' '.join(cmd), proc.stdout[-2000:], proc.stderr[-2000:]))
    return proc


def com_select(args):
    """The sum of Com_select over the three DB nodes."""
    total = 0
    for db in ('db1', 'db2', 'db3'):
        out = dexec(args.name(db), 'mysql', '-N', '-B', '-e', "SHOW GLOBAL STATUS LIKE 'Com_select'").stdout
        total += int(out.split()[1])
    return total


def create_mailboxes(args, tmp):
    users = [{'email': 'box%05d@%s' % (i, DOMAIN), 'password': 'Bench-' + secrets.token_hex(12)}
             for i in range(args.boxes)]
    vars_file = write_private(os.path.join(tmp, 'vars.json'), {'bench_users': users})
    task = {'name': 'bench mailboxes', 'no_log': True, 'vmail.mailserver.mail_accounts': {
        'config_file': '/etc/vmail/mailsql-admin.cnf',
        'domains': [{'name': DOMAIN, 'host': 'mail1.cluster.test'}],
        'users': '{{ bench_users }}', 'update_password': 'on_create'}}
    play = [{'hosts': args.name('db1'), 'gather_facts': False, 'become': True, 'vars_files': [vars_file],
             'tasks': [task]}]
    playbook = os.path.join(tmp, 'mailboxes.yml')
    with open(playbook, 'w') as handle:
        yaml.safe_dump(play, handle)
    inventory = os.path.join(tmp, 'hosts.ini')
    with open(inventory, 'w') as handle:
        handle.write('%s ansible_connection=community.docker.docker ansible_python_interpreter=/usr/bin/python3\n'
                     % args.name('db1'))
    proc = subprocess.run([playbook_cmd(), '-i', inventory, playbook], cwd=REPO, env=ansible_env(),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
        raise RuntimeError('creating the mailboxes failed')


def load(args, mode):
    proc = dexec(args.name('mail2'), 'python3', '-', mode, 'db1.cluster.test', str(args.procs), str(args.seconds),
                 str(args.boxes), DOMAIN, stdin=LOAD_PY)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result['rate'] = result['count'] / result['seconds']
    return result


def maildir_files(args):
    out = dexec(args.name('mail1'), 'sh', '-c',
                'find /var/mail/vhosts/%s -path "*/new/*" -type f 2>/dev/null | wc -l' % DOMAIN).stdout
    return int(out.strip() or 0)


def deliver(args, target):
    """smtp-source on the other node -> target:25; seconds until every message is in mail1's Maildirs."""
    client = 'mail1' if target == 'mail2' else 'mail2'
    # postscreen: one first session that stops after RCPT, as an MTA's first try would
    dexec(args.name(client), 'swaks', '--silent', '2', '--quit-after', 'RCPT', '--server', '%s.cluster.test' % target,
          '--to', 'box00000@%s' % DOMAIN, '--from', 'bench@outside.test', check=False)
    targets = min(args.targets, args.boxes)
    per = max(1, args.messages // targets)
    sent = per * targets
    script = ('seq 0 %d | xargs -P %d -I{} sh -c \'smtp-source -s 2 -m %d -l 2048 -f bench@outside.test '
              '-t "box$(printf %%05d {})@%s" %s.cluster.test:25\'' % (targets - 1, args.procs, per, DOMAIN, target))
    before_files = maildir_files(args)
    before_select = com_select(args)
    start = time.time()
    dexec(args.name(client), 'sh', '-c', script)
    want = before_files + sent
    deadline = time.time() + args.timeout
    while maildir_files(args) < want:
        if time.time() > deadline:
            raise RuntimeError('only %d of %d messages arrived' % (maildir_files(args) - before_files, sent))
        time.sleep(0.5)
    seconds = time.time() - start
    selects = com_select(args) - before_select
    return {'messages': sent, 'seconds': seconds, 'rate': sent / seconds, 'selects_per_message': selects / float(sent)}


def extrapolate(res, args):
    """Needs of --mailboxes mailboxes at the peak hour against the measured capacities.

    Reads are served by every DB node (Postfix and Dovecot spread their connections over the
    list), so DB nodes add read capacity; every write is applied by every Galera node, so the
    write capacity is the cluster's whatever its size. Returns rows
    (resource, needed per second, capacity per unit, unit, units needed or None).
    """
    msgs = args.mailboxes * args.msgs_per_box / 86400.0 * args.peak
    logins = args.mailboxes * args.logins_per_box / 86400.0 * args.peak
    reads = msgs * res['local']['selects_per_message'] + logins * args.selects_per_login
    writes = logins + msgs  # a last_login row per login, a quota_clone row per delivery
    return [
        ('messages/s', msgs, res['local']['rate'], 'mail node', int(math.ceil(msgs / res['local']['rate']))),
        ('DB reads/s', reads, res['lookup']['rate'], 'DB node', int(math.ceil(reads / res['lookup']['rate']))),
        ('DB writes/s', writes, res['write']['rate'], 'Galera cluster', None),
    ]


def chart(rows, path):
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('# matplotlib missing (pip install -r bench/requirements.txt): no chart')
        return
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.barh([i + 0.2 for i in range(len(rows))], [r[2] for r in rows], height=0.4, label='measured capacity')
    ax.barh([i - 0.2 for i in range(len(rows))], [r[1] for r in rows], height=0.4, label='needed at the peak hour')
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(['%s\n(per %s)' % (r[0], r[3]) for r in rows])
    ax.set_xscale('log')
    ax.set_xlabel('per second (log scale)')
    ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print('# chart: %s' % path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--prefix', default=os.environ.get('VMAIL_CLUSTER_PREFIX', 'vmail-cluster'))
    parser.add_argument('--boxes', type=int, default=10000)
    parser.add_argument('--messages', type=int, default=1000)
    parser.add_argument('--targets', type=int, default=100, help='mailboxes the messages are spread over (default 100)')
    parser.add_argument('--seconds', type=float, default=20.0, help='seconds per load test (default 20)')
    parser.add_argument('--procs', type=int, default=4, help='client processes of the load tests (default 4)')
    parser.add_argument('--timeout', type=int, default=900)
    parser.add_argument('--mailboxes', type=int, default=100000, help='mailboxes to extrapolate to (default 100000)')
    parser.add_argument('--selects-per-login', type=float, default=2.0,
                        help='DB reads per IMAP/POP3 login: passdb + userdb (default 2)')
    parser.add_argument('--msgs-per-box', type=float, default=50.0, help='messages per mailbox and day (default 50)')
    parser.add_argument('--logins-per-box', type=float, default=100.0, help='logins per mailbox and day (default 100)')
    parser.add_argument('--peak', type=float, default=5.0, help='peak hour / average hour (default 5)')
    parser.add_argument('--chart', help='draw the chart to this PNG')
    parser.add_argument('--json', help='write the results to this JSON file')
    args = parser.parse_args()
    args.name = lambda short: '%s-%s' % (args.prefix, short)
    for short in ('db1', 'db2', 'db3', 'mail1', 'mail2'):
        if subprocess.run(['docker', 'exec', args.name(short), 'true'], capture_output=True,
                          check=False).returncode != 0:
            parser.error('container %s is not running: run `molecule converge -s cluster` first' % args.name(short))

    tmp = tempfile.mkdtemp(prefix='vmail-bench-scaling-')
    os.chmod(tmp, 0o700)
    try:
        print('# %d mailboxes in %s on mail1 ...' % (args.boxes, DOMAIN), flush=True)
        t0 = time.time()
        create_mailboxes(args, tmp)
        print('#   %.1f s' % (time.time() - t0), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    res = {'load': os.getloadavg()[0]}
    print('# lookups: %d processes on mail2 -> db1, %.0f s ...' % (args.procs, args.seconds), flush=True)
    res['lookup'] = load(args, 'lookup')
    print('# writes: %d processes on mail2 -> db1 (Galera-certified), %.0f s ...' % (args.procs, args.seconds), flush=True)
    res['write'] = load(args, 'write')
    print('# %d messages mail2 -> mail1:25 (local delivery) ...' % args.messages, flush=True)
    res['local'] = deliver(args, 'mail1')
    print('# %d messages mail1 -> mail2:25 (relayed to mail1 over LMTP) ...' % args.messages, flush=True)
    res['relayed'] = deliver(args, 'mail2')

    print()
    print('| measurement | result |')
    print('|---|---|')
    print('| mailbox lookups/s, one DB node (TLS, %d persistent connections) | %.0f |' % (args.procs, res['lookup']['rate']))
    print('| last-login writes/s through one node, certified by 3 | %.0f |' % res['write']['rate'])
    print('| messages/s, one mail node, local mailboxes | %.1f |' % res['local']['rate'])
    print('| messages/s, received on one node, delivered on the other | %.1f |' % res['relayed']['rate'])
    print('| DB SELECTs per message (local / relayed) | %.1f / %.1f |'
          % (res['local']['selects_per_message'], res['relayed']['selects_per_message']))
    rows = extrapolate(res, args)
    print()
    print('%d mailboxes, %g messages and %g logins per mailbox and day, peak hour = %g x the average:'
          % (args.mailboxes, args.msgs_per_box, args.logins_per_box, args.peak))
    print('| resource | needed at peak | measured capacity | per | needed |')
    print('|---|---:|---:|---|---|')
    for name, need, cap, unit, count in rows:
        needed = ('%d %ss' % (count, unit)) if count is not None else ('%.0f %% of its capacity' % (100.0 * need / cap))
        print('| %s | %.0f | %.0f | %s | %s |' % (name, need, cap, unit, needed))
    res['extrapolation'] = [dict(zip(('resource', 'needed', 'capacity', 'unit', 'units'), r)) for r in rows]
    if args.chart:
        chart(rows, args.chart)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(res, handle, indent=1)


if __name__ == '__main__':
    main()
