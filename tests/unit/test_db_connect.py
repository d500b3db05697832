# -*- coding: utf-8 -*-
"""Unit tests of the connection options of the account modules: several login_host values, TLS, failover order."""

import pymysql
import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_db


def params(**kw):
    base = dict(login_host=None, login_port=None, login_user='mailadmin', login_password='pw', login_unix_socket=None,
                config_file=None, login_db=None, ca_cert=None, client_cert=None, client_key=None, check_hostname=True,
                connect_timeout=5, login_tls_required=True)
    base.update(kw)
    return base


def test_one_host_as_string_keeps_working():
    candidates, where = vmail_db.connection_params(params(login_host='db1.example', login_tls_required=False))
    assert [(c['host'], c['port']) for c in candidates] == [('db1.example', 3306)]
    assert 'ssl' not in candidates[0]
    assert "db1.example:3306" in where


def test_hosts_in_order_with_port_and_tls():
    candidates, where = vmail_db.connection_params(params(login_host=['db2.example', 'db1.example', 'db3.example'],
                                                          login_port=3307, ca_cert='/etc/vmail/db-ca.pem'))
    assert [c['host'] for c in candidates] == ['db2.example', 'db1.example', 'db3.example']
    assert {c['port'] for c in candidates} == {3307}
    for c in candidates:
        assert c['ssl'] == {'ca': '/etc/vmail/db-ca.pem', 'check_hostname': True}
        assert c['user'] == 'mailadmin' and c['database'] == 'mailserver'
    assert where.index('db2.example') < where.index('db1.example') < where.index('db3.example')


def test_check_hostname_off_and_default_on():
    c = vmail_db.connection_params(params(login_host=['h'], ca_cert='/ca.pem', check_hostname=False))[0][0]
    assert c['ssl'] == {'ca': '/ca.pem', 'check_hostname': False}
    c = vmail_db.connection_params(params(login_host=['h'], ca_cert='/ca.pem', check_hostname=None))[0][0]
    assert c['ssl']['check_hostname'] is True


def test_socket_wins_and_defaults():
    candidates = vmail_db.connection_params(params(login_host=['h1', 'h2'], login_unix_socket='/run/mysqld/mysqld.sock'))[0]
    assert len(candidates) == 1 and candidates[0]['unix_socket'] == '/run/mysqld/mysqld.sock' and 'host' not in candidates[0]
    candidates = vmail_db.connection_params(params())[0]
    assert [(c['host'], c['port']) for c in candidates] == [('localhost', 3306)]


def test_option_file_host(tmp_path):
    cnf = tmp_path / 'my.cnf'
    cnf.write_text('[client]\nhost = db9.example\nport = 3310\n')
    candidates = vmail_db.connection_params(params(config_file=str(cnf), login_tls_required=False))[0]
    assert [(c['host'], c['port']) for c in candidates] == [('db9.example', 3310)]


# Issue #20 item 6: no plaintext to another host unless the caller says so.
LOCAL = ['localhost', '127.0.0.1', '127.0.0.2', '127.1', '::1', '[::1]', 'unix:/run/mysqld/mysqld.sock',
         '/run/mysqld/mysqld.sock']
REMOTE = ['db1.example', '10.0.0.5', '192.168.1.1', '::2', '[2001:db8::1]', 'localhost.example', 'mylocalhost',
          '128.0.0.1', '0.0.0.0']


@pytest.mark.parametrize('host', LOCAL)
def test_local_hosts_may_be_plain(host):
    assert vmail_db.is_local_host(host)
    candidates = vmail_db.connection_params(params(login_host=[host]))[0]
    assert 'ssl' not in candidates[0]


@pytest.mark.parametrize('host', REMOTE)
def test_remote_host_without_tls_is_refused(host):
    assert not vmail_db.is_local_host(host)
    with pytest.raises(vmail_db.VmailDbError) as err:
        vmail_db.connection_params(params(login_host=['127.0.0.1', host]))
    msg = str(err.value)
    assert host in msg and 'ca_cert' in msg and 'login_tls_required' in msg and 'Nothing was written' in msg
    assert '127.0.0.1' not in msg and 'pw' not in msg.split()


@pytest.mark.parametrize('host', REMOTE)
def test_remote_host_with_ca_or_explicit_consent(host):
    assert vmail_db.connection_params(params(login_host=[host], ca_cert='/ca.pem'))[0][0]['ssl']['ca'] == '/ca.pem'
    assert 'ssl' not in vmail_db.connection_params(params(login_host=[host], login_tls_required=False))[0][0]


def test_remote_host_from_the_option_file_is_refused(tmp_path):
    cnf = tmp_path / 'my.cnf'
    cnf.write_text('[client]\nhost = db9.example\n')
    with pytest.raises(vmail_db.VmailDbError, match='db9.example'):
        vmail_db.connection_params(params(config_file=str(cnf)))
    cnf.write_text('[client]\nhost = db9.example\nsocket = /run/mysqld/mysqld.sock\n')
    assert vmail_db.connection_params(params(config_file=str(cnf)))[0][0]['unix_socket'] == '/run/mysqld/mysqld.sock'


def test_socket_is_local_whatever_the_host():
    got = vmail_db.connection_params(params(login_host=['db1.example'], login_unix_socket='/run/mysqld/mysqld.sock'))
    assert got[0][0]['unix_socket'] == '/run/mysqld/mysqld.sock'


def test_no_host_means_localhost_and_is_local():
    assert vmail_db.connection_params(params())[0][0]['host'] == 'localhost'


def test_the_rule_is_the_postfix_roles_rule():
    import os
    import re
    import warnings
    import yaml
    path = os.path.join(os.path.dirname(__file__), '..', '..', 'roles', 'postfix', 'vars', 'main.yml')
    with open(path) as handle:
        text = yaml.safe_load(handle)['_postfix_mysql_remote_hosts']
    role_re = re.search(r"reject\('match', '([^']+)'\)", text).group(1)
    assert role_re == '^(localhost|127[.][0-9.]+|::1|[[]::1[]]|unix:.*|/.*)$'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # Python reads '[[]' as a possible nested set; it is not
        role_re = re.compile(role_re)
    for host in LOCAL + REMOTE:
        assert bool(re.match(role_re, host)) == vmail_db.is_local_host(host), host


class FakeCursor(object):
    def __init__(self, error=None):
        self.error = error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, query):
        if self.error:
            raise self.error


class FakeConn(object):
    def __init__(self, host, probe_error=None):
        self.host = host
        self.probe_error = probe_error
        self.closed = False

    def cursor(self):
        return FakeCursor(self.probe_error)

    def close(self):
        self.closed = True


def fake_connect(behaviour, calls):
    """pymysql.connect replacement: behaviour maps host -> exception to raise, or a FakeConn."""
    def connect(**kwargs):
        calls.append(kwargs['host'])
        result = behaviour.get(kwargs['host'])
        if isinstance(result, Exception):
            raise result
        return result or FakeConn(kwargs['host'])
    return connect


def candidates(*hosts):
    return [dict(host=h, port=3306) for h in hosts]


def test_failover_on_connection_errors(monkeypatch):
    calls = []
    monkeypatch.setattr(pymysql, 'connect', fake_connect({
        'db1': pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'db1'"),
        'db2': pymysql.err.OperationalError(1040, 'Too many connections'),
    }, calls))
    conn, host = vmail_db.open_first(candidates('db1', 'db2', 'db3', 'db4'))
    assert host == 'db3' and conn.host == 'db3'
    assert calls == ['db1', 'db2', 'db3']


def test_no_failover_on_access_denied(monkeypatch):
    calls = []
    monkeypatch.setattr(pymysql, 'connect', fake_connect({
        'db1': pymysql.err.OperationalError(2013, 'Lost connection'),
        'db2': pymysql.err.OperationalError(1045, "Access denied for user 'mailadmin'"),
    }, calls))
    with pytest.raises(pymysql.err.OperationalError) as err:
        vmail_db.open_first(candidates('db1', 'db2', 'db3'))
    assert err.value.args[0] == 1045
    assert calls == ['db1', 'db2']


def test_galera_node_outside_primary_component_is_skipped(monkeypatch):
    calls = []
    stale = FakeConn('db1', probe_error=pymysql.err.OperationalError(1047, 'WSREP has not yet prepared node'))
    monkeypatch.setattr(pymysql, 'connect', fake_connect({'db1': stale}, calls))
    conn, host = vmail_db.open_first(candidates('db1', 'db2'))
    assert host == 'db2' and stale.closed and calls == ['db1', 'db2']


def test_all_hosts_down_raises_last_error(monkeypatch):
    calls = []
    monkeypatch.setattr(pymysql, 'connect', fake_connect({
        'db1': pymysql.err.OperationalError(2003, 'refused db1'),
        'db2': pymysql.err.OperationalError(2003, 'refused db2'),
    }, calls))
    with pytest.raises(pymysql.err.OperationalError) as err:
        vmail_db.open_first(candidates('db1', 'db2'))
    assert 'db2' in err.value.args[1] and calls == ['db1', 'db2']


def test_single_host_is_not_probed(monkeypatch):
    calls = []
    conn = FakeConn('db1', probe_error=AssertionError('probed'))
    monkeypatch.setattr(pymysql, 'connect', fake_connect({'db1': conn}, calls))
    assert vmail_db.open_first(candidates('db1'))[0] is conn
