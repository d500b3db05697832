# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where Dovecot keeps each user's mail, and how to keep it there.

Pure helpers behind M(vmail.mailserver.mail_store) and the dovecot role:

* a mail location is written the Dovecot 2.3 way, ``<driver>:<path>[:KEY=VALUE...]``
  (``mail_location``, https://doc.dovecot.org/2.3/configuration_manual/mail_location/),
  with the one-letter variables ``%d`` (domain), ``%n`` (local part), ``%u``
  (whole address) and ``~`` (the userdb home);
* Dovecot 2.4 replaced ``mail_location`` by ``mail_driver``/``mail_path``/``mail_home``
  and the one-letter variables by ``%{user | domain}`` and friends
  (https://doc.dovecot.org/2.4.0/installation/upgrade/2.3-to-2.4.html): :func:`to_v24`
  and :func:`from_v24` translate the variables both ways, :func:`location_to_v24`
  the settings;
* :func:`parse_doveconf` reads the running configuration (``doveconf -n``) of either
  version and returns the home and the location it gives every virtual user;
* :func:`plan` compares the current and the wanted location against the Maildirs
  found on disk and says whether mail would be hidden and what to move;
* :func:`with_volatile_dir` puts Dovecot's volatile files (lock files) in a directory
  of their own (``VOLATILEDIR``, 2.4 ``mail_volatile_path``), which is no part of where
  mail lives.

Nothing here touches the disk except :func:`find_maildirs` and :func:`move_maildir`.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import os
import re
import shutil

DRIVERS = ('maildir', 'sdbox', 'mdbox', 'mbox')

# mail_location keys (2.3) and the 2.4 setting that replaced each.
LOCATION_KEYS_V24 = {
    'LAYOUT': 'mailbox_list_layout',
    'INBOX': 'mail_inbox_path',
    'INDEX': 'mail_index_path',
    'CONTROL': 'mail_control_path',
    'ALT': 'mail_alt_path',
    'VOLATILEDIR': 'mail_volatile_path',
    'DIRNAME': 'mailbox_directory_name',
}

# One-letter variables (2.3) and their 2.4 spelling.
_V23_TO_V24 = {
    'd': '%{user | domain}',
    'n': '%{user | username}',
    'u': '%{user}',
    'Ld': '%{user | domain | lower}',
    'Ln': '%{user | username | lower}',
    'Lu': '%{user | lower}',
}
_V24_TO_V23 = {
    ('user', 'domain'): '%d',
    ('user', 'username'): '%n',
    ('user',): '%u',
    ('user', 'domain', 'lower'): '%Ld',
    ('user', 'username', 'lower'): '%Ln',
    ('user', 'lower'): '%Lu',
    ('domain',): '%d',
    ('username',): '%n',
    ('home',): '~',
}
_V23_VAR = re.compile(r'%(L?[a-zA-Z%])')
_V24_VAR = re.compile(r'%\{([^}]*)\}')

# Location options that say nothing about where mail lives: changing them moves no mail.
# VOLATILEDIR holds only lock files (e.g. the duplicate database's ``.dovecot.lda-dupes.locks``).
NOT_MAIL_KEYS = ('VOLATILEDIR',)

# The duplicate database's lock directory (vacation replies) that Dovecot keeps in the
# home unless a volatile directory is set: in a home that is the Maildir root it is a folder.
DUPLICATE_LOCK_DIR = '.dovecot.lda-dupes.locks'
DUPLICATE_LOCK_PREFIX = 'duplicate.lock.'

# Names inside a Maildir (or a home that is one) that belong to the mail store.
# Maildir++ folders are the dot-directories that hold a cur/ directory.
MAILDIR_FILES_RE = re.compile(
    r'^(cur|new|tmp|subscriptions|maildirfolder|dovecot-uidlist|dovecot-uidvalidity(\..*)?|dovecot-keywords'
    r'|dovecot\.index.*|dovecot\.list\.index.*|dovecot\.mailbox\.log.*|courierimap.*)$')


class MailStoreError(ValueError):
    """A location, template or layout that cannot be used; the message says why."""


def parse_location(location):
    """Split a Dovecot 2.3 mail location ``driver:path[:KEY=VALUE...]``.

    Returns ``{'driver': str, 'path': str, 'options': [(KEY, value), ...]}``.
    Raises :class:`MailStoreError` on an empty location, an unknown driver, a
    missing path or a malformed option.
    """
    if not isinstance(location, str) or not location.strip():
        raise MailStoreError('the mail location is empty; give it as driver:path, e.g. maildir:~/Maildir')
    parts = location.strip().split(':')
    driver = parts[0].lower()
    if driver not in DRIVERS:
        raise MailStoreError('mail location %r: unknown mailbox format %r (one of %s)'
                             % (location, parts[0], ', '.join(DRIVERS)))
    if len(parts) < 2 or not parts[1]:
        raise MailStoreError('mail location %r has no path (driver:path, e.g. maildir:~/Maildir)' % location)
    options = []
    for opt in parts[2:]:
        key, sep, value = opt.partition('=')
        if not sep or key.upper() not in LOCATION_KEYS_V24:
            raise MailStoreError('mail location %r: option %r is not one of %s=...'
                                 % (location, opt, '=..., '.join(sorted(LOCATION_KEYS_V24))))
        options.append((key.upper(), value))
    return {'driver': driver, 'path': parts[1], 'options': options}


def format_location(parsed):
    """Inverse of :func:`parse_location`."""
    return ':'.join([parsed['driver'], parsed['path']] + ['%s=%s' % kv for kv in parsed['options']])


def to_v24(template):
    """Translate the ``%d``/``%n``/``%u`` variables of *template* to Dovecot 2.4 syntax.

    A leading ``~`` (the home) becomes ``%{home}``; literal text is kept and
    ``%%`` stays a literal percent sign. Any other variable raises
    :class:`MailStoreError`.
    """
    if template == '~' or template.startswith('~/'):
        return '%{home}' + to_v24(template[1:])

    def repl(match):
        name = match.group(1)
        if name == '%':
            return '%%'
        if name not in _V23_TO_V24:
            raise MailStoreError('variable %%%s in %r is not supported; use %%d (domain), %%n (local part) or '
                                 '%%u (address)' % (name, template))
        return _V23_TO_V24[name]
    return _V23_VAR.sub(repl, template)


def from_v24(template):
    """Translate Dovecot 2.4 variables (``%{user | domain}`` ...) back to ``%d``/``%n``/``%u``.

    ``%{home}`` becomes ``~``. Raises :class:`MailStoreError` for any other
    variable or filter, so an unknown layout is never guessed.
    """
    def repl(match):
        key = tuple(part.strip() for part in match.group(1).split('|'))
        if key not in _V24_TO_V23:
            raise MailStoreError('variable %s in %r is not supported by the dovecot role' % (match.group(0), template))
        return _V24_TO_V23[key]
    return _V24_VAR.sub(repl, template)


def location_to_v24(location, home):
    """The Dovecot 2.4 settings for a 2.3 *location* and userdb *home* template.

    Returns an ordered list of ``(setting, value)``: ``mail_driver``, ``mail_home``,
    ``mail_path`` and one setting per location option (see LOCATION_KEYS_V24).
    """
    parsed = parse_location(location)
    settings = [('mail_driver', parsed['driver']), ('mail_home', to_v24(home)), ('mail_path', to_v24(parsed['path']))]
    settings.extend((LOCATION_KEYS_V24[key], to_v24(value)) for key, value in parsed['options'])
    return settings


def with_volatile_dir(location, template):
    """*location* with its ``VOLATILEDIR`` option set to *template* (replacing any it had).

    *template* is an absolute path with per-user variables (``%d`` and ``%n``, or ``%u``),
    for example ``/var/lib/vmail/volatile/%d/%n``. An empty *template* returns *location*
    unchanged. Raises :class:`MailStoreError` for a bad location or template.
    """
    parsed = parse_location(location)
    if not template:
        return format_location(parsed)
    _check_template(template, 'the volatile directory')
    if ':' in template:
        raise MailStoreError('the volatile directory %r must not contain ":"' % template)
    parsed['options'] = [kv for kv in parsed['options'] if kv[0] != 'VOLATILEDIR'] + [('VOLATILEDIR', template)]
    return format_location(parsed)


def _mail_options(parsed):
    return [kv for kv in parsed['options'] if kv[0] not in NOT_MAIL_KEYS]


def effective_path(home, path):
    """The mail directory template once ``~`` is replaced by *home*; normalized, no trailing slash."""
    if path == '~' or path.startswith('~/'):
        path = home.rstrip('/') + path[1:]
    path = re.sub('/+', '/', path)
    return path.rstrip('/') or '/'


def _check_template(template, what):
    if not template.startswith('/'):
        raise MailStoreError('%s %r must be an absolute path (or start with ~ for the home)' % (what, template))
    names = set(m.group(1).lstrip('L') for m in _V23_VAR.finditer(template)) - {'%'}
    if not names:
        raise MailStoreError('%s %r has no per-user variable (%%d/%%n or %%u): every user would share one '
                             'mail directory' % (what, template))
    unknown = names - {'d', 'n', 'u'}
    if unknown:
        raise MailStoreError('%s %r uses %s; only %%d, %%n and %%u are supported'
                             % (what, template, ', '.join('%' + n for n in sorted(unknown))))
    if 'u' not in names and names != {'d', 'n'}:
        raise MailStoreError('%s %r must name both %%d and %%n (or %%u), or users of different domains would '
                             'share a directory' % (what, template))


def path_regex(template):
    """A compiled full-match regex for the paths *template* yields, with groups ``d``, ``n``, ``u``."""
    out = []
    seen = set()
    pos = 0
    for match in _V23_VAR.finditer(template):
        out.append(re.escape(template[pos:match.start()]))
        name = match.group(1).lstrip('L')
        if name == '%':
            out.append('%')
        elif name in seen:
            out.append('(?P=%s)' % name)
        else:
            seen.add(name)
            out.append('(?P<u>[^/@]+@[^/@]+)' if name == 'u' else '(?P<%s>[^/@]+)' % name)
        pos = match.end()
    out.append(re.escape(template[pos:]))
    return re.compile(''.join(out) + r'\Z')


def render_path(template, user):
    """Fill *template* for *user*, a dict with ``d`` and ``n`` or ``u``."""
    values = dict(user)
    if 'u' in values and ('d' not in values or 'n' not in values):
        values['n'], _sep, values['d'] = values['u'].partition('@')
    if 'u' not in values:
        values['u'] = '%s@%s' % (values['n'], values['d'])

    def repl(match):
        name = match.group(1)
        if name == '%':
            return '%'
        value = values[name.lstrip('L')]
        return value.lower() if name.startswith('L') else value
    return _V23_VAR.sub(repl, template)


def find_maildirs(root, max_depth=6):
    """Every Maildir under *root*: a directory holding ``cur/``, reached without entering dot-directories.

    Maildir++ folders (``.Sent``) are dot-directories and so are not counted as
    mailboxes of their own. Returns sorted absolute paths; a missing *root* gives [].
    """
    found = []
    root = root.rstrip('/') or '/'
    if not os.path.isdir(root):
        return found
    base_depth = root.count('/')
    for dirpath, dirnames, _files in os.walk(root):
        if 'cur' in dirnames and os.path.isdir(os.path.join(dirpath, 'cur')):
            found.append(dirpath)
        depth = dirpath.count('/') - base_depth
        dirnames[:] = sorted(d for d in dirnames
                             if not d.startswith('.') and d not in ('cur', 'new', 'tmp') and depth < max_depth)
    return sorted(found)


def count_messages(maildir):
    """Messages in a Maildir: files in ``cur/`` and ``new/`` of INBOX and of each Maildir++ folder."""
    total = 0
    folders = [maildir] + [os.path.join(maildir, d) for d in _listdir(maildir)
                           if d.startswith('.') and d not in ('.', '..') and os.path.isdir(os.path.join(maildir, d, 'cur'))]
    for folder in folders:
        for sub in ('cur', 'new'):
            total += len([f for f in _listdir(os.path.join(folder, sub)) if not f.startswith('.')])
    return total


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def leftover_lock_dirs(maildirs):
    """The duplicate database's lock directories left in these Maildir roots, safe to remove.

    Once the lock files live in a volatile directory, ``<maildir>/.dovecot.lda-dupes.locks``
    is only a folder that mail clients list (IMAP access may have given it ``cur/``,
    ``new/`` and index files). Returned are those that hold no message (so no mail is
    lost) and no lock file (no delivery of the old configuration holds one). A symlink
    is never returned. Sorted absolute paths.
    """
    found = []
    for maildir in maildirs:
        path = os.path.join(maildir, DUPLICATE_LOCK_DIR)
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        if any(name.startswith(DUPLICATE_LOCK_PREFIX) for name in _listdir(path)) or count_messages(path):
            continue
        found.append(path)
    return sorted(found)


def plan(maildirs, current, wanted):
    """Compare the current and the wanted mail location against the Maildirs on disk.

    *current* and *wanted* are dicts ``{'home': template, 'location': 2.3 location}``
    (*current* may be None: nothing configured). Returns a dict:

    * ``current_path``/``wanted_path``: effective mail directory templates;
    * ``changes``: True when an existing user would be served from another directory (options in
      NOT_MAIL_KEYS, such as ``VOLATILEDIR``, do not count);
    * ``at_current``: Maildirs the current location serves, with the user each belongs to;
    * ``orphans``: Maildirs that neither location serves (for example split by an earlier run);
    * ``moves``: ``[{'user', 'src', 'dst'}]`` for every Maildir at the current location when ``changes``.

    Raises :class:`MailStoreError` for templates that cannot be used.
    """
    wanted_parsed = parse_location(wanted['location'])
    _check_template(wanted['home'], 'the home')
    wanted_path = effective_path(wanted['home'], wanted_parsed['path'])
    _check_template(wanted_path, 'the mail path')
    wanted_re = path_regex(wanted_path)
    result = {'current_path': None, 'wanted_path': wanted_path, 'changes': False,
              'at_current': [], 'orphans': [], 'moves': []}
    current_re = None
    if current:
        current_parsed = parse_location(current['location'])
        current_path = effective_path(current['home'], current_parsed['path'])
        result['current_path'] = current_path
        _check_template(current_path, 'the current mail path')
        current_re = path_regex(current_path)
        result['changes'] = (current_path != wanted_path or current_parsed['driver'] != wanted_parsed['driver']
                             or _mail_options(current_parsed) != _mail_options(wanted_parsed))
    for maildir in maildirs:
        match = current_re.match(maildir) if current_re else None
        if match:
            user = dict((k, v) for k, v in match.groupdict().items() if v is not None)
            address = user.get('u') or '%s@%s' % (user['n'], user['d'])
            result['at_current'].append({'user': address, 'path': maildir})
            if result['changes']:
                result['moves'].append({'user': address, 'src': maildir, 'dst': render_path(wanted_path, user)})
        elif not wanted_re.match(maildir):
            result['orphans'].append(maildir)
    return result


def move_entries(src, dst):
    """What moving the Maildir *src* to *dst* by renames means, checked before anything moves.

    Returns ``(names, mode)``. Mode ``rename``: the directories are unrelated and
    *src* itself is renamed. ``up``: *dst* is an ancestor of *src* (``~/Maildir``
    to ``~``) and every entry of *src* moves up. ``down``: *src* is an ancestor
    (``~`` to ``~/Maildir``) and only *src*'s Maildir entries move down (other
    files in the home stay). ``none``: same directory. *names* are the entries
    that move. Raises :class:`MailStoreError` when *dst* already holds messages:
    renames would mix two mailboxes, so the caller must merge them another way.
    """
    src = src.rstrip('/')
    dst = dst.rstrip('/')
    if src == dst:
        return [], 'none'
    if dst.startswith(src + '/'):
        first = dst[len(src) + 1:].split('/')[0]
        names = [n for n in _listdir(src) if n != first and _is_mail_entry(src, n)]
        mode = 'down'
    elif src.startswith(dst + '/'):
        names = _listdir(src)
        mode = 'up'
    else:
        names = []
        mode = 'rename'
    held = count_messages(dst) if os.path.isdir(dst) else 0
    if held:
        raise MailStoreError('%s already holds %d messages; moving %s there by renaming would mix two mailboxes. '
                             'Merge them with doveadm sync (doveadm-sync(1)) instead' % (dst, held, src))
    return sorted(names), mode


def _is_mail_entry(parent, name):
    if MAILDIR_FILES_RE.match(name):
        return True
    return name.startswith('.') and os.path.isdir(os.path.join(parent, name, 'cur'))


def _remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _makedirs(path, uid, gid):
    missing = []
    while not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, 0o700)
        if uid is not None:
            os.chown(directory, uid, gid)


def move_maildir(src, dst, uid=None, gid=None):
    """Move one Maildir from *src* to *dst* by renames (same file system), keeping every file as it is.

    File names, ``dovecot-uidlist``, keywords and ``subscriptions`` move unchanged,
    so UIDs, flags and folder subscriptions survive. Entries already at *dst*
    hold no message (checked by :func:`move_entries`): the Maildir entries
    there are the empty skeleton Dovecot creates at first login and are
    removed first, so no stale index stays; other files at *dst* stay. Directories
    created on the way belong to *uid*/*gid*, mode 0700. Returns the mode.
    Dovecot and delivery must be stopped while this runs.
    """
    names, mode = move_entries(src, dst)
    src = src.rstrip('/')
    dst = dst.rstrip('/')
    if mode == 'none':
        return mode
    if mode == 'rename':
        if os.path.lexists(dst):
            _remove(dst)
        _makedirs(os.path.dirname(dst), uid, gid)
        os.rename(src, dst)
        return mode
    _makedirs(dst, uid, gid)
    # The empty skeleton at dst (no message: checked) goes, so no stale index stays beside the moved mail.
    keep = src[len(dst) + 1:].split('/')[0] if mode == 'up' else None
    for name in _listdir(dst):
        if name != keep and _is_mail_entry(dst, name):
            _remove(os.path.join(dst, name))
    for name in names:
        os.rename(os.path.join(src, name), os.path.join(dst, name))
    if mode == 'up' and not _listdir(src):
        os.rmdir(src)
    return mode


# ------------------------------------------------------------------ doveconf
_BLOCK_OPEN = re.compile(r'^(?P<head>[^=]+?)\s*\{$')
_SETTING = re.compile(r'^(?P<key>[^=\s]+)\s*=\s*(?P<value>.*)$')


def _parse_blocks(lines):
    """Parse ``doveconf -n`` output into nested dicts: ``{'settings': {}, 'blocks': [(head, node)]}``."""
    root = {'settings': {}, 'blocks': []}
    stack = [root]
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith('#'):
            continue
        if line == '}':
            if len(stack) > 1:
                stack.pop()
            continue
        match = _BLOCK_OPEN.match(line)
        if match:
            node = {'settings': {}, 'blocks': []}
            stack[-1]['blocks'].append((match.group('head').split(), node))
            stack.append(node)
            continue
        match = _SETTING.match(line)
        if match:
            value = match.group('value').strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\\\', '\\').replace('\\"', '"')
            stack[-1]['settings'][match.group('key')] = value
    return root


def doveconf_version(text):
    """The Dovecot version from the first line of ``doveconf -n`` (``# 2.3.19.1 (...)``), or None."""
    match = re.match(r'^#\s*(\d+\.\d+(\.\d+)*)', text.lstrip())
    return match.group(1) if match else None


def parse_doveconf(text, defaults=None):
    """The mail location that a ``doveconf -n`` output gives every virtual user.

    *defaults* maps the 2.4 settings ``mail_driver``, ``mail_path`` and ``mail_home``
    to their values when ``doveconf -n`` leaves them out because they are at
    their default (read them with ``doveconf -h``). Returns a dict:

    * ``version``: ``2.3`` or ``2.4`` (family);
    * ``userdb``: the driver of the first userdb (``static``, ``sql``, ``passwd`` ...);
    * ``virtual``: True when a static, sql or prefetch userdb serves virtual users;
    * ``home``: the home template in ``%d``/``%n`` form, or None when the userdb
      computes it elsewhere (for example in an SQL query);
    * ``location``: the mail location in 2.3 form, or None when it is empty
      (2.3 then guesses per user; the caller must not guess);
    * ``config_version``/``storage_version``: 2.4's ``dovecot_config_version`` and
      ``dovecot_storage_version`` (None on 2.3): setting defaults and storage formats
      depend on them, so an adopted server keeps them.

    Sources: userdb ``home``/``mail`` fields override ``mail_home``/``mail_location``
    (https://doc.dovecot.org/2.3/configuration_manual/mail_location/); on 2.3 they are
    read from a static userdb's ``args`` and from any userdb's ``default_fields`` and
    ``override_fields``, on 2.4 from the userdb's ``fields`` block. An SQL userdb whose
    home is not among them has its home in the query: ``home`` is then None.
    Raises :class:`MailStoreError` for variables the role cannot carry over.
    """
    defaults = defaults or {}
    version = doveconf_version(text) or '2.3'
    family = '2.4' if tuple(int(x) for x in version.split('.')[:2]) >= (2, 4) else '2.3'
    tree = _parse_blocks(text.splitlines())
    top = tree['settings']
    userdbs = []
    for head, node in tree['blocks']:
        if head[0] != 'userdb':
            continue
        driver = node['settings'].get('driver') or (head[1] if len(head) > 1 else '')
        fields = {}
        if family == '2.3':
            # A static userdb's args, then the fields that 2.3 adds to any userdb's reply:
            # default_fields (unless the lookup returns them) and override_fields (always).
            for setting in ('args', 'default_fields', 'override_fields'):
                for token in node['settings'].get(setting, '').split():
                    key, sep, value = token.partition('=')
                    if sep:
                        fields[key] = value
        else:
            for sub_head, sub in node['blocks']:
                if sub_head[0] == 'fields':
                    fields.update(sub['settings'])
            for key in ('mail_home', 'mail_path', 'mail_driver'):
                if key in node['settings']:
                    fields.setdefault(key, node['settings'][key])
        userdbs.append((driver, fields))
    driver = userdbs[0][0] if userdbs else None
    virtual = any(d in ('static', 'sql', 'prefetch') for d, _f in userdbs)
    fields = userdbs[0][1] if userdbs else {}
    result = {'version': family, 'userdb': driver, 'virtual': virtual, 'home': None, 'location': None,
              'config_version': top.get('dovecot_config_version'), 'storage_version': top.get('dovecot_storage_version')}
    if family == '2.3':
        home = fields.get('home') or top.get('mail_home') or None
        location = fields.get('mail') or top.get('mail_location') or None
    else:
        home = fields.get('home') or fields.get('mail_home') or top.get('mail_home') or defaults.get('mail_home')
        home = from_v24(home) if home else None
        drv = fields.get('mail_driver') or top.get('mail_driver') or defaults.get('mail_driver')
        path = fields.get('mail_path') or top.get('mail_path') or defaults.get('mail_path')
        location = None
        if drv and path:
            options = []
            # Only settings the configuration sets: doveconf -h prints global defaults, not the driver's own
            # (mailbox_list_layout is fs globally but Maildir++ for the maildir driver).
            for key, setting in sorted(LOCATION_KEYS_V24.items()):
                value = top.get(setting)
                if value:
                    options.append('%s=%s' % (key, from_v24(value)))
            location = ':'.join([drv, from_v24(path)] + options)
    if driver == 'sql' and not fields.get('home'):
        home = None  # the SQL user_query decides; the caller must be told
    result['home'] = home
    result['location'] = location
    return result
