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

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_schema as schema
from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import (
    AddressError, check_width, domain_of, normalize_address, normalize_domain)

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


def normalize_domain_entry(entry):
    """Validate one ``domains`` entry; return dict(name, state, force) with the normalized name."""
    return dict(name=normalize_domain(entry.get('name')), state=_state(entry), force=bool(entry.get('force')))


def normalize_user_entry(entry, lowercase_local_part=True, update_password='always'):
    """Validate one ``users`` entry (same rules as mail_user).

    Returns dict(email, domain, password, password_hash, scheme,
    update_password, state). Raises AddressError, HashingError or ValueError.
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
                scheme=scheme, update_password=mode, state=state)


def normalize_alias_entry(entry, lowercase_local_part=True):
    """Validate one ``aliases`` entry (same rules as mail_alias).

    ``destination`` may be a string or a list. Returns dict(source, domain,
    destinations, exclusive, state); destinations keep their order without
    duplicates. Raises AddressError or ValueError.
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
                exclusive=bool(entry.get('exclusive')), state=state)


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
    """Two entries for one alias source merge only when both add destinations (present, not exclusive)."""
    if first['state'] == second['state'] == PRESENT and not first['exclusive'] and not second['exclusive']:
        merged = dict(first)
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
    out.domains = _collect('domains', domains, normalize_domain_entry, 'name', errors, compare=('state', 'force'))
    out.users = _collect('users', users,
                         lambda e: normalize_user_entry(e, lowercase_local_part, update_password),
                         'email', errors, compare=('state', 'scheme', 'update_password'))
    out.aliases = _collect('aliases', aliases, lambda e: normalize_alias_entry(e, lowercase_local_part),
                           'source', errors, merge=_merge_aliases, compare=('state', 'exclusive', 'destinations'))
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
        ('domains', desired.domains, 'name', [('name', schema.DOMAINS, 'name', 'domain name')]),
        ('users', desired.users, 'email', [('email', schema.USERS, 'email', 'address')]),
        ('aliases', desired.aliases, 'source', [('source', schema.ALIASES, 'source', 'address')]),
    )
    for kind, entries, key_field, fields in checks:
        for entry in entries.values():
            try:
                for field, table, column, what in fields:
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
    if errors:
        raise AccountsError(errors)


# ------------------------------------------------------------------ current state

class State(object):
    """Current rows.

    ``domains``: {fold(name): {'name', 'ids'}} (the guide schema allows
    duplicate names; ``ids`` is ascending); ``domain_ids``: {id: fold(name)};
    ``users``: {fold(email): row}; ``aliases``: {fold(source): {'source', 'rows'}}
    where each row has ``id``, ``domain_id`` and ``destination``.
    """

    def __init__(self):
        self.domains = {}
        self.domain_ids = {}
        self.users = {}
        self.aliases = {}

    def add_domain(self, row):
        """Add a virtual_domains row (dict with id, name); rows must come in ascending id order."""
        key = fold(row['name'])
        entry = self.domains.setdefault(key, {'name': row['name'], 'ids': []})
        entry['ids'].append(row['id'])
        self.domain_ids[row['id']] = key

    def add_user(self, row):
        """Add a virtual_users row (dict with id, domain_id, email, password)."""
        self.users[fold(row['email'])] = dict(row)

    def add_alias(self, row):
        """Add a virtual_aliases row (dict with id, domain_id, source, destination)."""
        entry = self.aliases.setdefault(fold(row['source']), {'source': row['source'], 'rows': []})
        entry['rows'].append({'id': row['id'], 'domain_id': row['domain_id'], 'destination': row['destination']})


def _chunks(items, size=CHUNK):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _select(cursor, table, where, lock):
    """Run SELECTs of ``table`` for the (column, values) pairs of ``where`` (OR), chunked; None reads all."""
    if where is None:
        cursor.execute(schema.select_sql(table, lock=lock))
        return list(cursor.fetchall())
    rows, seen = [], set()
    for column, values in where:
        for chunk in _chunks(values):
            cursor.execute(schema.select_sql(table, [(column, len(chunk))], lock=lock), chunk)
            for row in cursor.fetchall():
                if row['id'] not in seen:
                    seen.add(row['id'])
                    rows.append(row)
    rows.sort(key=lambda r: r['id'])
    return rows


def read_state(cursor, scope=None, lock=True):
    """Read the current rows into a :class:`State`.

    ``scope`` None reads every row (one SELECT per table). Otherwise it is a
    dict that limits the reads (for the single-entry modules): ``domains``
    (names), ``users`` (emails), ``aliases`` (sources), ``destinations``
    (aliases whose destination is one of these), ``members`` (true: also the
    mailboxes and aliases of the domains read). ``lock`` reads with
    ``FOR UPDATE``.
    """
    state = State()
    if scope is None:
        for row in _select(cursor, schema.DOMAINS, None, lock):
            state.add_domain(row)
        for row in _select(cursor, schema.USERS, None, lock):
            state.add_user(row)
        for row in _select(cursor, schema.ALIASES, None, lock):
            state.add_alias(row)
        return state
    names = list(scope.get('domains') or [])
    if names:
        for row in _select(cursor, schema.DOMAINS, [('name', names)], lock):
            state.add_domain(row)
    ids = sorted(state.domain_ids) if scope.get('members') else []
    where = [(col, list(values)) for col, values in (('email', scope.get('users') or []), ('domain_id', ids)) if values]
    if where:
        for row in _select(cursor, schema.USERS, where, lock):
            state.add_user(row)
    where = [(col, list(values)) for col, values in (('source', scope.get('aliases') or []),
                                                     ('destination', scope.get('destinations') or []),
                                                     ('domain_id', ids)) if values]
    if where:
        for row in _select(cursor, schema.ALIASES, where, lock):
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

    ``domains``: {fold(name): change}; change has ``action`` (create or
    remove), ``name``, ``ids`` (rows removed), ``users``/``aliases``
    (numbers removed with the domain), ``declared``.
    ``users``: {fold(email): change}; change has ``action`` (create,
    update, remove), ``email``, ``domain``, ``id``, ``fields`` (updated
    fields among domain, email, password), ``password_changed``,
    ``password``, ``password_hash``, ``scheme``, ``hash`` (filled by
    :func:`hash_passwords`), ``stored`` (current hash), ``domain_id``.
    ``aliases``: {fold(source): change}; change has ``action`` (create,
    update, remove), ``source``, ``domain``, ``add`` (destinations),
    ``remove_rows`` (rows), ``before``/``after`` (destinations).
    ``domain_ids``: {fold(name): id} of the domains that exist and stay.
    ``warnings``: messages for the caller to show.
    """

    def __init__(self):
        self.domains = {}
        self.users = {}
        self.aliases = {}
        self.domain_ids = {}
        self.warnings = []

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
    mailbox without password, alias loop or typo, domain still in use).
    """
    verified = verified or {}
    errors = []
    plan = Plan()

    # domains
    present = [k for k, d in desired.domains.items() if d['state'] == PRESENT]
    absent = [k for k, d in desired.domains.items() if d['state'] == ABSENT]
    kept, removed = compare_keys(state.domains, present, absent, purge)
    for key, entry in desired.domains.items():
        if entry['state'] == PRESENT and key not in state.domains:
            plan.domains[key] = dict(action=CREATE, name=entry['name'], ids=[], users=0, aliases=0, declared=True)
        elif entry['state'] == PRESENT and len(state.domains[key]['ids']) > 1:
            plan.warnings.append('virtual_domains holds %d rows named %s (ids %s); the mailsql role migration adds a '
                                 'unique index' % (len(state.domains[key]['ids']), entry['name'],
                                                   ', '.join(str(i) for i in state.domains[key]['ids'])))
    removed_order = [k for k in desired.domains if k in removed] + sorted(k for k in removed if k not in desired.domains)
    for key in removed_order:
        plan.domains[key] = dict(action=REMOVE, name=state.domains[key]['name'], ids=list(state.domains[key]['ids']),
                                 users=0, aliases=0, declared=key in desired.domains)
    plan.domain_ids = dict((k, state.domains[k]['ids'][0]) for k in kept)
    final_domains = set(kept) | set(k for k, c in plan.domains.items() if c['action'] == CREATE)
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
        if row is None:
            if user['password'] is None and user['password_hash'] is None:
                errors.append((label, 'mailbox %s does not exist; password or password_hash is required to create it'
                                      % user['email']))
                continue
            plan.users[key] = dict(action=CREATE, email=user['email'], domain=user['domain'], id=None, fields=[],
                                   password_changed=True, password=user['password'],
                                   password_hash=user['password_hash'], scheme=user['scheme'],
                                   hash=user['password_hash'], stored=None, domain_id=None)
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
        if fields:
            plan.users[key] = dict(action=UPDATE, email=user['email'], domain=user['domain'], id=row['id'],
                                   fields=fields, password_changed=password_changed, password=user['password'],
                                   password_hash=user['password_hash'], scheme=user['scheme'],
                                   hash=user['password_hash'] if password_changed else None,
                                   stored=row['password'], domain_id=row['domain_id'])

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
        if not add and not remove:
            continue
        before = unique_destinations(r['destination'] for r in rows)
        after = unique_destinations([r['destination'] for r in rows if r['id'] not in remove] + add)
        action = CREATE if not before else (REMOVE if not after else UPDATE)
        source = entry['source'] if entry is not None else current['source']
        plan.aliases[key] = dict(action=action, source=source, domain=domain_of(source), add=add,
                                 remove_rows=sorted(remove.values(), key=lambda r: r['id']),
                                 removed=unique_destinations(r['destination'] for r in remove.values()
                                                       if fold(r['destination']) not in
                                                       set(fold(x) for x in after)),
                                 before=before, after=after, declared=entry is not None)

    _check_aliases(desired, state, plan, final_domains, errors)
    if errors:
        raise AccountsError(errors)
    return plan


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
    created = [c['name'] for c in plan.domains.values() if c['action'] == CREATE]
    if created:
        cursor.executemany(schema.insert_sql(schema.DOMAINS), [(name,) for name in created])
        for chunk in _chunks(created):
            cursor.execute(schema.select_sql(schema.DOMAINS, [('name', len(chunk))]), chunk)
            for row in cursor.fetchall():
                ids.setdefault(fold(row['name']), row['id'])
    inserts, updates = [], []
    for change in plan.users.values():
        password = change.get('hash') or CHECK_MODE_PASSWORD
        if change['action'] == CREATE:
            inserts.append((ids[fold(change['domain'])], change['email'], password))
        elif change['action'] == UPDATE:
            updates.append((ids.get(fold(change['domain']), change['domain_id']), change['email'],
                            password if change['password_changed'] else change['stored'], change['id']))
    if inserts:
        cursor.executemany(schema.insert_sql(schema.USERS), inserts)
    if updates:
        cursor.executemany(schema.update_sql(schema.USERS, ['domain_id', 'email', 'password']), updates)
    rows = [(ids[fold(c['domain'])], c['source'], dest) for c in plan.aliases.values() for dest in c['add']]
    if rows:
        cursor.executemany(schema.insert_sql(schema.ALIASES), rows)
    for table, id_list in (
            (schema.ALIASES, [r['id'] for c in plan.aliases.values() for r in c['remove_rows']]),
            (schema.USERS, [c['id'] for c in plan.users.values() if c['action'] == REMOVE]),
            (schema.DOMAINS, [i for c in plan.domains.values() if c['action'] == REMOVE for i in c['ids']])):
        for chunk in _chunks(id_list):
            cursor.execute(schema.delete_sql(table, len(chunk)), chunk)
    return ids


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
        return '%s domain %s%s' % (sign, change['name'], extra)
    if kind == 'users':
        if change['action'] == CREATE:
            return '+ user %s (password %s, %s)' % (change['email'], HIDDEN,
                                                    hashing.identify(change['hash']) if change['hash'] else change['scheme'])
        if change['action'] == UPDATE:
            return '~ user %s: %s' % (change['email'], ', '.join(change['fields']))
        return '- user %s' % change['email']
    if change['action'] == CREATE:
        return '+ alias %s -> %s' % (change['source'], ', '.join(change['after']))
    if change['action'] == REMOVE:
        return '- alias %s -> %s' % (change['source'], ', '.join(change['before']))
    parts = ['+' + d for d in change['add']] + ['-' + d for d in change['removed']]
    return '~ alias %s: %s' % (change['source'], ' '.join(parts))


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
    state = read_state(cursor, scope)
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
