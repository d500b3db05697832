# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative account sets: validate, read, compare, plan and apply.

This is where every account decision of vmail.mailserver lives; the modules
``mail_accounts`` (a whole set), ``mail_domain``, ``mail_user`` and
``mail_alias`` (one entry each) only parse options, call these functions and
report. The steps, each a function:

1. :func:`normalize_input` validates and normalizes the declared entries
   with :mod:`vmail_address` and :mod:`vmail_hashing` and rejects duplicate or
   contradictory entries, naming them (``users[3] (a@example.com)``).
2. :func:`read_state` reads the current rows in one SELECT per table (or,
   for the single modules, only the rows a ``scope`` names) into dicts.
3. :func:`verify_jobs` / :func:`run_parallel` verify declared cleartext
   passwords against stored hashes (a process pool above
   :data:`POOL_THRESHOLD` passwords).
4. :func:`plan_accounts` compares desired and current state in O(n) with
   dict lookups; :func:`compare_keys` is the one purge rule (in the manner of
   ``compare_aws_tags`` in amazon.aws' ``module_utils/tagging.py``).
5. :func:`hash_passwords` hashes the passwords that must be written (not in
   check mode), :func:`apply_plan` writes the plan with ``executemany``
   per table in dependency order inside the caller's transaction
   (``vmail_db.run_transaction``: one transaction, writer lock, retries,
   rollback on error and in check mode).
6. :func:`summarize` and :func:`diff_text` report what changed.

Keys: MariaDB compares the guide's ``utf8`` columns case-insensitively, so
entries and rows are matched by :func:`fold` (lowercase); the stored case of
an address is corrected when it differs from the normalized one.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import multiprocessing
import os

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import (
    AddressError, HAS_IDNA, IDNA_IMPORT_ERROR, check_width, domain_of, normalize_address, normalize_domain,
    normalize_host)

PRESENT = 'present'
ABSENT = 'absent'
STATES = (PRESENT, ABSENT)
UPDATE_PASSWORD = ('always', 'on_create')
CREATE = 'create'
UPDATE = 'update'
REMOVE = 'remove'
# Hash or verify in a process pool from this many passwords on (smaller sets are not worth the fork).
POOL_THRESHOLD = 64
# Values per IN list / ids per DELETE statement.
CHUNK = 1000
# Errors shown in one failure message.
MAX_ERRORS = 20
# Written instead of a hash in check mode (where nothing is hashed); the transaction is rolled back.
CHECK_MODE_PASSWORD = '*'
HIDDEN = '(hidden)'
# What Ansible shows for a no_log value.
NO_LOG_MASK = 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
# Largest value of a BIGINT UNSIGNED quota column.
MAX_QUOTA = 2 ** 64 - 1
# alias_of value that makes an alias domain a normal domain again (the column becomes NULL).
NOT_AN_ALIAS = ''
# host value that clears the node of a domain or mailbox (the column becomes NULL: the domain's or the only node).
NO_HOST = ''


class AccountsError(ValueError):
    """Invalid input or a plan that cannot be applied; nothing is written.

    ``errors`` is a list of (label, message) pairs, the label naming the
    entry (``users[3] (a@example.com)``) or empty.
    """

    def __init__(self, errors):
        self.errors = list(errors)
        shown = ['%s: %s' % (label, msg) if label else msg for label, msg in self.errors[:MAX_ERRORS]]
        more = len(self.errors) - len(shown)
        text = '; '.join(shown)
        if more > 0:
            text += '; and %d more problem(s)' % more
        super(AccountsError, self).__init__(text)

    def messages(self):
        """Return the messages without labels (what a single-entry module shows)."""
        return '; '.join(msg for label, msg in self.errors)


def require_libraries(module, passlib=True):
    """Fail ``module`` with the Debian package to install when idna (or, with ``passlib``, passlib) is missing."""
    if not HAS_IDNA:
        module.fail_json(msg=missing_required_lib('idna (Debian package python3-idna)'), exception=str(IDNA_IMPORT_ERROR))
    if passlib and not hashing.HAS_PASSLIB:
        module.fail_json(msg=missing_required_lib('passlib (Debian package python3-passlib)'),
                         exception=hashing.PASSLIB_IMPORT_ERROR)


def fold(value):
    """Return the comparison key of a name or address (the database compares case-insensitively)."""
    return value.lower()


def _label(kind, index, key=None):
    text = '%s[%d]' % (kind, index)
    if key is not None:
        text += ' (%s)' % (key if isinstance(key, str) and len(key) <= 80 else repr(key)[:80])
    return text


# ------------------------------------------------------------------ normalization of one entry

def _state(entry):
    state = entry.get('state') or PRESENT
    if state not in STATES:
        raise ValueError('state must be one of %s, got %r' % (', '.join(STATES), state))
    return state


def parse_quota(value, option='quota'):
    """Return a quota in bytes from an int or a size string (``2G``, ``500M``, ``1024``); None stays None.

    Sizes are parsed with ``ansible.module_utils.common.text.formatters.human_to_bytes``
    (binary units: ``1K`` = 1024 bytes). 0 means unlimited. Raises ValueError for
    a negative, fractional or unparsable value or one above 2^64 - 1.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError('%s must be a number of bytes or a size such as 2G or 500M, got %r' % (option, value))
    if isinstance(value, str):
        text = value.strip()
        if text.startswith('-'):
            raise ValueError('%s must not be negative, got %r (0 means unlimited)' % (option, value))
        try:
            value = int(text) if text.isdigit() else human_to_bytes(text)
        except (ValueError, TypeError):
            raise ValueError('%s %r is not a number of bytes or a size such as 2G or 500M' % (option, text))
    if value < 0:
        raise ValueError('%s must not be negative, got %d (0 means unlimited)' % (option, value))
    if value > MAX_QUOTA:
        raise ValueError('%s %d is larger than the column holds (%d bytes)' % (option, value, MAX_QUOTA))
    return int(value)


def _flag(entry, option='active'):
    value = entry.get(option)
    if value is not None and not isinstance(value, bool):
        raise ValueError('%s must be true or false, got %r' % (option, value))
    return value


def _host(entry):
    """The ``host`` option: None (not set), ``NO_HOST`` (clear it) or a normalized host name."""
    value = entry.get('host')
    if value is None or value == NO_HOST:
        return value
    return normalize_host(value)


def normalize_domain_entry(entry):
    """Validate one ``domains`` entry.

    Returns dict(name, state, force, active, default_quota, alias_of, host)
    with the normalized name; ``alias_of`` is a normalized domain name,
    ``NOT_AN_ALIAS`` (an empty string: make it a normal domain) or None (not
    set), like ``active``, ``default_quota`` (bytes) and ``host`` (a
    normalized host name, ``NO_HOST`` or None). Raises AddressError or ValueError.
    """
    name = normalize_domain(entry.get('name'))
    alias_of = entry.get('alias_of')
    if alias_of is not None and alias_of != NOT_AN_ALIAS:
        alias_of = normalize_domain(alias_of)
        if fold(alias_of) == fold(name):
            raise ValueError('domain %s cannot be an alias domain of itself (alias_of)' % name)
    return dict(name=name, state=_state(entry), force=bool(entry.get('force')), active=_flag(entry),
                default_quota=parse_quota(entry.get('default_quota'), 'default_quota'), alias_of=alias_of,
                host=_host(entry))


def normalize_user_entry(entry, lowercase_local_part=True, update_password='always'):
    """Validate one ``users`` entry (same rules as mail_user).

    Returns dict(email, domain, password, password_hash, scheme,
    update_password, state, quota, active, host); ``quota`` (bytes),
    ``active`` and ``host`` (as for domains) are None when not set. Raises
    AddressError, HashingError or ValueError.
    """
    email = normalize_address(entry.get('email'), lowercase_local_part=lowercase_local_part)
    state = _state(entry)
    password, password_hash = entry.get('password'), entry.get('password_hash')
    if password is not None and password_hash is not None:
        raise ValueError('parameters are mutually exclusive: password|password_hash')
    if password is not None:
        hashing.check_password(password)
    if password_hash is not None:
        hashing.check_hash(password_hash)
    scheme = entry.get('password_scheme') or hashing.DEFAULT_SCHEME
    if scheme not in hashing.SCHEMES:
        raise hashing.HashingError('unsupported password scheme %r; supported: %s' % (scheme, ', '.join(hashing.SCHEMES)))
    mode = entry.get('update_password') or update_password
    if mode not in UPDATE_PASSWORD:
        raise ValueError('update_password must be one of %s, got %r' % (', '.join(UPDATE_PASSWORD), mode))
    return dict(email=email, domain=domain_of(email), password=password, password_hash=password_hash,
                scheme=scheme, update_password=mode, state=state, quota=parse_quota(entry.get('quota')),
                active=_flag(entry), host=_host(entry))


def normalize_alias_entry(entry, lowercase_local_part=True):
    """Validate one ``aliases`` entry (same rules as mail_alias).

    ``destination`` may be a string or a list. Returns dict(source, domain,
    destinations, exclusive, state, active); destinations keep their order
    without duplicates; ``active`` (all rows of the source) is None when not
    set. Raises AddressError or ValueError.
    """
    source = normalize_address(entry.get('source'), lowercase_local_part=lowercase_local_part, allow_catchall=True)
    state = _state(entry)
    raw = entry.get('destination')
    if raw is None:
        raw = []
    elif isinstance(raw, str):
        raw = [raw]
    elif not isinstance(raw, (list, tuple)):
        raise ValueError('destination must be an address or a list of addresses')
    destinations, seen = [], set()
    for item in raw:
        dest = normalize_address(item, lowercase_local_part=lowercase_local_part)
        if fold(dest) not in seen:
            seen.add(fold(dest))
            destinations.append(dest)
    if state == PRESENT and not destinations:
        raise ValueError('destination must list at least one address with state=present')
    if fold(source) in seen:
        raise ValueError('an alias from %s to itself would be a mail loop' % source)
    return dict(source=source, domain=domain_of(source), destinations=destinations,
                exclusive=bool(entry.get('exclusive')), state=state, active=_flag(entry))


# ------------------------------------------------------------------ the whole input set

class Desired(object):
    """Normalized declared entries: ``domains``, ``users``, ``aliases``, each {fold(key): entry}.

    Every entry carries ``index`` (its position in the input list, or the
    first position when entries were merged).
    """

    def __init__(self, domains=None, users=None, aliases=None):
        self.domains = domains or {}
        self.users = users or {}
        self.aliases = aliases or {}


def _merge_aliases(first, second):
    """Two entries for one alias source merge only when both add destinations (present, not exclusive)
    and do not set different ``active`` values."""
    same_active = None in (first['active'], second['active']) or first['active'] == second['active']
    if first['state'] == second['state'] == PRESENT and not first['exclusive'] and not second['exclusive'] and same_active:
        merged = dict(first)
        merged['active'] = first['active'] if first['active'] is not None else second['active']
        seen = set(fold(d) for d in first['destinations'])
        merged['destinations'] = first['destinations'] + [d for d in second['destinations'] if fold(d) not in seen]
        return merged
    return None


def _conflict(first, second, fields):
    diffs = ['%s %s and %s' % (f, _show(first.get(f)), _show(second.get(f))) for f in fields
             if first.get(f) != second.get(f)]
    return 'declared twice' + (' (%s)' % ', '.join(diffs) if diffs else '') + '; list each entry once'


def _show(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def _collect(kind, entries, normalize, key_field, errors, merge=None, compare=('state',)):
    out = {}
    for index, raw in enumerate(entries or []):
        if not isinstance(raw, dict):
            errors.append((_label(kind, index), 'must be a dict'))
            continue
        try:
            entry = normalize(raw)
        except (AddressError, hashing.HashingError, ValueError, TypeError) as exc:
            errors.append((_label(kind, index, raw.get(key_field)), str(exc)))
            continue
        entry['index'] = index
        key = fold(entry[key_field])
        other = out.get(key)
        if other is None:
            out[key] = entry
            continue
        merged = merge(other, entry) if merge else None
        if merged is None:
            errors.append(('%s and %s' % (_label(kind, other['index']), _label(kind, index, entry[key_field])),
                           _conflict(other, entry, compare)))
        else:
            out[key] = merged
    return out


def normalize_input(domains=None, users=None, aliases=None, lowercase_local_part=True, update_password='always'):
    """Validate and normalize a whole declared account set; return a :class:`Desired`.

    Every entry goes through the same per-entry functions the single
    modules use. Duplicate keys (a domain or mailbox listed twice, an alias
    source listed twice unless both entries only add destinations) and
    contradictions (a mailbox or alias declared present in a domain declared
    absent) are errors. All problems are collected and raised together as
    :class:`AccountsError`, each naming its entry by list index and key.
    """
    errors = []
    out = Desired()
    out.domains = _collect('domains', domains, normalize_domain_entry, 'name', errors,
                           compare=('state', 'force', 'active', 'default_quota', 'alias_of', 'host'))
    out.users = _collect('users', users,
                         lambda e: normalize_user_entry(e, lowercase_local_part, update_password),
                         'email', errors, compare=('state', 'scheme', 'update_password', 'quota', 'active', 'host'))
    out.aliases = _collect('aliases', aliases, lambda e: normalize_alias_entry(e, lowercase_local_part),
                           'source', errors, merge=_merge_aliases,
                           compare=('state', 'exclusive', 'destinations', 'active'))
    for kind, entries, key_field in (('users', out.users, 'email'), ('aliases', out.aliases, 'source')):
        for entry in entries.values():
            domain = out.domains.get(fold(entry['domain']))
            if entry['state'] == PRESENT and domain is not None and domain['state'] == ABSENT:
                errors.append(('%s and %s' % (_label(kind, entry['index'], entry[key_field]),
                                              _label('domains', domain['index'], domain['name'])),
                               '%s is declared present but its domain %s is declared absent'
                               % (entry[key_field], domain['name'])))
    if errors:
        raise AccountsError(errors)
    return out


def check_widths(desired, widths):
    """Check every declared value against the column widths read from the database.

    ``widths`` is {(table, column): characters} (vmail_db.check_schema).
    Raises :class:`AccountsError` naming each entry that does not fit.
    """
    errors = []
    checks = (
        ('domains', desired.domains, 'name', [('name', schema.DOMAINS, 'name', 'domain name'),
                                              ('host', schema.DOMAINS, 'host', 'host name')]),
        ('users', desired.users, 'email', [('email', schema.USERS, 'email', 'address'),
                                           ('host', schema.USERS, 'host', 'host name')]),
        ('aliases', desired.aliases, 'source', [('source', schema.ALIASES, 'source', 'address')]),
    )
    for kind, entries, key_field, fields in checks:
        for entry in entries.values():
            try:
                for field, table, column, what in fields:
                    if entry[field]:
                        check_width(entry[field], widths.get((table.name, column)), what)
                if kind == 'aliases':
                    width = widths.get((schema.ALIASES.name, 'destination'))
                    for dest in entry['destinations']:
                        check_width(dest, width)
                if kind == 'users' and entry['password_hash'] is not None:
                    width = widths.get((schema.USERS.name, 'password'))
                    if width is not None and len(entry['password_hash']) > width:
                        hashing.check_hash(entry['password_hash'], max_length=width)
            except (AddressError, hashing.HashingError) as exc:
                errors.append((_label(kind, entry['index'], entry[key_field]), str(exc)))
    errors.extend(check_columns(desired, widths))
    if errors:
        raise AccountsError(errors)


def check_columns(desired, widths):
    """Return (label, message) for every entry that sets an option whose column this database lacks.

    The columns added by a schema migration (``Column(..., since=N)``) exist
    only once it ran; on an older database the modules keep working, and
    setting such an option names the migration and how to apply it.
    """
    errors = []
    for table in schema.SCHEMA:
        missing = [c for c in table.optional if (table.name, c.name) not in widths]
        if not missing:
            continue
        key_field = table.key if table.kind != 'aliases' else 'source'
        for entry in getattr(desired, table.kind).values():
            unset = [c for c in missing if entry.get(c.option) is not None]
            if unset:
                errors.append((_label(table.kind, entry['index'], entry[key_field]),
                               '%s needs schema migration %d (column %s), which this database does not have yet; '
                               'run the vmail.mailserver.mailsql role or the vmail.mailserver.mail_schema module first'
                               % (', '.join(c.option for c in unset), unset[0].since,
                                  ', '.join('%s.%s' % (table.name, c.name) for c in unset))))
    return errors


# ------------------------------------------------------------------ current state

class State(object):
    """Current rows.

    ``domains``: {fold(name): {'name', 'ids', 'row'}} (the guide schema allows
    duplicate names; ``ids`` is ascending; ``row`` is the row of the lowest
    id, with the optional columns read); ``domain_ids``: {id: fold(name)};
    ``users``: {fold(email): row}; ``aliases``: {fold(source): {'source', 'rows'}}
    where each row has ``id``, ``domain_id``, ``destination`` and ``active``
    (None when the column does not exist). ``columns``: {kind: [names of the
    optional columns that exist and were read]}.
    """

    def __init__(self, columns=None):
        self.domains = {}
        self.domain_ids = {}
        self.users = {}
        self.aliases = {}
        self.columns = dict(columns or {})

    def add_domain(self, row):
        """Add a virtual_domains row (dict with id, name, optional columns); rows must come in ascending id order."""
        key = fold(row['name'])
        if row['id'] in self.domain_ids:
            return
        entry = self.domains.setdefault(key, {'name': row['name'], 'ids': [], 'row': dict(row)})
        entry['ids'].append(row['id'])
        self.domain_ids[row['id']] = key

    def domain_value(self, key, column, default=None):
        """Return ``column`` of the domain ``key`` (its lowest id's row), ``default`` when not read."""
        entry = self.domains.get(key)
        value = entry['row'].get(column) if entry else None
        return default if value is None else value

    def alias_target(self, key):
        """Return fold(name) of the domain that domain ``key`` is an alias of, '#<id>' when not read, or None."""
        target = self.domain_value(key, 'alias_of')
        if target is None:
            return None
        return self.domain_ids.get(target, '#%s' % target)

    def add_user(self, row):
        """Add a virtual_users row (dict with id, domain_id, email, password)."""
        self.users[fold(row['email'])] = dict(row)

    def add_alias(self, row):
        """Add a virtual_aliases row (dict with id, domain_id, source, destination)."""
        entry = self.aliases.setdefault(fold(row['source']), {'source': row['source'], 'rows': []})
        entry['rows'].append({'id': row['id'], 'domain_id': row['domain_id'], 'destination': row['destination'],
                              'active': row.get('active')})


def _chunks(items, size=CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _select(cursor, table, where, lock, extra=()):
    """Run SELECTs of ``table`` for the (column, values) pairs of ``where`` (OR), chunked; None reads all."""
    if where is None:
        cursor.execute(schema.select_sql(table, lock=lock, extra=extra))
        return list(cursor.fetchall())
    rows, seen = [], set()
    for column, values in where:
        for chunk in _chunks(values):
            cursor.execute(schema.select_sql(table, [(column, len(chunk))], lock=lock, extra=extra), chunk)
            for row in cursor.fetchall():
                if row['id'] not in seen:
                    seen.add(row['id'])
                    rows.append(row)
    rows.sort(key=lambda r: r['id'])
    return rows


def read_state(cursor, scope=None, lock=True, widths=None):
    """Read the current rows into a :class:`State`.

    ``scope`` None reads every row (one SELECT per table). Otherwise it is a
    dict that limits the reads (for the single-entry modules): ``domains``
    (names), ``users`` (emails), ``aliases`` (sources), ``destinations``
    (aliases whose destination is one of these), ``members`` (true: also the
    mailboxes and aliases of the domains read), ``aliased_by`` (true: also
    the alias domains of the domains read, and their members), ``targets``
    (names of domains read without their members). The domains that the
    domains read are alias domains of are always read too. ``lock`` reads with
    ``FOR UPDATE``. ``widths`` (vmail_db.check_schema) says which optional
    columns exist; they are read too.
    """
    columns = dict((t.kind, [c.name for c in schema.available_columns(t, widths or {})]) for t in schema.SCHEMA)
    state = State(columns)
    extra = dict((t.kind, columns[t.kind]) for t in schema.SCHEMA)
    if scope is None:
        for row in _select(cursor, schema.DOMAINS, None, lock, extra['domains']):
            state.add_domain(row)
        for row in _select(cursor, schema.USERS, None, lock, extra['users']):
            state.add_user(row)
        for row in _select(cursor, schema.ALIASES, None, lock, extra['aliases']):
            state.add_alias(row)
        return state
    names = list(scope.get('domains') or [])
    if names:
        for row in _select(cursor, schema.DOMAINS, [('name', names)], lock, extra['domains']):
            state.add_domain(row)
    member_ids = set(state.domain_ids)
    if 'alias_of' in columns['domains']:
        if scope.get('aliased_by') and state.domain_ids:
            for row in _select(cursor, schema.DOMAINS, [('alias_of', sorted(state.domain_ids))], lock, extra['domains']):
                state.add_domain(row)
            member_ids = set(state.domain_ids)
        if scope.get('targets'):
            for row in _select(cursor, schema.DOMAINS, [('name', list(scope['targets']))], lock, extra['domains']):
                state.add_domain(row)
        targets = sorted(set(e['row']['alias_of'] for e in state.domains.values()
                             if e['row'].get('alias_of') is not None) - set(state.domain_ids))
        if targets:
            for row in _select(cursor, schema.DOMAINS, [('id', targets)], lock, extra['domains']):
                state.add_domain(row)
    ids = sorted(member_ids) if scope.get('members') else []
    where = [(col, list(values)) for col, values in (('email', scope.get('users') or []), ('domain_id', ids)) if values]
    if where:
        for row in _select(cursor, schema.USERS, where, lock, extra['users']):
            state.add_user(row)
    where = [(col, list(values)) for col, values in (('source', scope.get('aliases') or []),
                                                     ('destination', scope.get('destinations') or []),
                                                     ('domain_id', ids)) if values]
    if where:
        for row in _select(cursor, schema.ALIASES, where, lock, extra['aliases']):
            state.add_alias(row)
    return state


# ------------------------------------------------------------------ password work

def _verify_job(job):
    return hashing.verify_password(job[0], job[1])


def _hash_job(job):
    return hashing.hash_password(job[0], job[1])


def run_parallel(func, items, threshold=POOL_THRESHOLD, processes=None):
    """Return ``[func(item) for item in items]``, computed by a process pool when there are many items.

    The pool (one process per core, ``multiprocessing.get_context('fork')``
    explicitly: Python 3.14 changes the default start method) is used only
    from ``threshold`` items on and with more than one core. ``func`` must
    be a module-level function. Secrets pass through the pool's pipes, never
    through files.
    """
    items = list(items)
    workers = processes or os.cpu_count() or 1
    if len(items) < threshold or workers < 2:
        return [func(item) for item in items]
    workers = min(workers, len(items))
    ctx = multiprocessing.get_context('fork')
    pool = ctx.Pool(workers)
    try:
        return pool.map(func, items, chunksize=max(1, len(items) // (workers * 8)))
    finally:
        pool.terminate()
        pool.join()


def verify_jobs(desired, state):
    """Return [(key, password, stored)] of existing mailboxes whose declared cleartext password must be verified.

    Only ``update_password: always`` entries with ``password`` whose stored
    hash already has the declared scheme (a scheme mismatch is rewritten
    without verifying, as mail_user does); ``on_create`` entries are never
    verified.
    """
    jobs = []
    for key, user in desired.users.items():
        if user['state'] != PRESENT or user['update_password'] != 'always' or user['password'] is None:
            continue
        row = state.users.get(key)
        if row is not None and hashing.identify(row['password']) == user['scheme']:
            jobs.append((key, user['password'], row['password']))
    return jobs


def verify_passwords(jobs, threshold=POOL_THRESHOLD):
    """Verify :func:`verify_jobs` output; return {key: True when the password matches}."""
    results = run_parallel(_verify_job, [(password, stored) for key, password, stored in jobs], threshold)
    return dict((job[0], bool(ok)) for job, ok in zip(jobs, results))


# ------------------------------------------------------------------ planning

def compare_keys(current, declared_present, declared_absent, purge):
    """The one purge rule: return (keep, remove) key sets of the current objects.

    ``current``: keys that exist; ``declared_present``/``declared_absent``:
    keys declared with that state. An object is removed when it is declared
    absent, or, with ``purge``, when it is not declared at all. What to
    create is ``declared_present - current``. (Modelled on
    ``compare_aws_tags`` in amazon.aws' ``module_utils/tagging.py``.)
    """
    current = set(current)
    remove = current & set(declared_absent)
    if purge:
        remove |= current - set(declared_present) - set(declared_absent)
    return current - remove, remove


class Plan(object):
    """What to write, per kind, in input order (purged objects last, sorted).

    ``domains``: {fold(name): change}; change has ``action`` (create,
    update or remove), ``name``, ``ids`` (rows removed or updated),
    ``users``/``aliases`` (numbers removed with the domain), ``declared``,
    ``fields`` (updated optional columns) and ``values`` ({optional column:
    final value}; ``alias_of`` as fold(target name)).
    ``users``: {fold(email): change}; change has ``action`` (create,
    update, remove), ``email``, ``domain``, ``id``, ``fields`` (updated
    fields among domain, email, password and the optional columns),
    ``password_changed``, ``password``, ``password_hash``, ``scheme``,
    ``hash`` (filled by :func:`hash_passwords`), ``stored`` (current hash),
    ``domain_id``, ``values`` ({optional column: final value}).
    ``aliases``: {fold(source): change}; change has ``action`` (create,
    update, remove), ``source``, ``domain``, ``add`` (destinations),
    ``remove_rows`` (rows), ``before``/``after`` (destinations),
    ``active`` (value of new rows, None without the column) and ``toggle``
    (ids of kept rows whose ``active`` is set to ``active``).
    ``domain_ids``: {fold(name): id} of the domains that exist and stay.
    ``columns``: {kind: optional column names that exist} (from the state).
    ``warnings``: messages for the caller to show.
    """

    def __init__(self):
        self.domains = {}
        self.users = {}
        self.aliases = {}
        self.domain_ids = {}
        self.warnings = []
        self.columns = {}

    @property
    def changed(self):
        """True when applying the plan writes anything."""
        return bool(self.domains or self.users or self.aliases)


def plan_accounts(desired, state, purge=False, verified=None):
    """Compare ``desired`` (:class:`Desired`) with ``state`` (:class:`State`) and return a :class:`Plan`.

    O(n) in the number of entries and rows. ``verified`` is
    {key: bool} from :func:`verify_passwords`. ``purge`` removes every
    domain, mailbox and alias that is not declared (see
    :func:`compare_keys`) and makes each declared alias source exclusive. A
    removed domain takes its mailboxes and aliases when it is purged or
    declared with ``force``; otherwise it must not have any left. Raises
    :class:`AccountsError` when the plan cannot be applied (missing domain,
    mailbox without password, alias loop or typo, domain still in use,
    an alias domain whose target is unknown or itself an alias domain, an
    alias domain with mailboxes of its own, a removed domain's alias domains
    without ``force``). A new mailbox without ``quota`` gets its domain's
    final ``default_quota``.
    """
    verified = verified or {}
    errors = []
    plan = Plan()

    # domains
    present = [k for k, d in desired.domains.items() if d['state'] == PRESENT]
    absent = [k for k, d in desired.domains.items() if d['state'] == ABSENT]
    kept, removed = compare_keys(state.domains, present, absent, purge)
    _remove_alias_domains(desired, state, kept, removed, errors)
    for key, entry in desired.domains.items():
        if entry['state'] == PRESENT and key not in state.domains:
            plan.domains[key] = dict(action=CREATE, name=entry['name'], ids=[], users=0, aliases=0, declared=True,
                                     fields=[], values=_domain_values(entry, state, None, state.columns))
        elif entry['state'] == PRESENT:
            if len(state.domains[key]['ids']) > 1:
                plan.warnings.append('virtual_domains holds %d rows named %s (ids %s); the mailsql role migration '
                                     'adds a unique index' % (len(state.domains[key]['ids']), entry['name'],
                                                              ', '.join(str(i) for i in state.domains[key]['ids'])))
            values = _domain_values(entry, state, key, state.columns)
            fields = [c for c in state.columns.get('domains', ()) if values[c] != _domain_current(state, key, c)]
            if fields:
                plan.domains[key] = dict(action=UPDATE, name=entry['name'], ids=list(state.domains[key]['ids']),
                                         users=0, aliases=0, declared=True, fields=fields, values=values,
                                         before=dict((c, _domain_current(state, key, c)) for c in fields))
    removed_order = [k for k in desired.domains if k in removed] + sorted(k for k in removed if k not in desired.domains)
    for key in removed_order:
        plan.domains[key] = dict(action=REMOVE, name=state.domains[key]['name'], ids=list(state.domains[key]['ids']),
                                 users=0, aliases=0, declared=key in desired.domains)
    plan.domain_ids = dict((k, state.domains[k]['ids'][0]) for k in kept)
    final_domains = set(kept) | set(k for k, c in plan.domains.items() if c['action'] == CREATE)
    plan.columns = dict(state.columns)
    final_alias = _final_alias_of(state, plan, final_domains)
    removed_ids = dict((i, k) for k in removed for i in state.domains[k]['ids'])

    # mailboxes
    present = [k for k, u in desired.users.items() if u['state'] == PRESENT]
    absent = [k for k, u in desired.users.items() if u['state'] == ABSENT]
    _kept_users, removed_users = compare_keys(state.users, present, absent, purge)
    for key, user in desired.users.items():
        label = _label('users', user['index'], user['email'])
        row = state.users.get(key)
        if user['state'] == ABSENT:
            continue
        dkey = fold(user['domain'])
        if dkey not in final_domains:
            errors.append((label, 'domain %s of %s does not exist in virtual_domains; create it first '
                                  '(vmail.mailserver.mail_domain, or domains of mail_accounts)' % (user['domain'], user['email'])))
            continue
        if final_alias.get(dkey) and (row is None or row['domain_id'] != plan.domain_ids.get(dkey)):
            errors.append((label, 'domain %s is an alias domain of %s and has no mailboxes of its own; create %s in '
                                  '%s instead' % (user['domain'], _domain_name(state, plan, final_alias[dkey]),
                                                  user['email'], _domain_name(state, plan, final_alias[dkey]))))
            continue
        values = _user_values(user, row, plan, state, dkey)
        if row is None:
            if user['password'] is None and user['password_hash'] is None:
                errors.append((label, 'mailbox %s does not exist; password or password_hash is required to create it'
                                      % user['email']))
                continue
            plan.users[key] = dict(action=CREATE, email=user['email'], domain=user['domain'], id=None, fields=[],
                                   password_changed=True, password=user['password'],
                                   password_hash=user['password_hash'], scheme=user['scheme'],
                                   hash=user['password_hash'], stored=None, domain_id=None, values=values)
            continue
        password_changed = False
        if user['update_password'] == 'always':
            if user['password_hash'] is not None:
                password_changed = row['password'] != user['password_hash']
            elif user['password'] is not None:
                # verify first (like community.general.htpasswd): never rehash a matching password
                password_changed = (hashing.identify(row['password']) != user['scheme']
                                    or not verified.get(key, False))
        fields = []
        wanted_id = plan.domain_ids.get(dkey)
        if wanted_id is None or row['domain_id'] != wanted_id:
            fields.append('domain')
        if row['email'] != user['email']:
            fields.append('email')
        if password_changed:
            fields.append('password')
        fields += [c for c in state.columns.get('users', ()) if values[c] != _value(row.get(c))]
        if fields:
            plan.users[key] = dict(action=UPDATE, email=user['email'], domain=user['domain'], id=row['id'],
                                   fields=fields, password_changed=password_changed, password=user['password'],
                                   password_hash=user['password_hash'], scheme=user['scheme'],
                                   hash=user['password_hash'] if password_changed else None,
                                   stored=row['password'], domain_id=row['domain_id'], values=values)

    # a removed domain takes its mailboxes and aliases (purge or force), or must have none left
    users_by_domain = {}
    for key, row in state.users.items():
        if row['domain_id'] in removed_ids:
            users_by_domain.setdefault(removed_ids[row['domain_id']], []).append(key)
    aliases_by_domain = {}
    for key, entry in state.aliases.items():
        for row in entry['rows']:
            if row['domain_id'] in removed_ids:
                aliases_by_domain.setdefault(removed_ids[row['domain_id']], []).append((key, row))
    removed_alias_rows = {}  # fold(source) -> {row id: row}
    for key in removed_order:
        change = plan.domains[key]
        entry = desired.domains.get(key)
        forced = entry is None or entry['force']
        members = users_by_domain.get(key, [])
        alias_rows = aliases_by_domain.get(key, [])
        if not forced:
            left_users = [u for u in members if u not in removed_users]
            left_aliases = [a for a in alias_rows if not _alias_row_removed(desired, a[0], a[1], purge)]
            if left_users or left_aliases:
                errors.append((_label('domains', entry['index'], entry['name']),
                               'domain %s still has %d mailbox(es) and %d alias(es); remove them first or set '
                               'force=true to remove them with the domain (mail on disk is not touched)'
                               % (entry['name'], len(left_users), len(left_aliases))))
                continue
        removed_users |= set(members)
        for source_key, row in alias_rows:
            removed_alias_rows.setdefault(source_key, {})[row['id']] = row
        change['users'] = len(members)
        change['aliases'] = len(alias_rows)
    for key in [k for k in desired.users if k in removed_users] + sorted(k for k in removed_users
                                                                         if k not in desired.users):
        row = state.users[key]
        plan.users[key] = dict(action=REMOVE, email=row['email'], domain=domain_of(row['email']), id=row['id'],
                               fields=[], password_changed=False, stored=row['password'], domain_id=row['domain_id'])
    _check_alias_domains(desired, state, plan, final_domains, final_alias, errors)

    # aliases
    present = [k for k, a in desired.aliases.items() if a['state'] == PRESENT]
    absent = [k for k, a in desired.aliases.items() if a['state'] == ABSENT and not a['destinations']]
    _kept_sources, purged_sources = compare_keys(state.aliases, present, absent, purge)
    order = list(desired.aliases) + sorted(k for k in set(purged_sources) | set(removed_alias_rows)
                                           if k not in desired.aliases)
    for key in order:
        entry = desired.aliases.get(key)
        current = state.aliases.get(key)
        rows = current['rows'] if current else []
        add, remove = [], dict(removed_alias_rows.get(key, {}))
        if entry is not None and entry['state'] == PRESENT:
            if fold(entry['domain']) not in final_domains:
                errors.append((_label('aliases', entry['index'], entry['source']),
                               'domain %s of alias source %s does not exist in virtual_domains; create it first '
                               '(vmail.mailserver.mail_domain, or domains of mail_accounts)' % (entry['domain'], entry['source'])))
                continue
            want = set(fold(d) for d in entry['destinations'])
            have = set(fold(r['destination']) for r in rows)
            add = [d for d in entry['destinations'] if fold(d) not in have]
            if entry['exclusive'] or purge:
                remove.update((r['id'], r) for r in rows if fold(r['destination']) not in want)
        elif entry is not None:
            want = set(fold(d) for d in entry['destinations'])
            remove.update((r['id'], r) for r in rows if not want or fold(r['destination']) in want)
        elif key in purged_sources:
            remove.update((r['id'], r) for r in rows)
        active, toggle = _alias_active(entry, rows, remove, state.columns)
        if not add and not remove and not toggle:
            continue
        before = unique_destinations(r['destination'] for r in rows)
        after = unique_destinations([r['destination'] for r in rows if r['id'] not in remove] + add)
        action = CREATE if not before else (REMOVE if not after else UPDATE)
        source = entry['source'] if entry is not None else current['source']
        remaining = set(fold(x) for x in after)
        removed_rows = sorted(remove.values(), key=lambda r: r['id'])
        plan.aliases[key] = dict(action=action, source=source, domain=domain_of(source), add=add,
                                 remove_rows=removed_rows,
                                 removed=unique_destinations(r['destination'] for r in removed_rows
                                                             if fold(r['destination']) not in remaining),
                                 before=before, after=after, declared=entry is not None, active=active,
                                 toggle=toggle)

    _check_aliases(desired, state, plan, final_domains, errors)
    if errors:
        raise AccountsError(errors)
    return plan


def _int(value):
    """A column value for comparison: booleans and integers as int, None as None."""
    return None if value is None else int(value)


def _value(value):
    """A stored column value for comparison: text (a host name) as it is, numbers and flags as int."""
    if isinstance(value, bytes):
        value = value.decode('utf-8')
    return value if value is None or isinstance(value, str) else int(value)


def _declared(value):
    """A declared option value as stored: ``NO_HOST`` as None (NULL), text as it is, numbers and flags as int."""
    if value == NO_HOST:
        return None
    return _value(value)


def _domain_current(state, key, column):
    if column == 'alias_of':
        return state.alias_target(key)
    return _value(state.domain_value(key, column))


def _domain_values(entry, state, key, columns):
    """Final values of the optional domain columns that exist: declared, else stored (update) or default (create)."""
    values = {}
    for name in columns.get('domains', ()):
        col = schema.DOMAINS.column(name)
        declared = entry.get(col.option)
        if name == 'alias_of':
            if declared is None:
                values[name] = state.alias_target(key) if key is not None else None
            else:
                values[name] = fold(declared) if declared != NOT_AN_ALIAS else None
        elif declared is not None:
            values[name] = _declared(declared)
        else:
            values[name] = _domain_current(state, key, name) if key is not None else col.default
    return values


def _user_values(user, row, plan, state, dkey):
    """Final values of the optional mailbox columns that exist.

    A declared value wins; an existing mailbox keeps its stored value; a new
    one gets the column default, for ``quota`` the final ``default_quota``
    of its domain (bytes, 0 = unlimited).
    """
    values = {}
    for name in state.columns.get('users', ()):
        col = schema.USERS.column(name)
        declared = user.get(col.option)
        if declared is not None:
            values[name] = _declared(declared)
        elif row is not None:
            values[name] = _value(row.get(name))
        elif name == 'quota' and 'default_quota' in state.columns.get('domains', ()):
            change = plan.domains.get(dkey)
            values[name] = (change['values']['default_quota'] if change and change.get('values')
                            else _int(state.domain_value(dkey, 'default_quota', 0)))
        else:
            values[name] = col.default
    return values


def _alias_active(entry, rows, remove, columns):
    """Return (active value for new rows, [ids of kept rows whose active changes]) for one alias source.

    New rows take the declared ``active``, else that of the source's existing
    rows, else the column default; ``toggle`` is empty without the column.
    """
    if 'active' not in columns.get('aliases', ()):
        return None, []
    declared = entry.get('active') if entry is not None else None
    if declared is None:
        stored = [r['active'] for r in rows if r['id'] not in remove and r.get('active') is not None]
        return (_int(stored[0]) if stored else schema.ALIASES.column('active').default), []
    return _int(declared), [r['id'] for r in rows if r['id'] not in remove and _int(r.get('active')) != _int(declared)]


def _final_alias_of(state, plan, final_domains):
    """Return {fold(name): fold(target) or None} of every known domain that exists after the plan."""
    final = {}
    for key in final_domains:
        change = plan.domains.get(key)
        if change is not None and 'alias_of' in change.get('values', {}):
            final[key] = change['values']['alias_of']
        else:
            final[key] = state.alias_target(key)
    return final


def _domain_name(state, plan, key):
    if key in plan.domains:
        return plan.domains[key]['name']
    if key in state.domains:
        return state.domains[key]['name']
    return key


def users_to_kick(plan, state):
    """Addresses whose open IMAP/POP3/ManageSieve sessions must end after ``plan`` is applied, sorted.

    A mailbox is kicked when it is removed (also with its domain), when its password is rewritten, when
    it is disabled (``active`` set to false) or when its domain is disabled. The stored address is
    used: it is the name the sessions logged in with. Pure: reads the plan and the state only.
    """
    out = set()
    for key, change in plan.users.items():
        row = state.users.get(key) or {}
        email = row.get('email') or change.get('email')
        if change['action'] == REMOVE:
            out.add(email)
        elif change['action'] == UPDATE:
            if change.get('password_changed'):
                out.add(email)
            if 'active' in change.get('fields', ()) and not (change.get('values') or {}).get('active', 1):
                out.add(email)
    disabled = set()
    for change in plan.domains.values():
        if (change['action'] == UPDATE and 'active' in change.get('fields', ())
                and not (change.get('values') or {}).get('active', 1)):
            disabled.update(change.get('ids', ()))
    if disabled:
        out.update(row['email'] for row in state.users.values() if row.get('domain_id') in disabled)
    out.discard(None)
    return sorted(out)


def _remove_alias_domains(desired, state, kept, removed, errors):
    """A removed domain takes its alias domains (ON DELETE CASCADE): with force or purge, else an error."""
    if not removed:
        return
    for key in sorted(kept):
        target = state.alias_target(key)
        if target not in removed:
            continue
        entry = desired.domains.get(target)
        mine = desired.domains.get(key)
        if mine is not None and mine['state'] == PRESENT:
            errors.append((_label('domains', mine['index'], mine['name']),
                           'domain %s is declared present but is an alias domain of %s, which is removed (and would '
                           'take it along)' % (mine['name'], state.domains[target]['name'])))
        elif entry is None or entry['force']:
            kept.discard(key)
            removed.add(key)
        else:
            errors.append((_label('domains', entry['index'], entry['name']),
                           'domain %s has the alias domain %s; remove it first or set force=true to remove it '
                           'with the domain' % (entry['name'], state.domains[key]['name'])))


def _check_alias_domains(desired, state, plan, final_domains, final_alias, errors):
    """Every alias domain set by this plan points to a normal domain that exists and has no mailboxes of its own."""
    aliased = {}
    for key, target in final_alias.items():
        if target is not None:
            aliased.setdefault(target, []).append(key)
    users_of = {}
    for key, row in state.users.items():
        change = plan.users.get(key)
        if change is None or change['action'] != REMOVE:
            users_of.setdefault(state.domain_ids.get(row['domain_id']), []).append(row['email'])
    for key, change in plan.domains.items():
        target = change.get('values', {}).get('alias_of')
        sets_target = change['action'] == CREATE or 'alias_of' in change.get('fields', ())
        if change['action'] == REMOVE or target is None or not sets_target:
            continue
        entry = desired.domains.get(key)
        label = _label('domains', entry['index'], entry['name'])
        if target not in final_domains:
            errors.append((label, 'alias_of names the domain %s, which does not exist in virtual_domains; declare or '
                                  'create it first' % entry['alias_of']))
        elif final_alias.get(target):
            errors.append((label, 'alias_of names %s, which is itself an alias domain of %s; point %s to %s instead'
                           % (entry['alias_of'], _domain_name(state, plan, final_alias[target]), entry['name'],
                              _domain_name(state, plan, final_alias[target]))))
        if aliased.get(key):
            errors.append((label, '%s cannot become an alias domain: %s %s of it'
                           % (entry['name'], ', '.join(sorted(_domain_name(state, plan, k) for k in aliased[key])),
                              'is an alias domain' if len(aliased[key]) == 1 else 'are alias domains')))
        if users_of.get(key):
            errors.append((label, '%s cannot become an alias domain: it has %d mailbox(es) of its own (%s); '
                                  'an alias domain delivers to the mailboxes of its target'
                           % (entry['name'], len(users_of[key]), ', '.join(sorted(users_of[key])[:5]))))


def _show_value(name, value):
    if name == 'active' and value is not None:
        return bool(value)
    return value


def domain_attributes(state, plan, key, after=True):
    """Return {column: value} of the optional domain columns that exist, before or ``after`` the plan.

    ``active`` as a bool, ``default_quota`` in bytes, ``alias_of`` as a
    domain name (None for a normal domain). Empty when the database has none
    of the columns (below schema version 4).
    """
    change = plan.domains.get(key)
    out = {}
    for name in state.columns.get('domains', ()):
        if after and change is not None and change['action'] != REMOVE:
            value = change['values'][name]
        else:
            value = _domain_current(state, key, name)
        if name == 'alias_of' and value is not None:
            value = _domain_name(state, plan, value)
        out[name] = _show_value(name, value)
    return out


def user_attributes(state, plan, key, after=True):
    """Return {column: value} of the optional mailbox columns that exist (``active`` bool, ``quota`` bytes)."""
    change = plan.users.get(key)
    row = state.users.get(key)
    out = {}
    for name in state.columns.get('users', ()):
        if after and change is not None and change['action'] != REMOVE:
            value = change['values'][name]
        else:
            value = _value(row.get(name)) if row else None
        out[name] = _show_value(name, value)
    return out


def alias_active(state, plan, key):
    """Return (before, after): whether alias source ``key`` is enabled (any of its rows), None without rows or column."""
    if 'active' not in state.columns.get('aliases', ()):
        return None, None
    current = state.aliases.get(key)
    rows = current['rows'] if current else []
    before = any(_int(r['active']) for r in rows) if rows else None
    change = plan.aliases.get(key)
    if change is None:
        return before, before
    if not change['after']:
        return before, None
    kept = [r for r in rows if r['id'] not in set(x['id'] for x in change['remove_rows'])]
    after = [change['active'] if r['id'] in change['toggle'] else _int(r['active']) for r in kept]
    after += [change['active']] * len(change['add'])
    return before, any(after)


def _alias_row_removed(desired, source_key, row, purge):
    entry = desired.aliases.get(source_key)
    if entry is None:
        return purge
    if entry['state'] == ABSENT:
        return not entry['destinations'] or fold(row['destination']) in set(fold(d) for d in entry['destinations'])
    return (entry['exclusive'] or purge) and fold(row['destination']) not in set(fold(d) for d in entry['destinations'])


def unique_destinations(items):
    """Return the addresses of ``items`` in order, without case-insensitive duplicates."""
    out, seen = [], set()
    for item in items:
        if fold(item) not in seen:
            seen.add(fold(item))
            out.append(item)
    return out


def final_aliases(state, plan):
    """Return {fold(source): set of fold(destination)} after ``plan`` is applied (sources with no rows omitted)."""
    final = {}
    for key, entry in state.aliases.items():
        change = plan.aliases.get(key)
        if change is None:
            final[key] = set(fold(r['destination']) for r in entry['rows'])
    for key, change in plan.aliases.items():
        if change['after']:
            final[key] = set(fold(d) for d in change['after'])
    return final


def _check_aliases(desired, state, plan, final_domains, errors):
    """Loop and typo protection of mail_alias, against the state after the plan."""
    final = final_aliases(state, plan)
    users = set(k for k in state.users if plan.users.get(k, {}).get('action') != REMOVE)
    users |= set(k for k, c in plan.users.items() if c['action'] == CREATE)
    for key, change in plan.aliases.items():
        entry = desired.aliases.get(key)
        label = _label('aliases', entry['index'], entry['source']) if entry else 'aliases'
        for dest in change['add']:
            dkey = fold(dest)
            if key in final.get(dkey, ()):
                errors.append((label, 'alias %s -> %s would create a loop: %s already forwards to %s'
                               % (change['source'], dest, dest, change['source'])))
            elif fold(domain_of(dest)) in final_domains and dkey not in users and not final.get(dkey):
                errors.append((label, 'destination %s is in the managed domain %s but is neither a mailbox nor an '
                                      'alias; create it first (typo protection)' % (dest, domain_of(dest))))
    removed = dict((k, c['email']) for k, c in plan.users.items() if c['action'] == REMOVE)
    if removed:
        still = {}
        for source, dests in final.items():
            for dest in dests & set(removed):
                src = plan.aliases[source]['source'] if source in plan.aliases else state.aliases[source]['source']
                still.setdefault(dest, []).append(src)
        for dest in sorted(still)[:MAX_ERRORS]:
            plan.warnings.append('aliases still deliver to %s: %s' % (removed[dest], ', '.join(sorted(still[dest]))))
        if len(still) > MAX_ERRORS:
            plan.warnings.append('and %d more removed mailbox(es) that aliases still deliver to' % (len(still) - MAX_ERRORS))


# ------------------------------------------------------------------ hashing and writing

def hash_passwords(plan, widths=None, check_mode=False, threshold=POOL_THRESHOLD):
    """Hash the cleartext passwords the plan writes (in a process pool when many); skipped in check mode.

    Raises :class:`AccountsError` when a hash does not fit the password column.
    """
    if check_mode:
        return
    todo = [c for c in plan.users.values() if c['action'] != REMOVE and c['password_changed'] and c['hash'] is None]
    hashes = run_parallel(_hash_job, [(c['password'], c['scheme']) for c in todo], threshold)
    width = (widths or {}).get((schema.USERS.name, 'password'))
    errors = []
    for change, digest in zip(todo, hashes):
        if width is not None and len(digest) > width:
            errors.append(('users (%s)' % change['email'],
                           'the %s hash is %d characters long but the password column holds only %d; choose another '
                           'password_scheme or widen the column' % (change['scheme'], len(digest), width)))
        change['hash'] = digest
    if errors:
        raise AccountsError(errors)


def apply_plan(cursor, plan):
    """Write ``plan`` through ``cursor`` (inside the caller's transaction).

    Order: domains, mailboxes, aliases created/updated; then aliases,
    mailboxes, domains removed. INSERTs use ``executemany`` (PyMySQL sends
    multi-row INSERTs), removals ``DELETE ... WHERE id IN`` in chunks.
    Mailboxes without a computed hash (check mode) get a placeholder; the
    caller rolls back in check mode. Returns {fold(domain name): id} of all
    domains that exist afterwards and were read or created.
    """
    ids = dict(plan.domain_ids)
    columns = getattr(plan, 'columns', {})
    dcols = [c for c in columns.get('domains', ()) if c != 'alias_of']
    created = [c for c in plan.domains.values() if c['action'] == CREATE]
    if created:
        cursor.executemany(schema.insert_sql(schema.DOMAINS, dcols),
                           [(c['name'],) + tuple(c['values'][n] for n in dcols) for c in created])
        for chunk in _chunks([c['name'] for c in created]):
            cursor.execute(schema.select_sql(schema.DOMAINS, [('name', len(chunk))]), chunk)
            for row in cursor.fetchall():
                ids.setdefault(fold(row['name']), row['id'])
    # alias_of and updates once every domain has its id
    dcols = columns.get('domains', ())
    updates = [tuple(_domain_column(c, n, ids) for n in dcols) + (i,) for c in plan.domains.values()
               if c['action'] == UPDATE or (c['action'] == CREATE and c['values'].get('alias_of'))
               for i in (c['ids'] or [ids[fold(c['name'])]])]
    if updates:
        cursor.executemany(schema.update_sql(schema.DOMAINS, list(dcols)), updates)
    ucols = list(columns.get('users', ()))
    inserts, updates = [], []
    for change in plan.users.values():
        password = change.get('hash') or CHECK_MODE_PASSWORD
        extra = tuple(change['values'][n] for n in ucols) if change['action'] != REMOVE else ()
        if change['action'] == CREATE:
            inserts.append((ids[fold(change['domain'])], change['email'], password) + extra)
        elif change['action'] == UPDATE:
            updates.append((ids.get(fold(change['domain']), change['domain_id']), change['email'],
                            password if change['password_changed'] else change['stored']) + extra + (change['id'],))
    if inserts:
        cursor.executemany(schema.insert_sql(schema.USERS, ucols), inserts)
    if updates:
        cursor.executemany(schema.update_sql(schema.USERS, ['domain_id', 'email', 'password'] + ucols), updates)
    acols = list(columns.get('aliases', ()))
    rows = [(ids[fold(c['domain'])], c['source'], dest) + ((c['active'],) if acols else ())
            for c in plan.aliases.values() for dest in c['add']]
    if rows:
        cursor.executemany(schema.insert_sql(schema.ALIASES, acols), rows)
    toggles = [(c['active'], i) for c in plan.aliases.values() for i in c.get('toggle', ())]
    if toggles:
        cursor.executemany(schema.update_sql(schema.ALIASES, ['active']), toggles)
    for table, id_list in (
            (schema.ALIASES, [r['id'] for c in plan.aliases.values() for r in c['remove_rows']]),
            (schema.USERS, [c['id'] for c in plan.users.values() if c['action'] == REMOVE]),
            (schema.DOMAINS, [i for c in plan.domains.values() if c['action'] == REMOVE for i in c['ids']])):
        for chunk in _chunks(id_list):
            cursor.execute(schema.delete_sql(table, len(chunk)), chunk)
    return ids


def _domain_column(change, name, ids):
    value = change['values'][name]
    if name == 'alias_of' and value is not None:
        return int(value[1:]) if value.startswith('#') else ids[value]
    return value


# ------------------------------------------------------------------ reporting

def _keys(plan):
    out = {}
    for kind, changes, field in (('domains', plan.domains, 'name'), ('users', plan.users, 'email'),
                                 ('aliases', plan.aliases, 'source')):
        keys = {'created': [], 'updated': [], 'removed': []}
        for change in changes.values():
            keys[{CREATE: 'created', UPDATE: 'updated', REMOVE: 'removed'}[change['action']]].append(change[field])
        out[kind] = keys
    return out


def summarize(plan, cap=1000):
    """Return the per-kind result: {kind: {created, updated, removed, *_count, truncated}}.

    Lists hold keys (domain names, mailbox addresses, alias sources), at most
    ``cap`` each; ``truncated`` says whether any list was cut.
    """
    out = {}
    for kind, keys in _keys(plan).items():
        entry = {'truncated': False}
        for name, values in keys.items():
            entry[name] = values[:cap]
            entry[name + '_count'] = len(values)
            entry['truncated'] = entry['truncated'] or len(values) > cap
        out[kind] = entry
    return out


def diff_text(plan, max_lines=200):
    """Return a readable summary of the plan for ``--diff`` (no password or hash; at most ``max_lines`` lines)."""
    lines = []
    keys = _keys(plan)
    for kind, changes in (('domains', plan.domains), ('users', plan.users), ('aliases', plan.aliases)):
        k = keys[kind]
        lines.append('%s: %d to create, %d to update, %d to remove'
                     % (kind, len(k['created']), len(k['updated']), len(k['removed'])))
        for change in changes.values():
            lines.append(_diff_line(kind, change))
    if len(lines) > max_lines:
        hidden = len(lines) - max_lines + 1
        lines = lines[:max_lines - 1] + ['... %d more line(s) not shown' % hidden]
    return '\n'.join(lines) + '\n'


def _diff_line(kind, change):
    sign = {CREATE: '+', UPDATE: '~', REMOVE: '-'}[change['action']]
    if kind == 'domains':
        extra = ''
        if change['action'] == REMOVE and (change['users'] or change['aliases']):
            extra = ' (with %d mailbox(es) and %d alias(es))' % (change['users'], change['aliases'])
        elif change['action'] == UPDATE:
            extra = ': ' + ', '.join(_field_text(f, change['values']) for f in change['fields'])
        elif change['action'] == CREATE and change.get('values'):
            extra = ' (%s)' % ', '.join(_field_text(f, change['values']) for f in sorted(change['values']))
        return '%s domain %s%s' % (sign, change['name'], extra)
    if kind == 'users':
        if change['action'] == CREATE:
            values = change.get('values') or {}
            return '+ user %s (%s)' % (change['email'], ', '.join(
                ['password %s' % HIDDEN, hashing.identify(change['hash']) if change['hash'] else change['scheme']]
                + [_field_text(f, values) for f in sorted(values)]))
        if change['action'] == UPDATE:
            return '~ user %s: %s' % (change['email'], ', '.join(_field_text(f, change.get('values') or {})
                                                                 for f in change['fields']))
        return '- user %s' % change['email']
    if change['action'] == CREATE:
        return '+ alias %s -> %s%s' % (change['source'], ', '.join(change['after']),
                                       '' if change.get('active') in (None, 1) else ' (inactive)')
    if change['action'] == REMOVE:
        return '- alias %s -> %s' % (change['source'], ', '.join(change['before']))
    parts = ['+' + d for d in change['add']] + ['-' + d for d in change['removed']]
    if change.get('toggle'):
        parts.append(_field_text('active', change))
    return '~ alias %s: %s' % (change['source'], ' '.join(parts))


def _field_text(field, values):
    """``field`` or ``field=value`` for the optional columns (booleans as true/false, quotas in bytes)."""
    if field not in values:
        return field
    value = values[field]
    if field == 'active':
        value = 'true' if value else 'false'
    elif value is None:
        value = 'none'
    return '%s=%s' % (field, value)


def scrub(value, secrets):
    """Return ``value`` (result dicts/lists/strings) with every string equal to a secret masked.

    Strings of more than one line (the ``--diff`` text, messages) are also
    searched for secrets as substrings, which is cheap for those few strings.
    """
    if not secrets:
        return value
    if isinstance(value, dict):
        return dict((k, scrub(v, secrets)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        if value in secrets:
            return NO_LOG_MASK
        if '\n' in value or ' ' in value:
            for secret in sorted(secrets, key=len, reverse=True):
                if secret in value:
                    value = value.replace(secret, '********')
    return value


class Outcome(object):
    """What :func:`run` did: ``plan``, ``state`` (as read before writing), ``domain_ids`` ({fold(name): id})."""

    def __init__(self, plan, state, domain_ids):
        self.plan = plan
        self.state = state
        self.domain_ids = domain_ids


def run(cursor, widths, desired, purge=False, check_mode=False, scope=None, threshold=POOL_THRESHOLD):
    """Check widths, read, verify, plan, hash and apply in the caller's transaction; return an :class:`Outcome`.

    The steps every account module runs inside ``vmail_db.run_transaction``.
    In check mode nothing is hashed but everything else runs (the caller
    rolls back). ``scope`` limits the reads (see :func:`read_state`); only
    the single-entry modules pass one, always with ``purge=False``.
    """
    check_widths(desired, widths)
    state = read_state(cursor, scope, widths=widths)
    verified = verify_passwords(verify_jobs(desired, state), threshold)
    plan = plan_accounts(desired, state, purge=purge, verified=verified)
    hash_passwords(plan, widths, check_mode=check_mode, threshold=threshold)
    ids = apply_plan(cursor, plan)
    return Outcome(plan, state, ids)


def run_single(cursor, widths, desired, scope, check_mode=False):
    """:func:`run` for the single-entry modules: reads only ``scope``; errors without entry labels."""
    try:
        return run(cursor, widths, desired, check_mode=check_mode, scope=scope)
    except AccountsError as exc:
        raise AccountsError([('', msg) for label, msg in exc.errors])


def normalize_single(**kinds):
    """:func:`normalize_input` for one entry; errors without entry labels. Returns the normalized entry."""
    try:
        desired = normalize_input(**kinds)
    except AccountsError as exc:
        raise AccountsError([('', msg) for label, msg in exc.errors])
    for kind in ('domains', 'users', 'aliases'):
        entries = getattr(desired, kind)
        if entries:
            return desired, list(entries.values())[0]
    raise AccountsError([('', 'no entry given')])
