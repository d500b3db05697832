# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database access shared by the vmail.mailserver account modules.

Modelled on community.mysql's ``module_utils/mysql.py``: one argument spec
for the connection options, PyMySQL only, parameterized statements only.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import time
import traceback

try:
    import configparser
except ImportError:  # pragma: no cover - Python 2 is not supported
    configparser = None

try:
    import pymysql
    import pymysql.cursors
    HAS_PYMYSQL = True
    PYMYSQL_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the host
    HAS_PYMYSQL = False
    PYMYSQL_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema

DEFAULT_DB = 'mailserver'
# The guide tables and the widths of their text columns come from the one schema description.
TABLES = schema.TABLES
GUIDE_WIDTHS = schema.GUIDE_WIDTHS
LOCK_TIMEOUT = 60
# MariaDB/MySQL error numbers
ER_DUP_ENTRY = 1062
ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205
RETRYABLE = (ER_DUP_ENTRY, ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT)
# Errors after which connect() tries the next login_host: the server cannot be reached
# or does not serve (client errors 2000-2999 such as 2003 "Can't connect", which PyMySQL
# also raises for a TLS handshake or certificate failure; 1040 too many connections;
# 1053 shutdown in progress; 1047 a Galera node that is not part of the primary component).
# An answer from the server about the account (1045 access denied, 1044, 1049) is not:
# every node of a cluster would give the same one.
ER_CON_COUNT = 1040
ER_UNKNOWN_COM = 1047
ER_SERVER_SHUTDOWN = 1053
FAILOVER_ERRORS = (ER_CON_COUNT, ER_UNKNOWN_COM, ER_SERVER_SHUTDOWN)
# A database host on this machine (loopback or a unix socket): the same rule as the postfix and dovecot
# roles' "is the database on this host" test (roles/postfix/vars/main.yml, roles/dovecot/vars/main.yml).
LOCAL_HOST_RE = re.compile(r'^(localhost|127[.][0-9.]+|::1|\[::1\]|unix:.*|/.*)$')


def vmail_db_argument_spec():
    """Return the connection argument spec shared by all account modules (see the vmail_db doc fragment)."""
    return dict(
        login_host=dict(type='list', elements='str'),
        login_port=dict(type='int'),
        login_user=dict(type='str'),
        login_password=dict(type='str', no_log=True),
        login_unix_socket=dict(type='path'),
        config_file=dict(type='path', default='~/.my.cnf'),
        login_db=dict(type='str'),
        ca_cert=dict(type='path', aliases=['ssl_ca']),
        client_cert=dict(type='path', aliases=['ssl_cert']),
        client_key=dict(type='path', aliases=['ssl_key']),
        check_hostname=dict(type='bool', default=True),
        connect_timeout=dict(type='int', default=30),
        login_tls_required=dict(type='bool', default=True),
    )


class VmailDbError(Exception):
    """A database problem with a message that is safe to show (never contains secrets)."""


def read_option_file(path):
    """Return the ``[client]`` section of a MySQL option file as a dict.

    Returns an empty dict when the file does not exist; raises
    :class:`VmailDbError` when it exists but cannot be read or parsed.
    """
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        return {}
    parser = configparser.RawConfigParser(allow_no_value=True, strict=False, interpolation=None)
    try:
        with open(path) as handle:
            parser.read_file(handle)
    except (OSError, IOError) as exc:
        raise VmailDbError('cannot read config_file %s: %s' % (path, exc.strerror or exc))
    except configparser.Error as exc:
        raise VmailDbError('cannot parse config_file %s: %s' % (path, exc.__class__.__name__))
    result = {}
    for section in ('client', 'mysql', 'mariadb-client'):
        if parser.has_section(section):
            for key, value in parser.items(section):
                key = key.replace('_', '-')
                if value is not None and key not in result:
                    value = value.strip()
                    if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
                        value = value[1:-1]
                    result[key] = value
    return result


def is_local_host(host):
    """True when ``host`` is this machine: localhost, 127.x, ::1 (bracketed or not), a unix: or / path."""
    return bool(host) and LOCAL_HOST_RE.match(host.strip()) is not None and '\n' not in host


def check_transport(hosts, tls, required=True):
    """Refuse plaintext to another host: raise :class:`VmailDbError` naming the remote ``hosts`` when
    ``tls`` (a CA to verify the server) is off and ``required`` is not false; return the remote hosts."""
    remote = [h for h in hosts if not is_local_host(h)]
    if remote and not tls and required is not False:
        raise VmailDbError(
            'login_host %s is not on this host and no ca_cert is given: the account data and the password of '
            'login_user would cross the network in clear. Set ca_cert to the CA certificate of the database '
            'server (the mailsql role exports it as mailsql__tls_ca_cert), or set login_tls_required=false to '
            'accept a plaintext connection. Nothing was written.' % ', '.join(remote))
    return remote


def connection_params(params):
    """Merge module options over the option file; return (list of kwargs for pymysql.connect, description).

    The list holds one entry per host of ``login_host`` (in order; connect() tries them so),
    or a single entry for a unix socket or a host from the option file.
    """
    cnf = read_option_file(params['config_file']) if params.get('config_file') else {}
    kwargs = dict(charset='utf8mb4', autocommit=False, connect_timeout=params.get('connect_timeout') or 30,
                  cursorclass=pymysql.cursors.DictCursor)
    user = params.get('login_user') if params.get('login_user') is not None else cnf.get('user')
    password = params.get('login_password') if params.get('login_password') is not None else cnf.get('password')
    if user is not None:
        kwargs['user'] = user
    if password is not None:
        kwargs['password'] = password
    kwargs['database'] = params.get('login_db') or cnf.get('database') or DEFAULT_DB
    socket = params.get('login_unix_socket')
    hosts = params.get('login_host')
    if isinstance(hosts, str):
        hosts = [hosts]
    hosts = [h.strip() for h in (hosts or []) if h and h.strip()]
    if socket is None and not hosts:
        socket = cnf.get('socket')
        hosts = [cnf['host']] if cnf.get('host') else []
    ssl = {}
    for opt, key in (('ca_cert', 'ca'), ('client_cert', 'cert'), ('client_key', 'key')):
        if params.get(opt):
            ssl[key] = params[opt]
    if ssl:
        ssl['check_hostname'] = params.get('check_hostname') is not False
        kwargs['ssl'] = ssl
    if socket:
        kwargs['unix_socket'] = os.path.expanduser(socket)
        return [kwargs], 'database %r on %s as %r' % (kwargs['database'], socket, user)
    check_transport(hosts or ['localhost'], bool(params.get('ca_cert')), params.get('login_tls_required'))
    port = params.get('login_port') or cnf.get('port') or 3306
    try:
        port = int(port)
    except ValueError:
        raise VmailDbError('invalid port %r in config_file' % port)
    candidates = [dict(kwargs, host=host, port=port) for host in (hosts or ['localhost'])]
    where = ', '.join('%s:%s' % (c['host'], port) for c in candidates)
    return candidates, 'database %r on %s as %r' % (kwargs['database'], where, user)


def is_failover_error(exc):
    """True when ``exc`` (a PyMySQL error) means: this server cannot be used, try the next one."""
    code = error_code(exc)
    return code is None or 2000 <= code < 3000 or code in FAILOVER_ERRORS


def open_first(candidates):
    """Connect to the first of ``candidates`` (pymysql.connect kwargs) that serves; return (connection, host).

    A server that cannot be reached (or, with several candidates, does not answer
    ``SELECT 1``, e.g. a Galera node outside the primary component) is skipped;
    any other error (access denied, unknown database) is raised at once. When every
    candidate fails, the last error is raised.
    """
    last = None
    for kwargs in candidates:
        try:
            conn = pymysql.connect(**kwargs)
        except pymysql.err.MySQLError as exc:
            if not is_failover_error(exc):
                raise
            last = exc
            continue
        if len(candidates) > 1:
            try:
                with conn.cursor() as cursor:
                    cursor.execute('SELECT 1')
            except pymysql.err.MySQLError as exc:
                conn.close()
                if not is_failover_error(exc):
                    raise
                last = exc
                continue
        return conn, kwargs.get('host', kwargs.get('unix_socket'))
    raise last


def connect(module):
    """Open a connection for ``module`` (first reachable login_host) or fail with a clear message."""
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib('PyMySQL (Debian package python3-pymysql)'),
                         exception=PYMYSQL_IMPORT_ERROR)
    try:
        candidates, where = connection_params(module.params)
    except VmailDbError as exc:
        module.fail_json(msg=str(exc))
    try:
        conn = open_first(candidates)[0]
    except pymysql.err.MySQLError as exc:
        module.fail_json(msg='Unable to connect to %s: %s' % (where, describe_error(exc)))
    except (OSError, ValueError) as exc:
        module.fail_json(msg='Unable to connect to %s: %s' % (where, exc))
    return conn


def describe_error(exc):
    """Return ``(errno) message`` for a PyMySQL error without a traceback."""
    args = getattr(exc, 'args', ())
    if len(args) >= 2:
        return '(%s) %s' % (args[0], args[1])
    return str(exc) or exc.__class__.__name__


def error_code(exc):
    """Return the MariaDB/MySQL error number of a PyMySQL error, or None."""
    args = getattr(exc, 'args', ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def check_schema(cursor):
    """Check that the guide tables exist; return {(table, column): width}.

    The dict holds the guide's text columns (width from ``information_schema``,
    the guide width when it cannot tell) and the optional columns of
    ``vmail_schema`` that exist in this database (width None for non-text columns).
    """
    cursor.execute(*schema.information_schema_sql())
    columns = {}
    for row in cursor.fetchall():
        columns[(row['t'], row['c'])] = row['w']
    missing = [t for t in TABLES if not any(key[0] == t for key in columns)]
    if missing:
        raise VmailDbError('table(s) %s not found in the database; create the schema first '
                           '(the vmail.mailserver.mailsql role does this)' % ', '.join(missing))
    widths = {}
    for key, default in GUIDE_WIDTHS.items():
        if key not in columns:
            raise VmailDbError('column %s.%s not found; the database does not have the expected schema' % key)
        widths[key] = int(columns[key]) if columns[key] else default
    for table in schema.SCHEMA:
        for col in table.optional:
            key = (table.name, col.name)
            if key in columns:
                widths[key] = int(columns[key]) if columns[key] else None
    return widths


def lock_name(cursor):
    """Name of the advisory lock that serializes writers on this database (max 64 characters)."""
    cursor.execute('SELECT DATABASE() AS db')
    return ('vmail.mailserver:%s' % cursor.fetchone()['db'])[:64]


def run_transaction(module, conn, work, retries=3):
    """Run ``work(cursor, widths)`` inside one transaction under the database's writer lock.

    ``work`` reads the current state, plans and (unless in check mode)
    writes, and returns the module result dict. The transaction is
    committed only when not in check mode; on any error it is rolled back.
    Duplicate-key errors and deadlocks (another writer won a race) are
    retried: ``work`` then reads the state the other writer left behind.
    """
    attempt = 0
    while True:
        attempt += 1
        cursor = conn.cursor()
        name = None
        try:
            widths = check_schema(cursor)
            name = acquire_lock(cursor)
            conn.begin()
            result = work(cursor, widths)
            if module.check_mode:
                conn.rollback()
            else:
                conn.commit()
            return result
        except pymysql.err.MySQLError as exc:
            _rollback(conn)
            if error_code(exc) in RETRYABLE and attempt <= retries:
                time.sleep(0.05 * attempt)
                continue
            module.fail_json(msg='Database error, nothing was changed: %s' % describe_error(exc))
        except (VmailDbError, ValueError) as exc:  # AddressError and HashingError are ValueErrors
            _rollback(conn)
            module.fail_json(msg=str(exc))
        except BaseException:  # includes SystemExit from fail_json() inside work()
            _rollback(conn)
            raise
        finally:
            release_lock(cursor, name)
            cursor.close()


def acquire_lock(cursor):
    """Take the writer lock of the database (:func:`lock_name`); return its name. Raises VmailDbError on timeout."""
    name = lock_name(cursor)
    cursor.execute('SELECT GET_LOCK(%s, %s) AS got', (name, LOCK_TIMEOUT))
    if cursor.fetchone()['got'] != 1:
        raise VmailDbError('timed out after %d s waiting for the lock %r held by another writer' % (LOCK_TIMEOUT, name))
    return name


def release_lock(cursor, name):
    """Release the lock ``name`` taken by :func:`acquire_lock` (nothing when ``name`` is None)."""
    if name is not None:
        try:
            cursor.execute('SELECT RELEASE_LOCK(%s)', (name,))
        except pymysql.err.MySQLError:
            pass


def run_locked(module, conn, work):
    """Run ``work(cursor)`` under the database's writer lock, without a transaction; return its result.

    For schema changes (DDL commits implicitly in MariaDB/MySQL): ``work``
    commits what it writes. Database errors and ValueErrors (for example a
    failed migration check) end the module with ``fail_json``.
    """
    cursor = conn.cursor()
    held = []

    def locked():
        held.append(acquire_lock(cursor))
        return work(cursor)
    try:
        return _guarded(module, conn, locked)
    finally:
        release_lock(cursor, held[0] if held else None)
        cursor.close()


def _guarded(module, conn, call):
    """Return ``call()``; on a database error, VmailDbError or ValueError roll back and fail ``module``."""
    try:
        return call()
    except pymysql.err.MySQLError as exc:
        _rollback(conn)
        module.fail_json(msg='Database error: %s' % describe_error(exc))
    except (VmailDbError, ValueError) as exc:
        _rollback(conn)
        module.fail_json(msg=str(exc))


def _rollback(conn):
    try:
        conn.rollback()
    except pymysql.err.MySQLError:
        pass


def read_only(module, conn, work):
    """Run ``work(cursor, widths)`` in a consistent read-only snapshot and return its result."""
    cursor = conn.cursor()

    def snapshot():
        widths = check_schema(cursor)
        cursor.execute('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY')
        result = work(cursor, widths)
        conn.rollback()
        return result
    try:
        return _guarded(module, conn, snapshot)
    finally:
        cursor.close()


def run_and_exit(module, work, write=True, after=None):
    """Connect, run ``work(cursor, widths)`` and exit the module with the dict it returns.

    With ``write=True`` the work runs through :func:`run_transaction` (one locked
    transaction, rolled back in check mode or on error); otherwise through
    :func:`read_only`. The connection is closed in every case; errors end the
    module with ``fail_json`` as those functions describe. ``after(result)``, when
    given, runs once the work is committed and may add to the result.
    """
    conn = connect(module)
    try:
        result = run_transaction(module, conn, work) if write else read_only(module, conn, work)
    finally:
        conn.close()
    if after is not None:
        # After the commit (and the connection is closed): e.g. ending the sessions of disabled mailboxes.
        after(result)
    module.exit_json(**result)
