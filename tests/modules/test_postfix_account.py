# -*- coding: utf-8 -*-
"""Postfix's own DB account against a real MariaDB: every Postfix query works with it, the password hashes do not.

The account is made the way the mailsql role makes it (roles/mailsql/tasks/schema.yml): the role's
``__mailsql_postfix_priv`` from roles/mailsql/vars/main.yml, given to community.mysql.mysql_user with
``append_privs: false`` in a playbook run by ansible-playbook. Then every query of
vmail_lookups.postfix_queries, for each schema version the postfix role supports (1 to 5), is expanded
the way Postfix's mysql_table(5) expands it and run with that account: each must answer what it answers
for root, while ``virtual_users.password`` gets "SELECT command denied".
"""

import json
import os
import subprocess
import tempfile

import pymysql
import pytest

from conftest import DB, REPO, ROOT_PW, SOCKET, VENV, run_module
from test_lookups import ACCOUNTS, ROOT, expand
from test_mail_accounts import ok

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_lookups

USER = 'mailpostfix'
PASSWORD = 'Postfix-pw-for-tests-0123'
NODE = 'm1.example.net'
HOSTS = ['localhost', '127.0.0.1']

# Nodes for the transport table (schema version 5).
EXTRA = {'domains': [{'name': 'two.example', 'host': 'm2.example.net'}],
         'users': [{'email': 'away@example.com', 'password': 'pw', 'host': 'm2.example.net'},
                   {'email': 'bo@two.example', 'password': 'pw'}]}

# Keys Postfix looks up: addresses, domains, '@domain' (the catch-all step) and a quoting attempt.
KEYS = ['alice@example.com', 'bob@example.com', 'carol@off.example', 'info@example.com', 'bobonly@example.com',
        'sales@example.com', 'ext@example.com', 'nobody@other.example', '@other.example', 'alice@alias.example',
        'carol@offalias.example', 'away@example.com', 'bo@two.example', 'example.com', 'off.example',
        'two.example', "x' OR '1'='1"]

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {vars_file}
    - {secrets}
  tasks:
    - name: The Postfix DB account as the mailsql role makes it
      community.mysql.mysql_user:
        login_unix_socket: {socket}
        login_user: root
        login_password: "{{{{ root_password }}}}"
        name: {user}
        host: "{{{{ item }}}}"
        password: "{{{{ postfix_password }}}}"
        update_password: always
        priv: "{{{{ __mailsql_postfix_priv }}}}"
        append_privs: false
        column_case_sensitive: true
        state: present
      loop: {hosts}
      no_log: true
      register: result
      vars:
        mailsql_db_name: {db}
        __mailsql_schema_result: {{version: {version}}}

    - name: Report
      ansible.builtin.debug:
        msg: "CHANGED={{{{ result is changed }}}}"
"""


def make_account(version):
    """Run the role's grant in a playbook; return True when it changed anything."""
    with tempfile.TemporaryDirectory() as tmp:
        secrets = os.path.join(tmp, 'secrets.json')
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as handle:
            json.dump({'root_password': ROOT_PW, 'postfix_password': PASSWORD}, handle)
        play = os.path.join(tmp, 'play.yml')
        with open(play, 'w') as handle:
            handle.write(PLAY.format(vars_file=os.path.join(REPO, 'roles', 'mailsql', 'vars', 'main.yml'),
                                     secrets=secrets, socket=SOCKET, user=USER, hosts=json.dumps(HOSTS), db=DB,
                                     version=version))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_LOCALHOST_WARNING='False', ANSIBLE_INVENTORY_UNPARSED_WARNING='False')
        proc = subprocess.run([os.path.join(VENV, 'bin', 'ansible-playbook'), '-i', 'localhost,', play,
                               '-e', 'ansible_python_interpreter=%s' % os.path.join(VENV, 'bin', 'python')],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert PASSWORD not in out and ROOT_PW not in out
    return 'CHANGED=True' in out


def connect(user, password):
    return pymysql.connect(unix_socket=SOCKET, user=user, password=password, database=DB, autocommit=True)


def answers(conn, query, key):
    sql = expand(query, key)
    if sql is None:
        return None
    with conn.cursor() as cur:
        cur.execute(sql)
        return sorted(str(r[0]) for r in cur.fetchall())


@pytest.fixture
def postfix_account(db):
    assert ok(run_module('mail_schema', dict(ROOT), login=False))['version'] == 5
    ok(run_module('mail_accounts', ACCOUNTS))
    ok(run_module('mail_accounts', EXTRA))
    db.execute("INSERT INTO vmail_quota_usage (email, bytes, messages) VALUES ('alice@example.com', 10, 1)")
    with db.conn.cursor() as cur:
        for host in HOSTS:
            cur.execute('DROP USER IF EXISTS %s@%s', (USER, host))
            # A broader grant from before (as the lookup account has): the role's run must take it away.
            cur.execute('CREATE USER %s@%s IDENTIFIED BY %s', (USER, host, 'old-password-0123456'))
            cur.execute('GRANT SELECT ON `mailserver`.* TO %s@%s', (USER, host))
    assert make_account(5) is True
    yield
    with db.conn.cursor() as cur:
        for host in HOSTS:
            cur.execute('DROP USER IF EXISTS %s@%s', (USER, host))


def test_password_hashes_are_denied(postfix_account):
    conn = connect(USER, PASSWORD)
    for sql, code in (('SELECT password FROM virtual_users', 1143),
                      ("SELECT password FROM virtual_users WHERE email = 'alice@example.com'", 1143),
                      ('SELECT * FROM virtual_users', 1143),
                      ('SELECT last_login FROM vmail_last_login', 1142),
                      ('SELECT version FROM vmail_schema', 1142),
                      ("UPDATE virtual_users SET active = 0", 1142),
                      ("INSERT INTO vmail_quota_usage (email) VALUES ('x@example.com')", 1142)):
        with pytest.raises(pymysql.err.OperationalError) as err:
            with conn.cursor() as cur:
                cur.execute(sql)
        assert err.value.args[0] == code and 'command denied' in err.value.args[1], (sql, err.value.args)
    with pytest.raises(pymysql.err.OperationalError) as err:
        with conn.cursor() as cur:
            cur.execute('SELECT password FROM virtual_users')
    assert "SELECT command denied" in err.value.args[1] and "'password'" in err.value.args[1]


@pytest.mark.parametrize('version', [1, 2, 3, 4, 5])
def test_every_postfix_query_works_with_the_account(postfix_account, version):
    root = pymysql.connect(unix_socket=SOCKET, user='root', password=ROOT_PW, database=DB, autocommit=True)
    conn = connect(USER, PASSWORD)
    queries = vmail_lookups.postfix_queries(version, NODE)
    answered = 0
    for name, query in sorted(queries.items()):
        for key in KEYS:
            want = answers(root, query, key)
            assert answers(conn, query, key) == want, (version, name, key)
            answered += bool(want)
    assert answered >= (5 if version < 4 else 20), answered  # the data makes the queries answer something
    if version == 5:
        assert answers(conn, queries['transport'], 'away@example.com') == ['lmtp-nodes:inet:m2.example.net:24']
        assert answers(conn, queries['mailboxes'], 'alice@example.com') == ['1']


def test_rerun_changes_nothing_and_password_is_kept(postfix_account):
    assert make_account(5) is False
    conn = connect(USER, PASSWORD)
    with conn.cursor() as cur:
        cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        grants = ' '.join(r[0] for r in cur.fetchall())
    assert 'password' not in grants.replace('IDENTIFIED BY PASSWORD', '')
    assert 'ON `mailserver`.*' not in grants, grants     # the broader grant is gone
    assert '`email`' in grants and '`host`' in grants
