# -*- coding: utf-8 -*-
"""mail_store as Ansible runs it: keep the mail location, the guard, the declared move (issue #11).

A stand-in ``doveconf`` prints the configuration of a guide-built server, so the
module's detection, decisions and renames run for real on a temporary mail root.
"""

from __future__ import absolute_import, division, print_function

import os
import stat
import textwrap

import pytest

from conftest import run_module

GUIDE_2013 = textwrap.dedent("""\
    # 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf
    mail_location = maildir:~/Maildir
    passdb {
      args = /etc/dovecot/dovecot-sql.conf.ext
      driver = sql
    }
    userdb {
      args = uid=vmail gid=vmail home=%(root)s/%%d/%%n
      driver = static
    }
    """)


@pytest.fixture
def server(tmp_path):
    """A mail root with the 2013 guide's layout: two users' Maildirs under ~/Maildir, one with a folder."""
    root = tmp_path / 'vhosts'
    for user, count in (('email1', 2), ('email2', 1)):
        maildir = root / 'example.com' / user / 'Maildir'
        for sub in ('cur', 'new', 'tmp', '.Projects/cur', '.Projects/new', '.Projects/tmp'):
            (maildir / sub).mkdir(parents=True)
        for i in range(count):
            (maildir / 'cur' / ('17000000%02d.M1.host:2,FS' % i)).write_text('Subject: legacy %d\n\nx\n' % i)
        (maildir / 'dovecot-uidlist').write_text('3 V1 N%d\n' % (count + 1))
        (maildir / 'subscriptions').write_text('Projects\n')
    conf = tmp_path / 'dovecot.conf'
    conf.write_text('# stand-in\n')
    doveconf = tmp_path / 'doveconf'
    doveconf.write_text('#!/bin/sh\ncat <<"EOF"\n%sEOF\n' % (GUIDE_2013 % {'root': root}))
    doveconf.chmod(stat.S_IRWXU)
    return dict(root=str(root), args=dict(mail_root=str(root), doveconf=str(doveconf), config_file=str(conf),
                                          uid=os.getuid()))


def test_keeps_the_guides_location(server):
    res = run_module('mail_store', server['args'], login=False)
    assert res.rc == 0, res.raw
    assert res['location'] == 'maildir:~/Maildir' and res['home'] == server['root'] + '/%d/%n'
    assert res['mail_path'] == server['root'] + '/%d/%n/Maildir'
    assert res['current']['source'] == 'doveconf' and res['current']['version'] == '2.3'
    assert res['maildirs'] == 2 and res['mailboxes'] == ['email1@example.com', 'email2@example.com']
    assert ['mail_path', '%{home}/Maildir'] in res['settings_v24']
    assert res['changed'] is False and res['moves'] == []


def test_fresh_host_gets_the_defaults(tmp_path):
    res = run_module('mail_store', dict(mail_root=str(tmp_path / 'none'), config_file=str(tmp_path / 'none.conf'),
                                        default_location='maildir:/srv/%d/%n', default_home='/srv/%d/%n'),
                     login=False)
    assert res.rc == 0, res.raw
    assert res['location'] == 'maildir:/srv/%d/%n' and res['current']['source'] == 'none'


def test_guard_refuses_an_undeclared_change(server):
    before = sorted(os.walk(server['root']))
    res = run_module('mail_store', dict(server['args'], location='maildir:%s/%%d/%%n' % server['root']),
                     login=False)
    assert res.rc != 0
    for text in ('maildir:~/Maildir', server['root'] + '/%d/%n/Maildir', '2 mailboxes',
                 'dovecot_mail_location_move', 'Nothing was changed'):
        assert text in res['msg'], res['msg']
    assert sorted(os.walk(server['root'])) == before


def test_wrong_owner_is_refused(server):
    res = run_module('mail_store', dict(server['args'], uid=os.getuid() + 4242), login=False)
    assert res.rc != 0 and 'another uid' in res['msg'] and str(os.getuid() + 4242) in res['msg'], res.raw


def test_state_moved_needs_the_declaration(server):
    res = run_module('mail_store', dict(server['args'], state='moved'), login=False)
    assert res.rc != 0 and 'move=true' in res['msg']


def test_declared_move_check_mode_then_for_real(server):
    args = dict(server['args'], location='maildir:%s/%%d/%%n' % server['root'], move=True, state='moved')
    before = sorted(os.walk(server['root']))
    res = run_module('mail_store', args, check=True, login=False)
    assert res.rc == 0 and res['changed'] is True and len(res['moves']) == 2, res.raw
    assert sorted(os.walk(server['root'])) == before, 'check mode moved something'
    res = run_module('mail_store', args, login=False)
    assert res.rc == 0 and res['changed'] is True, res.raw
    home = os.path.join(server['root'], 'example.com', 'email1')
    assert sorted(os.listdir(os.path.join(home, 'cur'))) == ['1700000000.M1.host:2,FS', '1700000001.M1.host:2,FS']
    assert open(os.path.join(home, 'subscriptions')).read() == 'Projects\n'
    assert os.path.isdir(os.path.join(home, '.Projects', 'cur')) and not os.path.exists(os.path.join(home, 'Maildir'))
    # The stand-in doveconf still describes the old layout: the guard now sees nothing left to move there.
    res = run_module('mail_store', dict(args, current_location='maildir:%s/%%d/%%n' % server['root']), login=False)
    assert res.rc == 0 and res['changed'] is False and res['moves'] == [], res.raw


def test_move_stops_before_anything_moves_when_a_target_holds_mail(server):
    target = os.path.join(server['root'], 'example.com', 'email2', 'cur')
    os.makedirs(target)
    with open(os.path.join(target, '1800000000.M9.host:2,'), 'w') as handle:
        handle.write('Subject: new\n\nx\n')
    before = sorted(os.walk(server['root']))
    res = run_module('mail_store', dict(server['args'], location='maildir:%s/%%d/%%n' % server['root'], move=True,
                                        state='moved'), login=False)
    assert res.rc != 0 and 'already holds 1 messages' in res['msg'] and 'Nothing was moved' in res['msg'], res.raw
    assert sorted(os.walk(server['root'])) == before


def test_volatile_dir_joins_the_kept_location_without_the_guard(server):
    """The guide's location is kept and gets the volatile directory: no declared move, nothing moves."""
    args = dict(server['args'], volatile_dir='/var/lib/vmail/volatile/%d/%n')
    res = run_module('mail_store', args, login=False)
    assert res.rc == 0, res.raw
    assert res['location'] == 'maildir:~/Maildir:VOLATILEDIR=/var/lib/vmail/volatile/%d/%n'
    assert ['mail_volatile_path', '/var/lib/vmail/volatile/%{user | domain}/%{user | username}'] in res['settings_v24']
    assert res['changed'] is False and res['moves'] == [] and res['maildirs'] == 2
    # The guard still sees a real change of location next to it.
    res = run_module('mail_store', dict(args, location='maildir:~'), login=False)
    assert res.rc != 0 and 'Nothing was changed' in res['msg']


def test_leftover_lock_dirs_only_where_the_home_is_the_maildir(server):
    """The guide's home holds ~/Maildir: a lock directory in the home is no folder, nothing to report."""
    lockdir = os.path.join(server['root'], 'example.com', 'email1', '.dovecot.lda-dupes.locks')
    os.mkdir(lockdir)
    args = dict(server['args'], volatile_dir='/var/lib/vmail/volatile/%d/%n')
    assert run_module('mail_store', args, login=False)['leftover_lock_dirs'] == []
    os.rmdir(lockdir)
    os.mkdir(os.path.join(server['root'], 'example.com', 'email1', 'Maildir', '.dovecot.lda-dupes.locks'))
    res = run_module('mail_store', dict(args, location='maildir:~', home=server['root'] + '/%d/%n/Maildir'),
                     login=False)
    assert res.rc == 0, res.raw
    assert res['leftover_lock_dirs'] == [os.path.join(server['root'], 'example.com', 'email1', 'Maildir',
                                                      '.dovecot.lda-dupes.locks')]
    assert res['changed'] is False
