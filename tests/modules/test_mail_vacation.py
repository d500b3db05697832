# -*- coding: utf-8 -*-
"""mail_vacation as Ansible runs it: create, unchanged re-run, update, pause, remove, check mode, diff, bad input.

A stand-in ``sievec`` records each call and rejects scripts that contain
``REJECT-ME`` (like Pigeonhole rejects a script it cannot compile), so the
module's compile check runs without Dovecot on the test host. The script
directory is a temporary one owned by the test user.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import stat

import pytest

from conftest import ansible_adhoc, run_module

BODY = 'I am away until Monday.\n. A line with a dot.\n'


@pytest.fixture
def env(tmp_path):
    log = tmp_path / 'sievec.log'
    sievec = tmp_path / 'sievec'
    sievec.write_text('#!/bin/sh\n'
                      'echo "$@" >> %s\n'
                      'if grep -q REJECT-ME "$1"; then echo "vacation.sieve: line 9: error: unknown command" >&2; '
                      'exit 1; fi\n'
                      'echo compiled > "$2"\n' % log)
    sievec.chmod(stat.S_IRWXU)
    base = tmp_path / 'vacation'
    args = dict(email='alice@example.com', subject='Away', body=BODY, vacation_dir=str(base),
                owner=str(os.getuid()), group=str(os.getgid()), sievec=str(sievec))
    return dict(args=args, base=base, log=log, path=base / 'example.com' / 'alice.sieve')


def run(args, **kw):
    return run_module('mail_vacation', args, login=False, **kw)


def snapshot(base):
    if not base.exists():
        return None
    return sorted((str(p), p.read_bytes() if p.is_file() else None, stat.S_IMODE(p.stat().st_mode))
                  for p in base.rglob('*'))


def test_create_rerun_update_pause_remove(env):
    res = run(env['args'])
    assert res.rc == 0 and res['changed'] is True, res.raw
    assert res['script_path'] == str(env['path']) and res['email'] == 'alice@example.com'
    text = env['path'].read_text(encoding='utf-8')
    assert text == res['script'] and ':subject "Away"' in text and '\n.. A line with a dot.\n' in text
    assert stat.S_IMODE(env['path'].stat().st_mode) == 0o640
    assert stat.S_IMODE((env['base'] / 'example.com').stat().st_mode) == 0o750
    assert res['vacation'] == dict(active=True, subject='Away', start_date=None, end_date=None, days=7,
                                   addresses=[])
    assert env['log'].read_text().count('\n') == 1, 'the new script was not compiled once'

    res = run(env['args'])
    assert res.rc == 0 and res['changed'] is False and res['changes'] == [], res.raw
    assert env['log'].read_text().count('\n') == 1, 'an unchanged script was compiled again'

    res = run(dict(env['args'], subject='Back on Monday', days=3, end_date='2099-12-31'))
    assert res.rc == 0 and res['changed'] is True, res.raw
    text = env['path'].read_text(encoding='utf-8')
    assert ':days 3 :subject "Back on Monday"' in text and '"le" "date" "2099-12-31"' in text

    res = run(dict(env['args'], active=False))
    assert res.rc == 0 and res['changed'] is True and res['vacation']['active'] is False, res.raw
    assert '\nif false\n' in env['path'].read_text(encoding='utf-8')

    res = run(dict(email='Alice@Example.com', state='absent', vacation_dir=str(env['base'])))
    assert res.rc == 0 and res['changed'] is True and res['script'] is None, res.raw
    assert not env['path'].exists()
    res = run(dict(email='alice@example.com', state='absent', vacation_dir=str(env['base'])))
    assert res.rc == 0 and res['changed'] is False, res.raw


def test_check_mode_and_diff_write_nothing(env):
    res = run(env['args'], check=True, diff=True)
    assert res.rc == 0 and res['changed'] is True, res.raw
    assert res['diff']['before'] == '' and 'vacation :days 7 :subject "Away"' in res['diff']['after']
    assert res['diff']['after_header'] == str(env['path'])
    assert snapshot(env['base']) is None, 'check mode wrote something'
    run(env['args'])
    before = snapshot(env['base'])
    res = run(dict(env['args'], subject='Other'), check=True, diff=True)
    assert res.rc == 0 and res['changed'] is True
    assert ':subject "Away"' in res['diff']['before'] and ':subject "Other"' in res['diff']['after']
    assert snapshot(env['base']) == before


@pytest.mark.parametrize('over, message', [
    (dict(email='no-at-sign'), 'email'),
    (dict(days=0), 'days must be'),
    (dict(days=90), 'days must be'),
    (dict(start_date='2026-13-01'), 'not a calendar date'),
    (dict(start_date='2027-01-05', end_date='2026-12-20'), 'before start_date'),
    (dict(subject='line\nbreak'), 'single line'),
    (dict(body=''), 'body'),
    (dict(body=None), 'body'),
    (dict(addresses=['@example.com']), 'addresses'),
    (dict(owner='no-such-user-here'), 'owner'),
    (dict(vacation_dir='relative/path'), 'absolute'),
])
def test_bad_input_writes_nothing(env, over, message):
    run(env['args'])
    before = snapshot(env['base'])
    args = dict(env['args'], subject='New')
    args.update(over)
    res = run(args)
    assert res.rc != 0 and message in res['msg'], res.raw
    assert snapshot(env['base']) == before


def test_rejected_script_is_not_installed(env):
    run(env['args'])
    before = snapshot(env['base'])
    res = run(dict(env['args'], body='REJECT-ME\n'))
    assert res.rc != 0 and 'sievec rejected' in res['msg'] and 'unknown command' in res['msg'], res.raw
    assert 'Nothing was written' in res['msg'] or 'nothing was written' in res['msg']
    assert snapshot(env['base']) == before


def test_missing_sievec_fails_but_check_mode_warns(env, tmp_path):
    args = dict(env['args'], sievec=str(tmp_path / 'no-sievec'))
    res = run(args)
    assert res.rc != 0 and 'dovecot_sieve' in res['msg'], res.raw
    assert snapshot(env['base']) is None
    res = run(args, check=True)
    assert res.rc == 0 and res['changed'] is True
    assert 'sievec' in json.dumps(res.get('warnings')), res.raw


def test_a_hand_written_script_is_left_alone(env):
    env['path'].parent.mkdir(parents=True)
    env['path'].write_text('require "fileinto";\nfileinto "Mine";\n')
    res = run(env['args'])
    assert res.rc != 0 and 'not written by vmail.mailserver.mail_vacation' in res['msg'], res.raw
    assert env['path'].read_text() == 'require "fileinto";\nfileinto "Mine";\n'


def test_past_end_date_warns(env):
    res = run(dict(env['args'], end_date='2001-01-01'))
    assert res.rc == 0, res.raw
    assert 'has passed' in json.dumps(res.get('warnings')), res.raw


def test_ansible_check_diff_end_to_end(env):
    rc, out = ansible_adhoc('mail_vacation', env['args'], check=True, diff=True)
    assert rc == 0, out
    assert '+  vacation :days 7 :subject "Away" text:' in out and 'CHANGED' in out, out
    assert snapshot(env['base']) is None
