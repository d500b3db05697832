# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: modoboa_csv
short_description: Turn a Modoboa import CSV into the accounts structure of mail_accounts
version_added: "0.2.0"
description:
  - Parses the CSV format of Modoboa's C(manage.py modo import) (and C(modo export identities)/C(domains))
    and returns C(domains), C(users) and C(aliases) lists in the form the options of
    M(vmail.mailserver.mail_accounts) (and the role variables C(mailsql_domains), C(mailsql_users),
    C(mailsql_aliases) or their C(__*) parts) take.
  - The text is read with Python's C(csv) module, separator C(;), fields stripped of surrounding white
    space (as Modoboa does), so quoted fields may hold C(;) or line breaks. Empty lines are skipped.
  - "C(domain; <name>; <quota>; <default mailbox quota>; <enabled>) becomes C({name: <name>}).
    A quota other than C(0) or empty fails (the guide schema has no quotas) unless O(ignore_quota=true)."
  - "C(account; <loginname>; <password>; <first name>; <last name>; <enabled>; <role>; <address>[; <quota>[; <domain>...]])
    becomes C({email: <address>, password: ...}) or C({email: <address>, password_hash: ...}), see O(passwords).
    The login name, first and last name, role and administered domains have no place in the guide schema
    and are dropped: Dovecot logs users in with their address, as Modoboa's own Dovecot configuration does.
    An account line without an address (a Modoboa administrator without a mailbox) is skipped."
  - "C(alias; <address>; <enabled>; <recipient>[; <recipient>...]) becomes
    C({source: <address>, destination: [<recipient>, ...], exclusive: true}) (see O(exclusive)).
    An address of the form C(@domain) is a catch-all."
  - "Lines this collection cannot represent yet fail with their line number: C(domainalias) (alias domains),
    C(relaydomain), any other object type (for example the old C(forward) and C(dlist)), disabled objects
    (see O(disabled)) and quotas (see O(ignore_quota))."
  - Addresses and domain names are checked and normalized (lowercased, internationalized domains
    converted to punycode) with the collection's own address code, the code the modules use; a bad one
    fails with its line number. A domain, mailbox or alias source given twice fails, naming both lines.
    Ready hashes are checked the way M(vmail.mailserver.mail_user) checks O(vmail.mailserver.mail_user#module:password_hash).
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
      - C(false) fails on a domain quota, default mailbox quota or mailbox quota other than C(0) or empty
        (the guide schema stores no quotas). C(true) drops the quotas.
    type: bool
    default: false
  disabled:
    description:
      - What to do with a domain, account or alias whose enabled field is false (Modoboa reads C(true),
        C(1), C(yes), C(y) in any case as true, anything else as false). The guide schema has no
        enabled flag.
      - C(fail) fails with the line number. C(skip) leaves the object out of the result (with
        C(purge=true) of M(vmail.mailserver.mail_accounts) an existing one is then removed).
    type: str
    choices: [ fail, skip ]
    default: fail
  exclusive:
    description: Value of C(exclusive) in every alias entry; C(true) makes the alias's destinations
      exactly the recipients of its line.
    type: bool
    default: true
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_accounts
  - name: Modoboa documentation, Moving to Modoboa, Using CSV files
    description: The import format.
    link: https://modoboa.readthedocs.io/en/latest/moving.html
'''

EXAMPLES = r'''
# export.csv, as written by "python manage.py modo export identities" or by hand:
#   domain; example.com; 0; 0; true
#   account; alice@example.com; {SHA512-CRYPT}$6$...; Alice; Liddell; true; SimpleUsers; alice@example.com; 0
#   account; bob@example.com; S3cret-initial; Bob; ; true; SimpleUsers; bob@example.com
#   alias; sales@example.com; true; alice@example.com; bob@example.com

- name: Apply a Modoboa export in one task
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

- name: Leave disabled objects out and drop quotas
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
      description: One C({name}) per C(domain) line (normalized name).
      type: list
      elements: dict
      sample: [{"name": "example.com"}]
    users:
      description: One C({email, password}) or C({email, password_hash}) per C(account) line with an address.
      type: list
      elements: dict
      sample: [{"email": "alice@example.com", "password_hash": "$6$..."}]
    aliases:
      description: One C({source, destination, exclusive}) per C(alias) line; C(destination) is a list.
      type: list
      elements: dict
      sample: [{"source": "sales@example.com", "destination": ["alice@example.com", "bob@example.com"],
                "exclusive": true}]
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
# Bare crypt(3) strings taken as ready hashes in passwords=auto (Dovecot's CRYPT forms).
_BARE_CRYPT = re.compile(r'^\$(1|5|6|2[aby])\$')
# A Dovecot {SCHEME} prefix (scheme names are upper case: SHA512-CRYPT, SSHA256, PLAIN, ...).
_SCHEME_PREFIX = re.compile(r'^\{[A-Z0-9][A-Z0-9.-]*\}')
UNSUPPORTED = {
    'domainalias': 'alias domains are not supported by vmail.mailserver yet',
    'relaydomain': 'relay domains are not supported by vmail.mailserver',
}


class ModoboaCsvError(ValueError):
    """A line of the CSV cannot be represented; the message names the line."""


def _is_true(value):
    return value.strip().lower() in TRUE_VALUES


def _skip_disabled(enabled, disabled, line, what):
    """Return True to leave out a disabled object (disabled=skip); fail for disabled=fail; False when enabled."""
    if _is_true(enabled):
        return False
    if disabled == 'fail':
        raise ModoboaCsvError('line %d: %s is disabled, which the guide schema cannot represent; '
                              'use disabled=skip to leave disabled objects out' % (line, what))
    return True


def _quota(value, what, line, ignore_quota):
    """Check one quota field: empty or 0 is no quota; anything else fails unless ignored."""
    value = value.strip()
    if value in ('', '0'):
        return
    try:
        number = int(value)
    except ValueError:
        raise ModoboaCsvError('line %d: %s %r is not an integer' % (line, what, value[:20]))
    if number < 0:
        raise ModoboaCsvError('line %d: %s %d is negative' % (line, what, number))
    if not ignore_quota:
        raise ModoboaCsvError('line %d: %s %d cannot be represented (the guide schema has no quotas); '
                              'use ignore_quota=true to drop quotas' % (line, what, number))


def _fields(row, line, kind, minimum, exact=False):
    """Return the stripped fields of ``row`` after checking their count (trailing empty fields ignored)."""
    fields = [f.strip() for f in row]
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


def parse_modoboa_csv(text, passwords='auto', ignore_quota=False, disabled='fail', exclusive=True):
    """Parse the text of a Modoboa import CSV into ``{'domains': [...], 'users': [...], 'aliases': [...]}``.

    See DOCUMENTATION for the line formats and options. Raises :class:`ModoboaCsvError`
    naming the (first physical) line number of the first line that cannot be represented.
    """
    if passwords not in ('auto', 'plain', 'hashed'):
        raise ModoboaCsvError('passwords must be one of auto, plain, hashed, not %r' % (passwords,))
    if disabled not in ('fail', 'skip'):
        raise ModoboaCsvError('disabled must be one of fail, skip, not %r' % (disabled,))
    if text.startswith('\ufeff'):  # byte order mark written by some spreadsheet programs
        text = text[1:]
    result = {'domains': [], 'users': [], 'aliases': []}
    seen = {'domains': {}, 'users': {}, 'aliases': {}}
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

        if kind == 'domain':
            fields = _fields(row, start, kind, 5, exact=True)
            if _skip_disabled(fields[4], disabled, start, 'domain %s' % fields[1][:60]):
                continue
            _quota(fields[2], 'domain quota', start, ignore_quota)
            _quota(fields[3], 'default mailbox quota', start, ignore_quota)
            try:
                name = vmail_address.normalize_domain(fields[1])
            except vmail_address.AddressError as exc:
                raise ModoboaCsvError('line %d: domain: %s' % (start, exc))
            _seen(seen['domains'], name, start, 'domain')
            result['domains'].append({'name': name})

        elif kind == 'account':
            fields = _fields(row, start, kind, 7)
            address = fields[7] if len(fields) > 7 else ''
            if address == '':
                continue  # an administrator without a mailbox: nothing to store
            email = _address(address, start, 'account address')
            if _skip_disabled(fields[5], disabled, start, 'account %s' % email):
                continue
            if len(fields) > 8:
                _quota(fields[8], 'mailbox quota', start, ignore_quota)
            key, value = _password(fields[2], start, passwords)
            _seen(seen['users'], email, start, 'account')
            result['users'].append({'email': email, key: value})

        elif kind == 'alias':
            fields = _fields(row, start, kind, 4)
            source = _address(fields[1], start, 'alias address', catchall=True)
            if _skip_disabled(fields[2], disabled, start, 'alias %s' % source):
                continue
            recipients = [_address(f, start, 'alias recipient') for f in fields[3:] if f != '']
            if not recipients:
                raise ModoboaCsvError('line %d: alias %s has no recipient' % (start, source))
            _seen(seen['aliases'], source, start, 'alias')
            result['aliases'].append({'source': source, 'destination': recipients, 'exclusive': exclusive})

        else:
            raise ModoboaCsvError('line %d: unknown or unsupported object type %r; supported: domain, account, '
                                  'alias' % (start, row[0].strip()[:30]))
    return result


def modoboa_csv(text, passwords='auto', ignore_quota=False, disabled='fail', exclusive=True):
    """Filter entry point: see :func:`parse_modoboa_csv`."""
    if not isinstance(text, string_types):
        raise AnsibleFilterError('modoboa_csv expects the text of a CSV file, got %s' % type(text).__name__)
    if not vmail_address.HAS_IDNA or not vmail_hashing.HAS_PASSLIB:
        raise AnsibleFilterError('modoboa_csv needs the Python packages idna and passlib on the controller')
    try:
        return parse_modoboa_csv(to_text(text), passwords=passwords, ignore_quota=bool(ignore_quota),
                                 disabled=disabled, exclusive=bool(exclusive))
    except ModoboaCsvError as exc:
        raise AnsibleFilterError('modoboa_csv: %s' % exc)


class FilterModule(object):
    """vmail.mailserver filters."""

    def filters(self):
        return {'modoboa_csv': modoboa_csv}
