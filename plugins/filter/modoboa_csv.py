# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: modoboa_csv
short_description: Turn a Modoboa import CSV into the accounts structure of mail_accounts
version_added: "0.5.0"
description:
  - Parses the CSV format of Modoboa's C(manage.py modo import) (and C(modo export identities)/C(domains))
    and returns C(domains), C(users) and C(aliases) lists in the form the options of
    M(vmail.mailserver.mail_accounts) (and the role variables C(mailsql_domains), C(mailsql_users),
    C(mailsql_aliases) or their C(__*) parts) take, with Modoboa's enabled flags, quotas and domain aliases
    mapped onto the account model (schema version 4, see docs/modules.md).
  - The text is read with Python's C(csv) module, separator C(;), fields stripped of surrounding white
    space (as Modoboa does), so quoted fields may hold C(;) or line breaks. Empty lines are skipped.
  - "Modoboa 2.9.1 and later escape spreadsheet formulas in their export (C(escape_csv_cell) in
    C(modoboa/lib/csvutils.py)): a field that starts with C(=), C(+), C(-), C(@), a tab or a line break gets a
    leading C('), so a catch-all alias C(@example.com) is written as C('@example.com). The filter removes that
    C(') again from every field except the password, which is taken as it is."
  - "Quotas: Modoboa stores every quota as an integer number of megabytes of 2^20 bytes (MiB), C(0) = unlimited:
    its Dovecot user query returns C(quota_rule = *:bytes=<quota>M), which Dovecot reads as C(<quota> * 1048576)
    bytes (Modoboa's test log C(modoboa/maillog/tests/mail.log): C(quota_rule=*:bytes=2048M) gives
    C(bytes=2147483648)), and C(Mailbox.get_quota) in C(modoboa/admin/models/mailbox.py) divides the used bytes
    by 1048576. The modules take bytes, so a quota C(N) becomes C(N * 1048576) (C(500) -> C(524288000))."
  - "C(domain; <name>; <quota>; <default mailbox quota>; <enabled>) becomes C({name: <name>}), plus
    C(default_quota: <default mailbox quota> * 1048576) when the default mailbox quota is not C(0) or empty, plus
    C(active: false) when the domain is disabled (see O(disabled)). The domain's total quota (shared by its
    mailboxes) has no equivalent here, where quotas are per mailbox: a value other than C(0) or empty fails unless
    O(domain_quota=ignore) or O(ignore_quota=true) drops it."
  - "C(domainalias; <name>; <targeted domain>; <enabled>) (the order of Modoboa's C(DomainAlias.from_csv) and
    export) becomes a domain entry C({name: <name>, alias_of: <targeted domain>}), plus C(active: false) when it is
    disabled: mail to C(user@<name>) is delivered to C(user@<targeted domain>). Domain and domain alias names
    share one name space (a name given twice fails). A target that is itself a domain alias of the file, or the
    alias domain itself, fails with the line number. A target that is not a domain of the file is passed on as it
    is: M(vmail.mailserver.mail_accounts) accepts a target that exists in the database or is declared in the same
    task and otherwise fails naming it, with nothing written (so domains and domain aliases may come from
    separate files)."
  - "C(account; <loginname>; <password>; <first name>; <last name>; <enabled>; <role>; <address>[; <quota>[; <domain>...]])
    becomes C({email: <address>, password: ...}) or C({email: <address>, password_hash: ...}) (see O(passwords)),
    plus C(quota: <quota> * 1048576) when the quota is not C(0) or empty, plus C(active: false) when the account
    is disabled. A quota of C(0) (unlimited) is left out (the column default), except for a mailbox in a domain of
    the file that has a default mailbox quota: there it is C(quota: 0), because a new mailbox without C(quota)
    gets its domain's C(default_quota). A missing or empty quota field is left out (as in Modoboa, a new mailbox
    then gets the default quota of its domain). The login name, first and last name, role and administered
    domains have no place in the schema and are dropped: Dovecot logs users in with their address, as Modoboa's
    own Dovecot configuration does. An account line without an address (a Modoboa administrator without a
    mailbox) is skipped."
  - "C(alias; <address>; <enabled>; <recipient>[; <recipient>...]) becomes
    C({source: <address>, destination: [<recipient>, ...], exclusive: true}) (see O(exclusive)), plus
    C(active: false) when it is disabled. An address of the form C(@domain) is a catch-all."
  - "Lines this collection cannot represent fail with their line number: C(relaydomain) and any other object
    type (for example the old C(forward) and C(dlist))."
  - "Enabled objects get no C(active) key, and C(0) quotas no C(quota)/C(default_quota) key, so that the result
    of a file where nothing is disabled, no quota is set and no domain alias is given also applies to a database
    below schema version 4 (the guide's schema). Anything else needs schema version 4: on an older database
    M(vmail.mailserver.mail_accounts) fails, naming schema migration 4 and the C(vmail.mailserver.mailsql) role
    or M(vmail.mailserver.mail_schema) that apply it, with nothing written."
  - "Unset keys mean unchanged to M(vmail.mailserver.mail_accounts) for an existing row: re-applying a file after
    an object was re-enabled, or a quota set back to C(0), in Modoboa leaves the stored C(active: false) or quota
    as they are. Set them with the modules (or M(vmail.mailserver.mail_info) C(format=accounts) and edit) in
    that case."
  - Addresses and domain names are checked and normalized (lowercased, internationalized domains
    converted to punycode) with the collection's own address code, the code the modules use; a bad one
    fails with its line number. A domain (or domain alias), mailbox or alias source given twice fails,
    naming both lines. Ready hashes are checked the way M(vmail.mailserver.mail_user) checks
    O(vmail.mailserver.mail_user#module:password_hash).
  - Error messages never contain passwords or hashes.
  - "Requirements on the controller: the Python packages C(idna) and C(passlib) (the ones the modules need
    on the managed host)."
  - The result holds the passwords of the file. Pass it straight to the module or role, or keep it in
    a variable of a task with C(no_log); do not print it.
options:
  _input:
    description: Text of the CSV file, for example from C(lookup('ansible.builtin.file', 'export.csv')).
    type: str
    required: true
  passwords:
    description:
      - How the password field of C(account) lines is read.
      - C(auto) takes a value with a Dovecot C({SCHEME}) prefix in upper case (what Modoboa stores and
        exports, for example C({SHA512-CRYPT}$6$...)) or a bare crypt string (C($6$), C($5$), C($2y$), C($2b$), C($2a$), C($1$))
        as a ready hash (C(password_hash)), anything else as a cleartext password (C(password)),
        like Modoboa's C(--crypt-passwords) import for cleartext files.
      - A C({SHA512-CRYPT}$6$...) hash is returned without its prefix, as the bare C($6$...) string the modules
        store for that scheme (with the prefix it is 120 characters long, the guide's C(password) column holds 106;
        Dovecot, with the dovecot role's C(default_pass_scheme = SHA512-CRYPT), reads both alike). Other hashes
        are returned as they are.
      - C(plain) takes every value as cleartext; C(hashed) takes every value as a ready hash.
      - An empty password field fails.
    type: str
    choices: [ auto, plain, hashed ]
    default: auto
  ignore_quota:
    description:
      - C(true) drops every quota of the file (domain quota, default mailbox quota, mailbox quota); the result
        has no C(quota) or C(default_quota) key. The fields must still be empty or non-negative integers.
      - C(false) converts default mailbox quotas and mailbox quotas to bytes (see the description) and treats
        domain quotas as O(domain_quota) says.
    type: bool
    default: false
  domain_quota:
    description:
      - What to do with a domain's total quota (the third field of a C(domain) line) other than C(0) or empty.
        Quotas here are per mailbox only (C(quota), C(default_quota)); nothing limits the sum of a domain's mailboxes.
      - C(fail) fails with the line number. C(ignore) drops it (the default mailbox quota and the mailbox quotas
        are still converted).
    type: str
    choices: [ fail, ignore ]
    default: fail
    version_added: "0.5.0"
  disabled:
    description:
      - What to do with a domain, domain alias, account or alias whose enabled field is false (Modoboa reads
        C(true), C(1), C(yes), C(y) in any case as true, anything else as false).
      - "C(keep) returns it with C(active: false) (needs schema version 4): a disabled mailbox refuses logins and
        incoming mail and keeps its mail, a disabled alias is not expanded, a disabled domain or domain alias is
        kept with everything in it and treated as absent (docs/modules.md)."
      - C(skip) leaves the object out of the result (with C(purge=true) of M(vmail.mailserver.mail_accounts) an
        existing one is then removed). A skipped domain takes the accounts, aliases (by the domain of their
        source) and domain aliases (by their target) of the file that belong to it along. A skipped account or
        alias is also taken out of the recipients of the aliases (M(vmail.mailserver.mail_accounts) refuses a
        destination in a managed domain that is neither a mailbox nor an alias), and an alias left without
        recipients is skipped in turn.
      - C(fail) fails with the line number.
      - Enabled objects never get an C(active) key.
      - C(keep) is the default since version 0.3.0; before, C(fail) was.
    type: str
    choices: [ keep, skip, fail ]
    default: keep
  exclusive:
    description: Value of C(exclusive) in every alias entry; C(true) makes the alias's destinations
      exactly the recipients of its line.
    type: bool
    default: true
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_accounts
  - module: vmail.mailserver.mail_schema
  - name: Modoboa documentation, Moving to Modoboa, Using CSV files
    description: The import format.
    link: https://modoboa.readthedocs.io/en/latest/moving.html
  - name: Modoboa documentation, Dovecot configuration
    description: The user query that hands Modoboa's quota to Dovecot as C(*:bytes=<quota>M).
    link: https://modoboa.readthedocs.io/en/latest/installation/dovecot.html
  - name: Dovecot quota plugin
    description: Quota rules and their units; a limit of 0 is no limit.
    link: https://doc.dovecot.org/main/core/plugins/quota.html
'''

EXAMPLES = r'''
# export.csv, as written by "python manage.py modo export domains" and "... identities" or by hand:
#   domain; example.com; 0; 2048; true
#   domainalias; example.net; example.com; true
#   domain; old.example; 0; 0; false
#   account; alice@example.com; {SHA512-CRYPT}$6$...; Alice; Liddell; true; SimpleUsers; alice@example.com; 2048
#   account; bob@example.com; S3cret-initial; Bob; ; false; SimpleUsers; bob@example.com; 500
#   account; carol@example.com; {SHA512-CRYPT}$6$...; Carol; ; true; SimpleUsers; carol@example.com; 0
#   alias; sales@example.com; true; alice@example.com; bob@example.com
#   alias; info@example.com; false; alice@example.com
#
# gives (passwords shortened):
#   domains:
#     - {name: example.com, default_quota: 2147483648}           # 2048 MiB
#     - {name: example.net, alias_of: example.com}
#     - {name: old.example, active: false}
#   users:
#     - {email: alice@example.com, password_hash: "$6$...", quota: 2147483648}
#     - {email: bob@example.com, password: S3cret-initial, quota: 524288000, active: false}
#     - {email: carol@example.com, password_hash: "$6$...", quota: 0}    # unlimited, not example.com's default
#   aliases:
#     - {source: sales@example.com, destination: [alice@example.com, bob@example.com], exclusive: true}
#     - {source: info@example.com, destination: [alice@example.com], exclusive: true, active: false}

- name: Apply a Modoboa export in one task (schema version 4, as the mailsql role creates)
  vmail.mailserver.mail_accounts:
    config_file: /etc/vmail/mailsql-admin.cnf
    domains: "{{ __accounts.domains }}"
    users: "{{ __accounts.users }}"
    aliases: "{{ __accounts.aliases }}"
  vars:
    __accounts: "{{ lookup('ansible.builtin.file', 'export.csv') | vmail.mailserver.modoboa_csv }}"

# Through the mailsql role: the result becomes split account variables
# (group_vars/mail_db/modoboa.yml), merged with mailsql_domains/users/aliases.
# mailsql_domains__modoboa: "{{ (lookup('ansible.builtin.file', 'export.csv') | vmail.mailserver.modoboa_csv).domains }}"
# mailsql_users__modoboa: "{{ (lookup('ansible.builtin.file', 'export.csv') | vmail.mailserver.modoboa_csv).users }}"
# mailsql_aliases__modoboa: "{{ (lookup('ansible.builtin.file', 'export.csv') | vmail.mailserver.modoboa_csv).aliases }}"

- name: Drop domain quotas (there are only per-mailbox quotas here), keep the mailbox quotas
  ansible.builtin.set_fact:
    __accounts: "{{ lookup('ansible.builtin.file', 'export.csv') | vmail.mailserver.modoboa_csv(domain_quota='ignore') }}"
  no_log: true

- name: For a database below schema version 4, leave disabled objects out and drop every quota
  ansible.builtin.set_fact:
    __accounts: "{{ lookup('ansible.builtin.file', 'export.csv') | vmail.mailserver.modoboa_csv(disabled='skip', ignore_quota=true) }}"
  no_log: true
'''

RETURN = r'''
_value:
  description: The accounts of the file, in file order.
  type: dict
  contains:
    domains:
      description:
        - One entry per C(domain) and C(domainalias) line (normalized names), in file order.
        - C(name) (str); C(default_quota) (int, bytes; only when the default mailbox quota is not 0);
          C(alias_of) (str, the target domain; only for a C(domainalias) line); C(active) (bool, only C(false),
          only for a disabled line with O(disabled=keep)).
      type: list
      elements: dict
      sample: [{"name": "example.com", "default_quota": 2147483648}, {"name": "example.net", "alias_of": "example.com"},
               {"name": "old.example", "active": false}]
    users:
      description:
        - One entry per C(account) line with an address.
        - C(email) (str); C(password) or C(password_hash) (str); C(quota) (int, bytes, C(0) = unlimited; left out
          for a quota of 0 or none, except C(0) in a domain of the file with a default quota);
          C(active) (bool, only C(false), only for a disabled account with O(disabled=keep)).
      type: list
      elements: dict
      sample: [{"email": "alice@example.com", "password_hash": "$6$...", "quota": 2147483648},
               {"email": "bob@example.com", "password": "S3cret-initial", "quota": 524288000, "active": false}]
    aliases:
      description:
        - One entry per C(alias) line.
        - C(source) (str, C(@domain) for a catch-all); C(destination) (list of str); C(exclusive) (bool, see
          O(exclusive)); C(active) (bool, only C(false), only for a disabled alias with O(disabled=keep)).
      type: list
      elements: dict
      sample: [{"source": "sales@example.com", "destination": ["alice@example.com", "bob@example.com"],
                "exclusive": true},
               {"source": "info@example.com", "destination": ["alice@example.com"], "exclusive": true, "active": false}]
'''

import csv
import io
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_address
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing

TRUE_VALUES = ('true', '1', 'yes', 'y')  # Modoboa's reading of a boolean field
# Modoboa's quota unit: megabytes of 2^20 bytes. Its Dovecot user query returns
# "*:bytes=<quota>M" and Dovecot reads 2048M as 2147483648 bytes (see DOCUMENTATION).
MIB = 1024 * 1024
MAX_BYTES = 2 ** 64 - 1  # BIGINT UNSIGNED, the quota columns of schema version 4
# Bare crypt(3) strings taken as ready hashes in passwords=auto (Dovecot's CRYPT forms).
_BARE_CRYPT = re.compile(r'^\$(1|5|6|2[aby])\$')
# A Dovecot {SCHEME} prefix (scheme names are upper case: SHA512-CRYPT, SSHA256, PLAIN, ...).
_SCHEME_PREFIX = re.compile(r'^\{[A-Z0-9][A-Z0-9.-]*\}')
# Modoboa's export (since 2.9.1, modoboa/lib/csvutils.py escape_csv_cell) writes a "'" before a
# field that starts with one of these characters, so a catch-all "@example.com" arrives as
# "'@example.com"; its import does not undo it.
FORMULA_PREFIXES = ('=', '+', '-', '@', '\t', '\r', '\n')
UNSUPPORTED = {
    'relaydomain': 'relay domains are not supported by vmail.mailserver',
}
DISABLED_CHOICES = ('keep', 'skip', 'fail')
DOMAIN_QUOTA_CHOICES = ('fail', 'ignore')


class ModoboaCsvError(ValueError):
    """A line of the CSV cannot be represented; the message names the line."""


def _is_true(value):
    return value.strip().lower() in TRUE_VALUES


def _enabled(value, disabled, line, what):
    """Read an enabled field: True (enabled), False (disabled, kept as active: false) or None (disabled, skip it).

    Fails for a disabled object with ``disabled='fail'``.
    """
    if _is_true(value):
        return True
    if disabled == 'fail':
        raise ModoboaCsvError('line %d: %s is disabled; use disabled=keep to import it with active: false '
                              '(schema version 4) or disabled=skip to leave it out' % (line, what))
    return None if disabled == 'skip' else False


def _megabytes(value, what, line):
    """Return the integer of a quota field (Modoboa's MiB), or None when it is empty."""
    value = value.strip()
    if value == '':
        return None
    try:
        number = int(value)
    except ValueError:
        raise ModoboaCsvError('line %d: %s %r is not an integer' % (line, what, value[:20]))
    if number < 0:
        raise ModoboaCsvError('line %d: %s %d is negative' % (line, what, number))
    if number * MIB > MAX_BYTES:
        raise ModoboaCsvError('line %d: %s %d MB is larger than the quota columns hold' % (line, what, number))
    return number


def _unescape(value):
    """Undo Modoboa's spreadsheet formula escape (``'`` before a leading formula character) of one field."""
    if len(value) > 1 and value[0] == "'" and value[1] in FORMULA_PREFIXES:
        return value[1:].strip()
    return value


def _fields(row, line, kind, minimum, exact=False, verbatim=()):
    """Return the stripped, unescaped fields of ``row`` after checking their count (trailing empty fields ignored).

    The fields whose indexes are in ``verbatim`` (the password) are only stripped.
    """
    fields = [f.strip() if i in verbatim else _unescape(f.strip()) for i, f in enumerate(row)]
    while len(fields) > minimum and fields[-1] == '':
        fields.pop()
    if len(fields) < minimum or (exact and len(fields) > minimum):
        expected = ('%d' if exact else 'at least %d') % minimum
        raise ModoboaCsvError('line %d: %s lines have %s fields, this one has %d'
                              % (line, kind, expected, len(fields)))
    return fields


def _address(value, line, what, catchall=False):
    try:
        return vmail_address.normalize_address(value, allow_catchall=catchall)
    except vmail_address.AddressError as exc:
        raise ModoboaCsvError('line %d: %s: %s' % (line, what, exc))


def _domain(value, line, what):
    try:
        return vmail_address.normalize_domain(value)
    except vmail_address.AddressError as exc:
        raise ModoboaCsvError('line %d: %s: %s' % (line, what, exc))


def _password(value, line, mode):
    """Return ('password' or 'password_hash', value) for the password field of an account line."""
    if value == '':
        raise ModoboaCsvError('line %d: the account has no password' % line)
    if mode == 'hashed' or (mode == 'auto' and (_SCHEME_PREFIX.match(value) or _BARE_CRYPT.match(value))):
        try:
            scheme = vmail_hashing.check_hash(value)
        except vmail_hashing.HashingError as exc:
            raise ModoboaCsvError('line %d: the password field is not a usable hash: %s' % (line, exc))
        prefix, rest = vmail_hashing.split_scheme(value)
        if prefix is not None and scheme in vmail_hashing.UNPREFIXED:
            # The form the modules store for SHA512-CRYPT: {SHA512-CRYPT}$6$... is 120
            # characters, the guide's password column 106; Dovecot reads both alike.
            value = rest
        return 'password_hash', value
    try:
        vmail_hashing.check_password(value)
    except vmail_hashing.HashingError as exc:
        raise ModoboaCsvError('line %d: %s' % (line, exc))
    return 'password', value


def _seen(index, key, line, what):
    if key in index:
        raise ModoboaCsvError('line %d: %s %s was already given on line %d' % (line, what, key, index[key]))
    index[key] = line


def _domain_of(address):
    return address.rsplit('@', 1)[1]


class _Parser(object):
    """State of one parse: the result lists and what the cross-line checks need."""

    def __init__(self, passwords, ignore_quota, domain_quota, disabled, exclusive):
        self.passwords = passwords
        self.ignore_quota = ignore_quota
        self.domain_quota = domain_quota
        self.disabled = disabled
        self.exclusive = exclusive
        self.result = {'domains': [], 'users': [], 'aliases': []}
        self.seen = {'domains': {}, 'users': {}, 'aliases': {}}
        self.default_quota = {}  # domain name -> default_quota (bytes) of the domains of the file
        self.domain_aliases = {}  # alias domain name -> (line, entry)
        self.skipped_domains = set()
        self.skipped_addresses = set()  # accounts and alias sources left out (disabled=skip)
        self.unlimited = []  # (entry, domain) of mailboxes with quota 0

    def domain(self, row, line):
        fields = _fields(row, line, 'domain', 5, exact=True)
        name = _domain(fields[1], line, 'domain')
        enabled = _enabled(fields[4], self.disabled, line, 'domain %s' % name)
        if enabled is None:
            self.skipped_domains.add(name)
            return
        total = _megabytes(fields[2], 'domain quota', line)
        default = _megabytes(fields[3], 'default mailbox quota', line)
        _seen(self.seen['domains'], name, line, 'domain')
        entry = {'name': name}
        if total and not self.ignore_quota and self.domain_quota == 'fail':
            raise ModoboaCsvError('line %d: domain quota %d MB of %s cannot be represented: quotas here are per '
                                  'mailbox only (quota, default_quota); use domain_quota=ignore to drop domain '
                                  'quotas or ignore_quota=true to drop every quota' % (line, total, name))
        if default and not self.ignore_quota:
            entry['default_quota'] = default * MIB
            self.default_quota[name] = entry['default_quota']
        if not enabled:
            entry['active'] = False
        self.result['domains'].append(entry)

    def domainalias(self, row, line):
        fields = _fields(row, line, 'domainalias', 4, exact=True)
        name = _domain(fields[1], line, 'domain alias')
        target = _domain(fields[2], line, 'domain alias target')
        if target == name:
            raise ModoboaCsvError('line %d: domain alias %s cannot be an alias of itself' % (line, name))
        enabled = _enabled(fields[3], self.disabled, line, 'domain alias %s' % name)
        if enabled is None:
            return
        _seen(self.seen['domains'], name, line, 'domain')
        entry = {'name': name, 'alias_of': target}
        if not enabled:
            entry['active'] = False
        self.domain_aliases[name] = (line, entry)
        self.result['domains'].append(entry)

    def account(self, row, line):
        fields = _fields(row, line, 'account', 7, verbatim=(2,))
        address = fields[7] if len(fields) > 7 else ''
        if address == '':
            return  # an administrator without a mailbox: nothing to store
        email = _address(address, line, 'account address')
        enabled = _enabled(fields[5], self.disabled, line, 'account %s' % email)
        if enabled is None:
            self.skipped_addresses.add(email)
            return
        megabytes = _megabytes(fields[8], 'mailbox quota', line) if len(fields) > 8 else None
        key, value = _password(fields[2], line, self.passwords)
        _seen(self.seen['users'], email, line, 'account')
        entry = {'email': email, key: value}
        if megabytes and not self.ignore_quota:
            entry['quota'] = megabytes * MIB
        elif megabytes == 0 and not self.ignore_quota:
            self.unlimited.append((entry, _domain_of(email)))
        if not enabled:
            entry['active'] = False
        self.result['users'].append(entry)

    def alias(self, row, line):
        fields = _fields(row, line, 'alias', 4)
        source = _address(fields[1], line, 'alias address', catchall=True)
        enabled = _enabled(fields[2], self.disabled, line, 'alias %s' % source)
        if enabled is None:
            self.skipped_addresses.add(source)
            return
        recipients = [_address(f, line, 'alias recipient') for f in fields[3:] if f != '']
        if not recipients:
            raise ModoboaCsvError('line %d: alias %s has no recipient' % (line, source))
        _seen(self.seen['aliases'], source, line, 'alias')
        entry = {'source': source, 'destination': recipients, 'exclusive': self.exclusive}
        if not enabled:
            entry['active'] = False
        self.result['aliases'].append(entry)

    def finish(self):
        """Cross-line rules: alias domain targets, quota 0 under a default quota, contents of skipped domains."""
        for name, (line, entry) in self.domain_aliases.items():
            target = entry['alias_of']
            if target in self.domain_aliases:
                raise ModoboaCsvError('line %d: domain alias %s points to %s, which is itself a domain alias (line %d); '
                                      'point it to %s instead' % (line, name, target, self.domain_aliases[target][0],
                                                                  self.domain_aliases[target][1]['alias_of']))
        for entry, domain in self.unlimited:
            if self.default_quota.get(domain):
                entry['quota'] = 0  # unlimited, not the domain's default_quota a new mailbox would get
        if self.skipped_domains or self.skipped_addresses:
            self._leave_out_skipped()
        return self.result

    def _leave_out_skipped(self):
        """disabled=skip: drop what belongs to a skipped domain and recipients that were skipped.

        mail_accounts refuses an alias destination in a managed domain that
        is neither a mailbox nor an alias (typo protection), so a skipped
        account or alias is taken out of the recipients; an alias left
        without recipients is skipped in turn.
        """
        skipped = self.skipped_domains
        result = self.result
        result['domains'] = [d for d in result['domains'] if d.get('alias_of') not in skipped]
        result['users'] = [u for u in result['users'] if _domain_of(u['email']) not in skipped]
        gone = set(self.skipped_addresses)
        aliases = [a for a in result['aliases'] if _domain_of(a['source']) not in skipped]
        while True:
            kept = []
            for alias in aliases:
                destination = [r for r in alias['destination'] if r not in gone]
                if destination:
                    kept.append(dict(alias, destination=destination))
                else:
                    gone.add(alias['source'])
            if len(kept) == len(aliases):
                break
            aliases = kept
        result['aliases'] = kept


def parse_modoboa_csv(text, passwords='auto', ignore_quota=False, disabled='keep', exclusive=True,
                      domain_quota='fail'):
    """Parse the text of a Modoboa import CSV into ``{'domains': [...], 'users': [...], 'aliases': [...]}``.

    See DOCUMENTATION for the line formats, the mapping onto the account
    model (quotas in bytes, ``active``, ``alias_of``) and the options.
    Raises :class:`ModoboaCsvError` naming the (first physical) line number
    of the first line that cannot be represented.
    """
    if passwords not in ('auto', 'plain', 'hashed'):
        raise ModoboaCsvError('passwords must be one of auto, plain, hashed, not %r' % (passwords,))
    if disabled not in DISABLED_CHOICES:
        raise ModoboaCsvError('disabled must be one of %s, not %r' % (', '.join(DISABLED_CHOICES), disabled))
    if domain_quota not in DOMAIN_QUOTA_CHOICES:
        raise ModoboaCsvError('domain_quota must be one of %s, not %r'
                              % (', '.join(DOMAIN_QUOTA_CHOICES), domain_quota))
    if text.startswith('\ufeff'):  # byte order mark written by some spreadsheet programs
        text = text[1:]
    parser = _Parser(passwords, ignore_quota, domain_quota, disabled, exclusive)
    handlers = {'domain': parser.domain, 'domainalias': parser.domainalias, 'account': parser.account,
                'alias': parser.alias}
    reader = csv.reader(io.StringIO(text, newline=''), delimiter=';', skipinitialspace=True, strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ModoboaCsvError('line %d: not valid CSV: %s' % (reader.line_num, exc))
        end = reader.line_num
        if not row or all(f.strip() == '' for f in row):
            continue
        kind = row[0].strip().lower()
        if kind in UNSUPPORTED:
            raise ModoboaCsvError('line %d: %s lines cannot be represented: %s' % (start, kind, UNSUPPORTED[kind]))
        if kind not in handlers:
            raise ModoboaCsvError('line %d: unknown or unsupported object type %r; supported: domain, domainalias, '
                                  'account, alias' % (start, row[0].strip()[:30]))
        handlers[kind](row, start)
    return parser.finish()


def modoboa_csv(text, passwords='auto', ignore_quota=False, disabled='keep', exclusive=True, domain_quota='fail'):
    """Filter entry point: see :func:`parse_modoboa_csv`."""
    if not isinstance(text, string_types):
        raise AnsibleFilterError('modoboa_csv expects the text of a CSV file, got %s' % type(text).__name__)
    if not vmail_address.HAS_IDNA or not vmail_hashing.HAS_PASSLIB:
        raise AnsibleFilterError('modoboa_csv needs the Python packages idna and passlib on the controller')
    try:
        return parse_modoboa_csv(to_text(text), passwords=passwords, ignore_quota=bool(ignore_quota),
                                 disabled=disabled, exclusive=bool(exclusive), domain_quota=domain_quota)
    except ModoboaCsvError as exc:
        raise AnsibleFilterError('modoboa_csv: %s' % exc)


class FilterModule(object):
    """vmail.mailserver filters."""

    def filters(self):
        return {'modoboa_csv': modoboa_csv}
