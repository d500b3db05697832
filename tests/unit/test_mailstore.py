# -*- coding: utf-8 -*-
"""Unit tests of the mail-location logic (module_utils/vmail_mailstore.py)."""

import os

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_mailstore as store

HOME = '/var/mail/vhosts/%d/%n'

# doveconf -n of a Debian 12 server built with the 2013 guide (abridged to what matters).
DOVECONF_23_GUIDE2013 = """# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf
# OS: Linux 6.1 x86_64 Debian 12.15
mail_location = maildir:~/Maildir
mail_privileged_group = mail
namespace inbox {
  inbox = yes
  location =
  mailbox Drafts {
    special_use = \\Drafts
  }
  prefix =
}
passdb {
  args = /etc/dovecot/dovecot-sql.conf.ext
  driver = sql
}
protocols = " imap pop3 lmtp"
userdb {
  args = uid=vmail gid=vmail home=/var/mail/vhosts/%d/%n
  driver = static
}
"""

# Debian 12 right after apt-get install dovecot-imapd: system users, mbox.
DOVECONF_23_DEBIAN_DEFAULT = """# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf
mail_location = mbox:~/mail:INBOX=/var/mail/%u
passdb {
  driver = pam
}
userdb {
  driver = passwd
}
"""

# Debian 13 (Dovecot 2.4) with the newer guide's layout in 2.4 syntax.
DOVECONF_24_NEWER = """# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf
dovecot_config_version = 2.4.0
mail_driver = maildir
mail_home = /home/%{user | username}
mail_path = /var/mail/vhosts/%{user | domain}/%{user | username}/
passdb sql {
  query = SELECT email as user, password FROM virtual_users WHERE email='%{user}'
}
userdb static {
  fields {
    uid = vmail
    gid = vmail
    home = /var/mail/vhosts/%{user | domain}/%{user | username}
  }
}
"""


def test_parse_location_and_back():
    parsed = store.parse_location('maildir:~/Maildir:LAYOUT=fs')
    assert parsed == {'driver': 'maildir', 'path': '~/Maildir', 'options': [('LAYOUT', 'fs')]}
    assert store.format_location(parsed) == 'maildir:~/Maildir:LAYOUT=fs'


@pytest.mark.parametrize('bad, message', [
    ('', 'empty'),
    ('maildir', 'no path'),
    ('zip:/var/mail', 'unknown mailbox format'),
    ('maildir:~/Maildir:FOO=bar', 'FOO=bar'),
])
def test_parse_location_refuses(bad, message):
    with pytest.raises(store.MailStoreError, match=message):
        store.parse_location(bad)


def test_variables_to_v24_and_back():
    assert store.to_v24(HOME) == '/var/mail/vhosts/%{user | domain}/%{user | username}'
    assert store.to_v24('~/Maildir') == '%{home}/Maildir'
    assert store.from_v24('/var/mail/vhosts/%{user|domain}/%{ user | username }') == HOME
    assert store.from_v24('%{home}/Maildir') == '~/Maildir'
    for template in (HOME, '/srv/mail/%u', '/m/%Ld/%Ln', '/m/100%%/%d/%n'):
        assert store.from_v24(store.to_v24(template)) == template


def test_unknown_variables_are_refused():
    with pytest.raises(store.MailStoreError, match='%r'):
        store.to_v24('/var/mail/%r/%n')
    with pytest.raises(store.MailStoreError, match='md5'):
        store.from_v24('/var/mail/%{user | md5}')


def test_location_to_v24_settings():
    assert store.location_to_v24('maildir:~/Maildir:INBOX=/var/mail/%u', HOME) == [
        ('mail_driver', 'maildir'),
        ('mail_home', '/var/mail/vhosts/%{user | domain}/%{user | username}'),
        ('mail_path', '%{home}/Maildir'),
        ('mail_inbox_path', '/var/mail/%{user}'),
    ]


def test_effective_path():
    assert store.effective_path(HOME, '~/Maildir') == '/var/mail/vhosts/%d/%n/Maildir'
    assert store.effective_path(HOME, '~') == HOME
    assert store.effective_path(HOME, '/var/mail/vhosts/%d/%n/') == HOME


def test_path_regex_and_render():
    rx = store.path_regex('/var/mail/vhosts/%d/%n/Maildir')
    match = rx.match('/var/mail/vhosts/example.com/email1/Maildir')
    assert match.groupdict() == {'d': 'example.com', 'n': 'email1'}
    assert not rx.match('/var/mail/vhosts/example.com/email1')
    assert not rx.match('/var/mail/vhosts/example.com/email1/Maildir/x')
    assert store.render_path('/srv/%d/%n', {'u': 'a@b.example'}) == '/srv/b.example/a'
    assert store.render_path('/srv/%u', {'d': 'b.example', 'n': 'a'}) == '/srv/a@b.example'


def test_parse_doveconf_2013_guide():
    got = store.parse_doveconf(DOVECONF_23_GUIDE2013)
    assert got == {'version': '2.3', 'userdb': 'static', 'virtual': True, 'home': HOME,
                   'location': 'maildir:~/Maildir', 'config_version': None, 'storage_version': None}


def test_parse_doveconf_debian_default_is_not_virtual():
    got = store.parse_doveconf(DOVECONF_23_DEBIAN_DEFAULT)
    assert got['virtual'] is False and got['userdb'] == 'passwd'


def test_parse_doveconf_24_userdb_home_wins_over_mail_home():
    got = store.parse_doveconf(DOVECONF_24_NEWER)
    assert got == {'version': '2.4', 'userdb': 'static', 'virtual': True, 'home': HOME,
                   'location': 'maildir:/var/mail/vhosts/%d/%n/', 'config_version': '2.4.0',
                   'storage_version': None}


def test_parse_doveconf_24_defaults_fill_missing_settings():
    text = DOVECONF_24_NEWER.replace('mail_path = /var/mail/vhosts/%{user | domain}/%{user | username}/\n', '')
    got = store.parse_doveconf(text, {'mail_path': '%{home}/mail'})
    assert got['location'] == 'maildir:~/mail'


def test_parse_doveconf_24_options_only_when_set():
    """A global default (mailbox_list_layout = fs) is not the maildir driver's layout: never carry it over."""
    got = store.parse_doveconf(DOVECONF_24_NEWER, {'mailbox_list_layout': 'fs'})
    assert got['location'] == 'maildir:/var/mail/vhosts/%d/%n/'
    got = store.parse_doveconf(DOVECONF_24_NEWER.replace('mail_driver = maildir\n',
                                                         'mail_driver = maildir\nmailbox_list_layout = fs\n'))
    assert got['location'] == 'maildir:/var/mail/vhosts/%d/%n/:LAYOUT=fs'


def _maildir(path, messages=0, folders=()):
    for sub in ('cur', 'new', 'tmp'):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    for i in range(messages):
        with open(os.path.join(path, 'cur', '17000000%02d.M1.host:2,S' % i), 'w') as f:
            f.write('Subject: m%d\n\nbody\n' % i)
    for folder in folders:
        _maildir(os.path.join(path, '.' + folder), 1)


def test_find_maildirs_skips_folders_and_counts_messages(tmp_path):
    root = tmp_path / 'vhosts'
    _maildir(str(root / 'example.com' / 'email1' / 'Maildir'), 2, folders=['Projects'])
    _maildir(str(root / 'example.com' / 'email2'), 1)
    found = store.find_maildirs(str(root))
    assert found == [str(root / 'example.com' / 'email1' / 'Maildir'), str(root / 'example.com' / 'email2')]
    assert store.count_messages(found[0]) == 3
    assert store.find_maildirs(str(tmp_path / 'missing')) == []


def test_plan_keeps_location_when_unchanged(tmp_path):
    current = {'home': HOME, 'location': 'maildir:~/Maildir'}
    result = store.plan(['/var/mail/vhosts/example.com/email1/Maildir'], current, current)
    assert result['changes'] is False and result['moves'] == []
    assert result['at_current'] == [{'user': 'email1@example.com', 'path': '/var/mail/vhosts/example.com/email1/Maildir'}]


def test_plan_change_lists_moves_and_orphans():
    current = {'home': HOME, 'location': 'maildir:~/Maildir'}
    wanted = {'home': HOME, 'location': 'maildir:/var/mail/vhosts/%d/%n'}
    maildirs = ['/var/mail/vhosts/example.com/email1/Maildir', '/var/mail/vhosts/example.com/email1',
                '/var/mail/vhosts/other/x/y/z']
    result = store.plan(maildirs, current, wanted)
    assert result['changes'] is True
    assert result['moves'] == [{'user': 'email1@example.com', 'src': '/var/mail/vhosts/example.com/email1/Maildir',
                                'dst': '/var/mail/vhosts/example.com/email1'}]
    assert result['orphans'] == ['/var/mail/vhosts/other/x/y/z']


def test_with_volatile_dir_sets_or_replaces_the_option():
    vol = '/var/lib/vmail/volatile/%d/%n'
    assert store.with_volatile_dir('maildir:/var/mail/vhosts/%d/%n', vol) == \
        'maildir:/var/mail/vhosts/%d/%n:VOLATILEDIR=' + vol
    assert store.with_volatile_dir('maildir:~/Maildir:VOLATILEDIR=/tmp/%u:LAYOUT=fs', vol) == \
        'maildir:~/Maildir:LAYOUT=fs:VOLATILEDIR=' + vol
    assert store.with_volatile_dir('maildir:~/Maildir:VOLATILEDIR=/tmp/%u', '') == 'maildir:~/Maildir:VOLATILEDIR=/tmp/%u'
    assert ('mail_volatile_path', '/var/lib/vmail/volatile/%{user | domain}/%{user | username}') in \
        store.location_to_v24(store.with_volatile_dir('maildir:~', vol), HOME)


@pytest.mark.parametrize('bad, message', [('/var/lib/vmail/volatile', 'per-user variable'),
                                          ('volatile/%d/%n', 'absolute'),
                                          ('/var/lib/vmail/%n', 'both'),
                                          ('/var/lib/vmail:x/%u', 'must not contain')])
def test_with_volatile_dir_refuses_shared_or_bad_templates(bad, message):
    with pytest.raises(store.MailStoreError, match=message):
        store.with_volatile_dir('maildir:~', bad)


def test_plan_a_new_volatile_dir_is_no_change_of_location():
    """Lock files move, mail does not: adding or changing VOLATILEDIR needs no declared move."""
    maildir = '/var/mail/vhosts/example.com/email1'
    plain = {'home': HOME, 'location': 'maildir:/var/mail/vhosts/%d/%n'}
    volatile = {'home': HOME, 'location': 'maildir:/var/mail/vhosts/%d/%n:VOLATILEDIR=/var/lib/vmail/volatile/%d/%n'}
    for current, wanted in ((plain, volatile), (volatile, plain)):
        result = store.plan([maildir], current, wanted)
        assert result['changes'] is False and result['moves'] == [], (current, wanted)
    # Other options still count: a new LAYOUT would hide the folders.
    layout = {'home': HOME, 'location': 'maildir:/var/mail/vhosts/%d/%n:LAYOUT=fs'}
    assert store.plan([maildir], volatile, layout)['changes'] is True


def test_parse_doveconf_reads_the_volatile_dir_back():
    text23 = DOVECONF_23_GUIDE2013.replace('mail_location = maildir:~/Maildir',
                                           'mail_location = maildir:~/Maildir:VOLATILEDIR=/var/lib/vmail/volatile/%d/%n')
    assert store.parse_doveconf(text23)['location'] == 'maildir:~/Maildir:VOLATILEDIR=/var/lib/vmail/volatile/%d/%n'
    text24 = DOVECONF_24_NEWER.replace(
        'mail_driver = maildir\n',
        'mail_driver = maildir\nmail_volatile_path = /var/lib/vmail/volatile/%{user | domain}/%{user | username}\n')
    assert store.parse_doveconf(text24)['location'] == \
        'maildir:/var/mail/vhosts/%d/%n/:VOLATILEDIR=/var/lib/vmail/volatile/%d/%n'


def test_leftover_lock_dirs_only_empty_unlocked_ones(tmp_path):
    root = tmp_path / 'vhosts' / 'example.com'
    users = {}
    for user in ('idle', 'accessed', 'locked', 'filed', 'none', 'link'):
        users[user] = str(root / user)
        _maildir(users[user])
    (root / 'idle' / '.dovecot.lda-dupes.locks').mkdir()
    _maildir(str(root / 'accessed' / '.dovecot.lda-dupes.locks'))  # IMAP made it a Maildir folder
    (root / 'accessed' / '.dovecot.lda-dupes.locks' / 'dovecot-uidlist').write_text('3 V1 N1\n')
    (root / 'locked' / '.dovecot.lda-dupes.locks').mkdir()
    (root / 'locked' / '.dovecot.lda-dupes.locks' / 'duplicate.lock.0123abcd').write_text('')
    _maildir(str(root / 'filed' / '.dovecot.lda-dupes.locks'), messages=1)  # a user filed mail there
    (root / 'link' / '.dovecot.lda-dupes.locks').symlink_to(str(root / 'idle' / '.dovecot.lda-dupes.locks'))
    assert store.leftover_lock_dirs(sorted(users.values())) == [
        users['accessed'] + '/.dovecot.lda-dupes.locks', users['idle'] + '/.dovecot.lda-dupes.locks']


def test_plan_refuses_shared_directory():
    with pytest.raises(store.MailStoreError, match='per-user variable'):
        store.plan([], None, {'home': '/var/mail/all', 'location': 'maildir:~'})
    with pytest.raises(store.MailStoreError, match='both'):
        store.plan([], None, {'home': '/var/mail/%n', 'location': 'maildir:~'})


def test_move_down_keeps_other_home_files(tmp_path):
    """Newer guide (mail in the home) to ~/Maildir: mail entries move down, other files stay."""
    home = tmp_path / 'example.com' / 'email1'
    _maildir(str(home), 2, folders=['Projects'])
    (home / 'dovecot-uidlist').write_text('3 V1 N3\n')
    (home / 'subscriptions').write_text('Projects\n')
    (home / 'sieve').mkdir()
    before = sorted(p.name for p in (home / 'cur').iterdir())
    assert store.move_maildir(str(home), str(home / 'Maildir')) == 'down'
    assert sorted(p.name for p in (home / 'Maildir' / 'cur').iterdir()) == before
    assert (home / 'Maildir' / 'dovecot-uidlist').read_text() == '3 V1 N3\n'
    assert (home / 'Maildir' / 'subscriptions').read_text() == 'Projects\n'
    assert store.count_messages(str(home / 'Maildir')) == 3
    assert (home / 'sieve').is_dir() and not (home / 'cur').exists()


def test_move_up_replaces_an_empty_skeleton(tmp_path):
    """2013 guide (~/Maildir) to the home, where Dovecot already made an empty Maildir."""
    home = tmp_path / 'example.com' / 'email1'
    _maildir(str(home / 'Maildir'), 2)
    _maildir(str(home), 0, folders=[])
    (home / 'dovecot.index.log').write_text('x')
    assert store.move_maildir(str(home / 'Maildir'), str(home)) == 'up'
    assert store.count_messages(str(home)) == 2
    assert not (home / 'Maildir').exists()
    assert not (home / 'dovecot.index.log').exists()


def test_move_refuses_target_with_mail_before_moving(tmp_path):
    home = tmp_path / 'example.com' / 'email1'
    _maildir(str(home / 'Maildir'), 2)
    _maildir(str(home), 1)
    with pytest.raises(store.MailStoreError, match='already holds 1 messages'):
        store.move_maildir(str(home / 'Maildir'), str(home))
    assert store.count_messages(str(home / 'Maildir')) == 2


def test_move_rename_creates_parents(tmp_path):
    src = tmp_path / 'old' / 'example.com' / 'email1'
    _maildir(str(src), 1)
    dst = tmp_path / 'new' / 'example.com' / 'email1'
    assert store.move_maildir(str(src), str(dst)) == 'rename'
    assert store.count_messages(str(dst)) == 1 and not src.exists()


# This role's own SQL userdb (quota limits, schema version 4), as doveconf -n prints it back.
DOVECONF_23_SQL_USERDB = """# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf
mail_location = maildir:/var/mail/vhosts/%d/%n
userdb {
  args = /etc/dovecot/dovecot-sql.conf.ext
  default_fields = uid=5000 gid=5000 home=/var/mail/vhosts/%d/%n
  driver = sql
}
"""


def test_parse_doveconf_23_sql_userdb_home_from_default_fields():
    """A re-run reads the home of the role's SQL userdb back (default_fields), so the location is kept."""
    got = store.parse_doveconf(DOVECONF_23_SQL_USERDB)
    assert got['userdb'] == 'sql' and got['virtual'] is True
    assert got['home'] == HOME and got['location'] == 'maildir:/var/mail/vhosts/%d/%n'
    # override_fields win over default_fields, as in Dovecot.
    text = DOVECONF_23_SQL_USERDB.replace('  driver = sql\n', '  driver = sql\n  override_fields = home=/srv/%d/%n\n')
    assert store.parse_doveconf(text)['home'] == '/srv/%d/%n'
    # Without home in either, the SQL query decides: the caller is told (None), nothing is guessed.
    text = DOVECONF_23_SQL_USERDB.replace(' home=/var/mail/vhosts/%d/%n', '')
    assert store.parse_doveconf(text)['home'] is None


def test_parse_doveconf_24_sql_userdb_home_from_fields():
    text = DOVECONF_24_NEWER.replace('userdb static {', "userdb sql {\n  query = SELECT CONCAT(quota, 'B') AS "
                                     "quota_storage_size FROM virtual_users WHERE email = '%{user}'")
    got = store.parse_doveconf(text)
    assert got['userdb'] == 'sql' and got['home'] == HOME
