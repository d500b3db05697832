# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options shared by all vmail.mailserver account modules
    # (modelled on community.mysql's mysql doc fragment).
    DOCUMENTATION = r'''
options:
  login_host:
    description:
      - Host running the database server, or a list of hosts (for example every node of a
        Galera cluster). A single host name keeps working as before.
      - The hosts are tried in the order given. The next one is tried when a host cannot be
        reached or does not serve (connection refused or timed out after I(connect_timeout),
        TLS handshake or certificate failure, too many connections, shutdown in progress, and,
        with several hosts, a node that does not answer C(SELECT 1), such as a Galera node outside
        the primary component). An answer about the account (access denied, unknown database)
        ends the module at once. When every host fails, the error names all of them.
      - When neither this nor I(login_unix_socket) is set, the C(host) or C(socket) entry of
        I(config_file) is used, and then C(localhost) (a TCP connection).
    type: list
    elements: str
  login_port:
    description:
      - TCP port of the database server.
      - When not set, the C(port) entry of I(config_file) is used, and then C(3306).
    type: int
  login_user:
    description:
      - Database account. The modules need C(SELECT), C(INSERT), C(UPDATE) and C(DELETE)
        on the mail database (the C(mailadmin) account of the mailsql role).
      - When not set, the C(user) entry of I(config_file) is used.
    type: str
  login_password:
    description:
      - Password of I(login_user). Never logged.
      - When not set, the C(password) entry of I(config_file) is used.
    type: str
  login_unix_socket:
    description:
      - Path of the server's unix socket; takes precedence over I(login_host).
    type: path
  config_file:
    description:
      - MySQL option file whose C([client]) section supplies defaults for C(user), C(password),
        C(host), C(port), C(socket) and C(database). Explicit module options win.
      - Ignored when the file does not exist; an existing but unreadable or malformed file is an error.
      - The mailsql role writes C(/etc/vmail/mailsql-admin.cnf) for this purpose.
    type: path
    default: '~/.my.cnf'
  login_db:
    description:
      - Name of the mail database.
      - When not set, the C(database) entry of I(config_file) is used, and then C(mailserver).
    type: str
  ca_cert:
    description:
      - Path of a CA certificate file (PEM) on the managed host used to verify the database
        server's certificate. Setting it enables TLS with verification (the connection fails
        when the server offers no TLS or a certificate not signed by this CA); the mailsql role
        exports the CA of its server certificates as C(mailsql__tls_ca_cert).
      - Without it (and without I(client_cert)) the connection is plain, suitable only for a local server; a
        remote server then needs I(login_tls_required=false).
    type: path
    aliases: [ ssl_ca ]
  client_cert:
    description:
      - Client certificate (PEM) for TLS client authentication.
    type: path
    aliases: [ ssl_cert ]
  client_key:
    description:
      - Private key (PEM) of I(client_cert).
    type: path
    aliases: [ ssl_key ]
  check_hostname:
    description:
      - Whether to check that the server certificate names the host connected to (each entry of
        I(login_host)). Only used with TLS (I(ca_cert)); the certificate chain is verified either way.
      - Set C(false) only when the servers are reached under names their certificates do not carry.
    type: bool
    default: true
  connect_timeout:
    description:
      - Connection timeout in seconds.
    type: int
    default: 30
  login_tls_required:
    description:
      - Refuse to connect in clear to a database server on another host. With C(true), a I(login_host) (or C(host)
        of I(config_file)) that is not this host fails the module before it connects, and so before anything is
        read or written, unless I(ca_cert) is given (TLS with verification).
      - This host means C(localhost), C(127.x.x.x), C(::1) or C([::1]), a C(unix:) or C(/) path, or
        I(login_unix_socket); the same rule as the postfix and dovecot roles' C(postfix_mysql_tls_required) and
        C(dovecot_mysql_tls_required).
      - Set C(false) to accept a plaintext connection to another host (the account data and the password of
        I(login_user) then cross the network readable).
    type: bool
    default: true
    version_added: "0.5.0"
requirements:
  - PyMySQL (Debian package C(python3-pymysql)) on the managed host.
notes:
  - The modules run on the managed host and connect from there. See the collection's
    C(docs/modules.md), section "Host requirements", for the exact Debian packages per release.
  - Every change is made in one database transaction; on any error it is rolled back
    and nothing is half written.
  - Writers serialize on the named lock C(vmail.mailserver:<database>) (MariaDB/MySQL C(GET_LOCK)),
    so concurrent runs against the same database do not create duplicate rows.
  - Supports C(check_mode) (nothing is written; C(changed) is what a real run would report)
    and C(--diff).
'''

    ADDRESS = r'''
options:
  lowercase_local_part:
    description:
      - Lowercase the local part of addresses before they are stored or compared.
      - The domain part is always lowercased and converted to its A-label (punycode) form.
      - MariaDB compares the guide's C(utf8) columns case-insensitively, so an address that
        differs only in case is the same row; with C(true) the stored form is made lowercase.
    type: bool
    default: true
'''
