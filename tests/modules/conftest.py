# -*- coding: utf-8 -*-
"""Fixtures for the module tests: a real MariaDB (started by scripts/test-modules.sh) and a module runner.

The modules are executed the way Ansible executes them: as a separate Python
process that reads ANSIBLE_MODULE_ARGS (including ``_ansible_check_mode``
and ``_ansible_diff``), so the real argument spec, no_log handling, check
mode and diff code paths run. ``ansible_adhoc`` runs ``ansible localhost -m``.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys
import tempfile

import pymysql
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
COLLECTIONS = os.path.join(REPO, '.cache', 'collections')
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)  # module_utils imported by tests (as tests/unit/conftest.py does)
VENV = os.environ.get('VMAIL_TEST_VENV', os.path.join(REPO, '.venv'))
SOCKET = os.environ.get('VMAIL_TEST_DB_SOCKET')
PORT = int(os.environ.get('VMAIL_TEST_DB_PORT', '0') or 0)
ROOT_PW = os.environ.get('VMAIL_TEST_DB_ROOT_PASSWORD', '')
ADMIN_USER = 'mailadmin'
ADMIN_PW = 'Adm1n-pw-for-tests'
DB = 'mailserver'

# The guide's literal SQL ("Email with Postfix, Dovecot, and MySQL", Linode).
GUIDE_SQL = [
    """CREATE TABLE `virtual_domains` (
  `id` int(11) NOT NULL auto_increment,
  `name` varchar(50) NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE `virtual_users` (
  `id` int(11) NOT NULL auto_increment,
  `domain_id` int(11) NOT NULL,
  `password` varchar(106) NOT NULL,
  `email` varchar(100) NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `email` (`email`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
    """CREATE TABLE `virtual_aliases` (
  `id` int(11) NOT NULL auto_increment,
  `domain_id` int(11) NOT NULL,
  `source` varchar(100) NOT NULL,
  `destination` varchar(100) NOT NULL,
  PRIMARY KEY (`id`),
  FOREIGN KEY (domain_id) REFERENCES virtual_domains(id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8""",
]

GUIDE_ROWS = [
    "INSERT INTO `mailserver`.`virtual_domains` (`id` ,`name`) VALUES ('1', 'example.com'), ('2', 'hostname.example.com'), "
    "('3', 'hostname'), ('4', 'localhost.example.com')",
    "INSERT INTO `mailserver`.`virtual_users` (`id`, `domain_id`, `password` , `email`) VALUES "
    "('1', '1', ENCRYPT('password', CONCAT('$6$', SUBSTRING(SHA(RAND()), -16))), 'email1@example.com'), "
    "('2', '1', ENCRYPT('password', CONCAT('$6$', SUBSTRING(SHA(RAND()), -16))), 'email2@example.com')",
    "INSERT INTO `mailserver`.`virtual_aliases` (`id`, `domain_id`, `source`, `destination`) VALUES "
    "('1', '1', 'alias@example.com', 'email1@example.com')",
]


def root_connect(db=None):
    if not SOCKET:
        pytest.skip('no test database: run scripts/test-modules.sh')
    return pymysql.connect(unix_socket=SOCKET, user='root', password=ROOT_PW, database=db, autocommit=True,
                           cursorclass=pymysql.cursors.DictCursor)


class Db(object):
    """Helper for tests: root access to the test database."""

    def __init__(self):
        self.conn = root_connect(DB)

    def query(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def execute(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def snapshot(self):
        """Full content of the three tables, to prove that nothing changed."""
        return dict((t, self.query('SELECT * FROM %s ORDER BY id' % t))
                    for t in ('virtual_domains', 'virtual_users', 'virtual_aliases'))

    def add_domain(self, name):
        self.execute('INSERT INTO virtual_domains (name) VALUES (%s)', (name,))
        return self.query('SELECT id FROM virtual_domains WHERE name=%s', (name,))[0]['id']


@pytest.fixture
def db():
    """A fresh guide-schema database `mailserver` with an admin account (the mailsql role's privileges)."""
    conn = root_connect()
    with conn.cursor() as cur:
        cur.execute('DROP DATABASE IF EXISTS `%s`' % DB)
        cur.execute('CREATE DATABASE `%s`' % DB)
        cur.execute('USE `%s`' % DB)
        for stmt in GUIDE_SQL:
            cur.execute(stmt)
        for host in ('localhost', '127.0.0.1'):
            cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (ADMIN_USER, host, ADMIN_PW))
            cur.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON `mailserver`.* TO %s@%s", (ADMIN_USER, host))
    conn.close()
    helper = Db()
    yield helper
    helper.conn.close()


ROOT_LOGIN = dict(login_unix_socket=SOCKET, login_user='root', login_password=ROOT_PW, login_db=DB,
                  config_file='/nonexistent.cnf')


@pytest.fixture
def db4(db):
    """The test database migrated to the latest schema version (4 = the account model, 5 = mail nodes) by mail_schema."""
    r = run_module('mail_schema', dict(ROOT_LOGIN), login=False)
    assert r.rc == 0 and r['version'] == 5, r
    return db


def login_args(**over):
    """Connection arguments for the admin account over the unix socket."""
    args = dict(login_unix_socket=SOCKET, login_user=ADMIN_USER, login_password=ADMIN_PW, config_file='/nonexistent.cnf')
    args.update(over)
    return args


class Result(dict):
    """A module result plus the raw process output."""
    rc = 0
    raw = ''


def run_module(name, args, check=False, diff=False, login=True):
    """Run plugins/modules/<name>.py like Ansible does and return its JSON result."""
    module_args = dict(login_args()) if login else {}
    module_args.update(args)
    module_args.update(_ansible_check_mode=check, _ansible_diff=diff, _ansible_verbosity=3)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, LC_ALL='C.UTF-8')
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        os.chmod(handle.name, 0o600)
        json.dump({'ANSIBLE_MODULE_ARGS': module_args}, handle)
    try:
        proc = subprocess.run([sys.executable, os.path.join(REPO, 'plugins', 'modules', name + '.py'), handle.name],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        os.unlink(handle.name)
    assert 'Traceback' not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        result = Result(json.loads(proc.stdout))
    except ValueError:
        raise AssertionError('module printed no JSON: %s %s' % (proc.stdout, proc.stderr))
    result.rc = proc.returncode
    result.raw = proc.stdout + proc.stderr
    return result


def ansible_adhoc(module, args, check=False, diff=False, verbosity=0):
    """Run `ansible localhost -m vmail.mailserver.<module>` from the repo root; return (rc, output)."""
    cmd = [os.path.join(VENV, 'bin', 'ansible'), 'localhost', '-c', 'local', '-m', 'vmail.mailserver.' + module,
           '-a', json.dumps(args), '-e', 'ansible_python_interpreter=%s' % sys.executable]
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    if verbosity:
        cmd.append('-' + 'v' * verbosity)
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING='False', ANSIBLE_INVENTORY_UNPARSED_WARNING='False',
               ANSIBLE_STDOUT_CALLBACK='default', ANSIBLE_CALLBACK_RESULT_FORMAT='json', ANSIBLE_NOCOLOR='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    return proc.returncode, proc.stdout + proc.stderr
