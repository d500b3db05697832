# -*- coding: utf-8 -*-
"""Account-layer benchmark of vmail.mailserver: per-item modules vs mail_accounts vs the SQL floor.

Measures, against a real MariaDB (a throwaway server started here, or an
existing one given by --socket / VMAIL_BENCH_DB_SOCKET):

  (a) the per-item loop a user writes today: one ansible-playbook with
      mail_domain / mail_user / mail_alias tasks looping over --loop-items
      items, extrapolated linearly to the full set;
  (b) vmail.mailserver.mail_accounts, first run (empty tables);
  (c) the floor: one PyMySQL executemany per table with in-process passlib
      SHA512-CRYPT hashing (one process, same scheme and rounds as the modules);
  (d) mail_accounts re-run with no change, update_password=on_create and
      =always; plus the reference for `always`: verifying every stored hash
      with a process pool on all cores;
  (e) mail_accounts with purge=true after --purge users were dropped from the
      declaration.

The modules run the way Ansible runs them: ansible-playbook on localhost with
the data in a generated JSON vars file inside a 0700 temporary directory. The
database login is in a MySQL option file there as well (config_file), so no
secret is on a command line. Passwords are random, kept in memory and in that
vars file only, and never printed (any output shown on failure is scrubbed).

Prints a table and writes a bar chart (matplotlib, see bench/requirements.txt).

  python bench/accounts.py                                   # 10,000 + 10,000 over 100 domains
  python bench/accounts.py --users 1000 --aliases 1000 --domains 10 --loop-items 100 --purge 100   # quick
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pymysql
import yaml
from passlib.hash import sha512_crypt

from benchlib import REPO, ansible_env, playbook_cmd, write_private

ROUNDS = 5000  # vmail_hashing.SHA_CRYPT_ROUNDS, the crypt(3) default the guide's ENCRYPT() uses
PW_RE = re.compile(r'Bench-[0-9a-f]{24}')
ADMIN_USER = 'vmailbench'


def scrub(text):
    """Hide every benchmark password in ``text`` (output is only shown on failure)."""
    return PW_RE.sub('********', text)


# --------------------------------------------------------------------------- MariaDB

class MariaDB(object):
    """A throwaway mariadbd (like scripts/test-modules.sh) or an existing server's socket."""

    def __init__(self, tmp, socket_path=None):
        self.tmp = tmp
        self.proc = None
        self.socket = socket_path
        self.root_password = os.environ.get('VMAIL_BENCH_DB_ROOT_PASSWORD', '')

    def start(self):
        if self.socket:
            return
        datadir = os.path.join(self.tmp, 'data')
        self.socket = os.path.join(self.tmp, 'mysqld.sock')
        user_opt = ['--user=root'] if os.getuid() == 0 else []
        with open(os.path.join(self.tmp, 'install.log'), 'w') as log:
            subprocess.run(['mariadb-install-db', '--no-defaults', '--datadir=' + datadir] + user_opt
                           + ['--auth-root-authentication-method=socket', '--skip-test-db'],
                           stdout=log, stderr=subprocess.STDOUT, check=True)
        mariadbd = shutil.which('mariadbd') or '/usr/sbin/mariadbd'
        # Same server settings as scripts/test-modules.sh, except a buffer pool that holds the data set.
        self.proc = subprocess.Popen(
            [mariadbd, '--no-defaults', '--datadir=' + datadir, '--socket=' + self.socket, '--skip-networking',
             '--pid-file=' + os.path.join(self.tmp, 'mysqld.pid'),
             '--log-error=' + os.path.join(self.tmp, 'error.log'), '--skip-name-resolve',
             '--innodb-buffer-pool-size=128M', '--innodb-log-file-size=64M',
             '--innodb-flush-log-at-trx-commit=2', '--skip-log-bin'] + user_opt,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _attempt in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError('mariadbd exited: see %s/error.log' % self.tmp)
            try:
                self.root().close()
                return
            except pymysql.err.MySQLError:
                time.sleep(0.2)
        raise RuntimeError('mariadbd did not start')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def root(self, db=None):
        return pymysql.connect(unix_socket=self.socket, user='root', password=self.root_password, database=db,
                               autocommit=True)

    def version(self):
        conn = self.root()
        with conn.cursor() as cur:
            cur.execute('SELECT VERSION()')
            ver = cur.fetchone()[0]
        conn.close()
        return ver


def role_schema():
    """The mailsql role's final schema: what vmail.mailserver.mail_schema builds in an empty database."""
    sys.path.insert(0, os.path.join(REPO, '.cache', 'collections'))
    from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_migrations
    return vmail_migrations.create_statements()


def create_db(server, name, admin_password):
    """(Re)create database ``name`` with the role's schema; grant the admin account the role's privileges."""
    conn = server.root()
    with conn.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS `%s`' % name)
        cur.execute('CREATE DATABASE `%s`' % name)
        cur.execute('USE `%s`' % name)
        for stmt in role_schema():
            cur.execute(stmt)
        cur.execute('CREATE USER IF NOT EXISTS %s@localhost IDENTIFIED BY %s', (ADMIN_USER, admin_password))
        cur.execute('GRANT SELECT, INSERT, UPDATE, DELETE ON `%s`.* TO %%s@localhost' % name, (ADMIN_USER,))
    conn.close()


def counts(server, name):
    conn = server.root(name)
    out = {}
    with conn.cursor() as cur:
        for table in ('virtual_domains', 'virtual_users', 'virtual_aliases'):
            cur.execute('SELECT COUNT(*) FROM %s' % table)
            out[table] = cur.fetchone()[0]
    conn.close()
    return out


def stored_hashes(server, name):
    conn = server.root(name)
    with conn.cursor() as cur:
        cur.execute('SELECT email, password FROM virtual_users')
        rows = dict(cur.fetchall())
    conn.close()
    return rows


# --------------------------------------------------------------------------- data

def make_data(n_domains, n_users, n_aliases):
    """Domains, users (random passwords) and aliases; aliases point at users round-robin."""
    domains = ['d%03d.bench.example' % i for i in range(n_domains)]
    users = [{'email': 'user%05d@%s' % (i, domains[i % n_domains]), 'password': 'Bench-' + secrets.token_hex(12)}
             for i in range(n_users)]
    aliases = [{'source': 'alias%05d@%s' % (i, domains[i % n_domains]),
                'destination': users[i % n_users]['email']} for i in range(n_aliases)]
    return domains, users, aliases


# --------------------------------------------------------------------------- ansible

class Ansible(object):
    """Runs generated playbooks on localhost with the shared venv, the data in a 0700 temp dir."""

    def __init__(self, tmp, server, admin_password):
        self.tmp = tmp
        self.cnf = write_private(os.path.join(tmp, 'admin.cnf'), '[client]\nuser=%s\npassword=%s\nsocket=%s\n'
                                 % (ADMIN_USER, admin_password, server.socket))
        self.inventory = os.path.join(tmp, 'inventory.ini')
        with open(self.inventory, 'w') as handle:
            handle.write('localhost ansible_connection=local ansible_python_interpreter=%s\n' % sys.executable)
        self.playbook_cmd = playbook_cmd()
        self.env = ansible_env(ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_LOCALHOST_WARNING='False',
                               ANSIBLE_LOCAL_TEMP=os.path.join(tmp, 'ansible-local'),
                               ANSIBLE_REMOTE_TEMP=os.path.join(tmp, 'ansible-remote'))

    def write_vars(self, name, data):
        return write_private(os.path.join(self.tmp, name), data)

    def run(self, name, tasks, data):
        """Write vars + playbook, run it, return (seconds, task results {name: [changed, ...]})."""
        vars_file = self.write_vars(name + '.vars.json', data)
        play = [{'name': name, 'hosts': 'localhost', 'gather_facts': False, 'vars_files': [vars_file],
                 'tasks': tasks}]
        playbook = os.path.join(self.tmp, name + '.yml')
        with open(playbook, 'w') as handle:
            yaml.safe_dump(play, handle, sort_keys=False)
        start = time.perf_counter()
        proc = subprocess.run([self.playbook_cmd, '-i', self.inventory, playbook], env=self.env, cwd=self.tmp,
                              capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - start
        os.unlink(vars_file)
        if proc.returncode != 0:
            sys.stderr.write(scrub(proc.stdout[-6000:] + proc.stderr[-3000:]) + '\n')
            raise RuntimeError('ansible-playbook %s failed (rc=%d)' % (name, proc.returncode))
        results = {}
        try:
            out = json.loads(proc.stdout)
            for play_out in out['plays']:
                for task in play_out['tasks']:
                    res = dict(task['hosts'].get('localhost', {}))
                    dur = task['task']['duration']
                    res['_task_seconds'] = iso_seconds(dur['end']) - iso_seconds(dur['start'])
                    results[task['task']['name']] = res
        except (ValueError, KeyError):
            pass
        return elapsed, results


def iso_seconds(stamp):
    """Seconds since the epoch of a json callback time stamp (2026-11-22T03:25:27.151483Z)."""
    return datetime.datetime.strptime(stamp, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()


def conn_args(db):
    return {'config_file': '{{ bench_cnf }}', 'login_db': db}


def accounts_task(db, purge=False, update_password='always'):
    args = conn_args(db)
    args.update(domains='{{ bench_domains }}', users='{{ bench_users }}', aliases='{{ bench_aliases }}',
                update_password=update_password, purge=purge)
    return {'name': 'accounts', 'vmail.mailserver.mail_accounts': args}


def accounts_vars(ans, domains, users, aliases):
    return {'bench_cnf': ans.cnf, 'bench_domains': [{'name': d} for d in domains],
            'bench_users': users, 'bench_aliases': aliases}


# --------------------------------------------------------------------------- measurements

def measure_loop(ans, server, admin_pw, domains, users, aliases, items):
    """(a): one playbook, per-item mail_domain/mail_user/mail_alias loops (as roles/mailsql did)."""
    create_db(server, 'bench_loop', admin_pw)
    n_users = items // 2
    n_aliases = items - n_users
    sub_users = users[:n_users]
    user_set = set(u['email'] for u in sub_users)
    sub_aliases = [a for a in aliases if a['destination'] in user_set][:n_aliases]
    sub_domains = sorted(set(u['email'].split('@')[1] for u in sub_users)
                         | set(a['source'].split('@')[1] for a in sub_aliases))
    tasks = [
        {'name': 'domains', 'vmail.mailserver.mail_domain': dict(conn_args('bench_loop'), name='{{ item }}'),
         'loop': '{{ bench_domains }}'},
        {'name': 'users', 'vmail.mailserver.mail_user': dict(conn_args('bench_loop'), email='{{ item.email }}',
                                                             password='{{ item.password }}'),
         'loop': '{{ bench_users }}', 'loop_control': {'label': '{{ item.email }}'}, 'no_log': True},
        {'name': 'aliases', 'vmail.mailserver.mail_alias': dict(conn_args('bench_loop'), source='{{ item.source }}',
                                                                destination='{{ item.destination }}'),
         'loop': '{{ bench_aliases }}', 'loop_control': {'label': '{{ item.source }}'}},
    ]
    data = {'bench_cnf': ans.cnf, 'bench_domains': sub_domains, 'bench_users': sub_users, 'bench_aliases': sub_aliases}
    elapsed = ans.run('loop', tasks, data)[0]
    got = counts(server, 'bench_loop')
    want = {'virtual_domains': len(sub_domains), 'virtual_users': len(sub_users), 'virtual_aliases': len(sub_aliases)}
    if got != want:
        raise RuntimeError('per-item loop wrote %r, expected %r' % (got, want))
    n_items = len(sub_domains) + len(sub_users) + len(sub_aliases)
    return elapsed, n_items


def _hash(password):
    return sha512_crypt.using(rounds=ROUNDS).hash(password)


def measure_floor(server, admin_pw, domains, users, aliases):
    """(c): hash in this process, one executemany per table, one transaction."""
    create_db(server, 'bench_floor', admin_pw)
    conn = pymysql.connect(unix_socket=server.socket, user=ADMIN_USER, password=admin_pw, database='bench_floor',
                           autocommit=False, charset='utf8mb4')
    start = time.perf_counter()
    handler = sha512_crypt.using(rounds=ROUNDS)
    hashed = [(u['email'], handler.hash(u['password'])) for u in users]
    with conn.cursor() as cur:
        cur.executemany('INSERT INTO virtual_domains (name) VALUES (%s)', [(d,) for d in domains])
        cur.execute('SELECT name, id FROM virtual_domains')
        ids = dict(cur.fetchall())
        cur.executemany('INSERT INTO virtual_users (domain_id, password, email) VALUES (%s, %s, %s)',
                        [(ids[email.split('@')[1]], digest, email) for email, digest in hashed])
        cur.executemany('INSERT INTO virtual_aliases (domain_id, source, destination) VALUES (%s, %s, %s)',
                        [(ids[a['source'].split('@')[1]], a['source'], a['destination']) for a in aliases])
    conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def _verify(pair):
    password, digest = pair
    return sha512_crypt.verify(password, digest)


def measure_verify(server, users, workers):
    """Reference for update_password=always: verify every stored hash with a process pool on all cores."""
    stored = stored_hashes(server, 'mailserver')
    pairs = [(u['password'], stored[u['email']]) for u in users]
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        ok = list(pool.map(_verify, pairs, chunksize=max(1, len(pairs) // (workers * 8))))
    elapsed = time.perf_counter() - start
    if not all(ok):
        raise RuntimeError('%d stored hashes do not verify' % ok.count(False))
    return elapsed


def task_changed(results):
    res = results.get('accounts', {})
    return res.get('changed')


def task_seconds(results):
    """Duration of the mail_accounts task as the json callback saw it (templating + transfer + module)."""
    return results.get('accounts', {}).get('_task_seconds')


# --------------------------------------------------------------------------- report

def yes(ok):
    """Table cell for a target: yes or NO."""
    return 'yes' if ok else 'NO'


def fmt(sec):
    return '%.2f' % sec if sec < 100 else '%.0f' % sec


def report(rows, args, env):
    """Print the rows as a Markdown table (pastes into docs/benchmarks.md as is)."""
    print()
    print('Account benchmark: %d domains, %d mailboxes, %d aliases (%s)'
          % (args.domains, args.users, args.aliases, env))
    print()
    print('| row | what | wall s | task s | x floor | target | met |')
    print('|---|---|---:|---:|---:|---|---|')
    for row in rows:
        print('| %s | %s | %s | %s | %s | %s | %s |' % (
            row['key'], row['what'], fmt(row['seconds']), fmt(row['task']) if row.get('task') is not None else '',
            '%.2f' % row['ratio'], row.get('target', ''), row.get('met', '')))
    print()
    print('wall s: the whole ansible-playbook process (or the Python code for c and ref); task s: the mail_accounts '
          'task as the json callback timed it.')


def chart(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = [r['key'] + ' ' + r['short'] for r in rows]
    values = [r['seconds'] for r in rows]
    colors = ['#c0392b' if r['key'].startswith('a') else '#7f8c8d' if r['key'].startswith('c') or r['key'] == 'ref'
              else '#2980b9' for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    bars = ax.barh(labels[::-1], values[::-1], color=colors[::-1])
    ax.set_xscale('log')
    ax.set_xlabel('seconds (log scale)')
    ax.set_title(title, fontsize=10)
    for rect, value in zip(bars, values[::-1]):
        ax.text(rect.get_width() * 1.08, rect.get_y() + rect.get_height() / 2, fmt(value) + ' s', va='center', fontsize=8)
    ax.set_xlim(min(values) / 2, max(values) * 8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--domains', type=int, default=100)
    parser.add_argument('--users', type=int, default=10000)
    parser.add_argument('--aliases', type=int, default=10000)
    parser.add_argument('--loop-items', type=int, default=500,
                        help='users + aliases in the per-item loop run (a), extrapolated linearly (default 500)')
    parser.add_argument('--purge', type=int, default=1000, help='undeclared users removed in (e) (default 1000)')
    parser.add_argument('--socket', default=os.environ.get('VMAIL_BENCH_DB_SOCKET'),
                        help='use this server (root over the socket, password in VMAIL_BENCH_DB_ROOT_PASSWORD) '
                             'instead of a throwaway mariadbd; databases mailserver, bench_loop and bench_floor '
                             'are dropped and re-created')
    parser.add_argument('--skip', default='', help='comma-separated rows to skip: a, b, d, e, o (c always runs; d and e need b)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1)
    parser.add_argument('--chart', default=os.path.join(REPO, 'docs', 'benchmarks-accounts.png'))
    parser.add_argument('--json', help='also write the figures to this JSON file')
    args = parser.parse_args()
    skip = set(s.strip() for s in args.skip.split(',') if s.strip())

    tmp = tempfile.mkdtemp(prefix='vmail-bench-')
    os.chmod(tmp, 0o700)
    server = MariaDB(tmp, args.socket)
    try:
        server.start()
        admin_pw = secrets.token_hex(16)
        create_db(server, 'mailserver', admin_pw)
        ans = Ansible(tmp, server, admin_pw)
        domains, users, aliases = make_data(args.domains, args.users, args.aliases)
        total_items = len(domains) + len(users) + len(aliases)
        env = '%d cores, MariaDB %s, Python %s, load %.1f at start' % (
            os.cpu_count(), server.version(), platform.python_version(), os.getloadavg()[0])
        print('# ' + env, flush=True)
        res = {}

        print('# (c) floor: executemany + in-process hashing ...', flush=True)
        res['c'] = measure_floor(server, admin_pw, domains, users, aliases)

        if 'a' not in skip:
            print('# (a) per-item loop over %d items ...' % args.loop_items, flush=True)
            sec, n = measure_loop(ans, server, admin_pw, domains, users, aliases, args.loop_items)
            res['a_measured'], res['a_items'] = sec, n
            res['a'] = sec * total_items / n

        data = accounts_vars(ans, domains, users, aliases)
        expect = {'virtual_domains': len(domains), 'virtual_users': len(users), 'virtual_aliases': len(aliases)}
        if 'b' not in skip:
            print('# (b) mail_accounts first run ...', flush=True)
            res['b'], out = ans.run('first', [accounts_task('mailserver')], data)
            res['b_task'] = task_seconds(out)
            got = counts(server, 'mailserver')
            if got != expect or task_changed(out) is not True:
                raise RuntimeError('mail_accounts first run wrote %r (changed=%r), expected %r'
                                   % (got, task_changed(out), expect))
        if 'o' not in skip:
            print('# (o) ansible-playbook alone with the same vars file ...', flush=True)
            res['o'] = ans.run('overhead', [{'name': 'accounts',
                                             'ansible.builtin.debug': {'msg': '{{ bench_users | length }} users'}}],
                               data)[0]
        if 'd' not in skip and 'b' not in skip:
            for mode in ('on_create', 'always'):
                print('# (d) mail_accounts re-run, update_password=%s ...' % mode, flush=True)
                res['d_' + mode], out = ans.run('rerun-' + mode, [accounts_task('mailserver', update_password=mode)],
                                                data)
                res['d_' + mode + '_task'] = task_seconds(out)
                if task_changed(out) is not False:
                    raise RuntimeError('re-run (%s) reported changed=%r' % (mode, task_changed(out)))
            print('# (d) reference: verify %d hashes on %d processes ...' % (len(users), args.workers), flush=True)
            res['ref'] = measure_verify(server, users, args.workers)
        if 'e' not in skip and 'b' not in skip:
            keep = users[args.purge:]
            print('# (e) mail_accounts purge of %d undeclared users ...' % args.purge, flush=True)
            res['e'], out = ans.run('purge', [accounts_task('mailserver', purge=True, update_password='on_create')],
                                    accounts_vars(ans, domains, keep, aliases))
            res['e_task'] = task_seconds(out)
            got = counts(server, 'mailserver')
            if got['virtual_users'] != len(keep) or got['virtual_aliases'] != len(aliases):
                raise RuntimeError('purge left %r, expected %d users' % (got, len(keep)))

        floor = res['c']
        rows = []

        def add(key, short, what, seconds, target='', met=''):
            rows.append(dict(key=key, short=short, what=what, seconds=seconds, ratio=seconds / floor,
                             task=res.get(key.replace('d1', 'd_on_create').replace('d2', 'd_always') + '_task'),
                             target=target, met=met))

        if 'a' in res:
            add('a', 'per-item loop', 'per-item modules (%d items measured: %.1f s), extrapolated'
                % (res['a_items'], res['a_measured']), res['a'])
        if 'b' in res:
            target_b = '<= 1.5 x floor; >= 50 x faster than a'
            met_b = res['b'] <= 1.5 * floor and ('a' not in res or res['a'] >= 50 * res['b'])
            add('b', 'mail_accounts first run', 'mail_accounts first run', res['b'], target_b, yes(met_b))
        add('c', 'floor', 'floor: executemany + in-process hashing (1 process)', floor)
        if 'd_on_create' in res:
            add('d1', 're-run on_create', 'mail_accounts re-run, no change, on_create', res['d_on_create'], '< 3 s',
                yes(res['d_on_create'] < 3))
            add('d2', 're-run always', 'mail_accounts re-run, no change, always', res['d_always'],
                '<= 1.2 x ref (%.2f s)' % (1.2 * res['ref']), yes(res['d_always'] <= 1.2 * res['ref']))
            add('ref', 'verify on %d cores' % args.workers,
                'reference: verify all hashes, %d processes' % args.workers, res['ref'])
        if 'o' in res:
            add('o', 'ansible-playbook alone', 'ansible-playbook start + loading the same vars, no module', res['o'])
        if 'e' in res:
            add('e', 'purge %d users' % args.purge, 'mail_accounts purge of %d undeclared users' % args.purge,
                res['e'])
        report(rows, args, env)
        if 'a' in res and 'b' in res:
            print('(b) is %.0f times faster than (a)' % (res['a'] / res['b']))
        title = ('vmail.mailserver accounts: %d domains, %d mailboxes, %d aliases\n%s'
                 % (args.domains, args.users, args.aliases, env))
        if args.chart:
            os.makedirs(os.path.dirname(os.path.abspath(args.chart)), exist_ok=True)
            chart(rows, args.chart, title)
            print('chart: %s' % os.path.relpath(args.chart, os.getcwd()))
        if args.json:
            with open(args.json, 'w') as handle:
                json.dump({'env': env, 'args': vars(args), 'seconds': res, 'rows': rows}, handle, indent=1)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
