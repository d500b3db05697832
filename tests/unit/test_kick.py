# -*- coding: utf-8 -*-
"""Issue #20 item 4: which mailboxes lose their open sessions (users_to_kick) and how doveadm is run."""

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as acc
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_kick

from test_model_plan import SHA, plan, state4

OTHER = '$6$othersaltothers$' + 'y' * 86


def base():
    return state4(domains=[('a.example', 1, 0, None), ('b.example', 1, 0, None)],
                  users=[('alice@a.example', 1, 0, 1), ('bob@a.example', 1, 0, 1), ('carol@b.example', 2, 0, 1),
                         ('Dave@b.example', 2, 0, 0)])


def kick_of(**kinds):
    state = base()
    return acc.users_to_kick(plan(state, **kinds), state)


def test_nothing_changed_kicks_nobody():
    assert kick_of(users=[{'email': 'alice@a.example', 'password_hash': SHA, 'active': True}]) == []


def test_new_mailbox_and_quota_or_enable_change_kick_nobody():
    assert kick_of(users=[{'email': 'new@a.example', 'password_hash': SHA},
                          {'email': 'alice@a.example', 'quota': '1G'},
                          {'email': 'dave@b.example', 'active': True}]) == []


def test_password_change_kicks():
    assert kick_of(users=[{'email': 'alice@a.example', 'password_hash': OTHER}]) == ['alice@a.example']


def test_disable_kicks():
    assert kick_of(users=[{'email': 'bob@a.example', 'active': False}]) == ['bob@a.example']


def test_removal_kicks_with_the_stored_address():
    assert kick_of(users=[{'email': 'dave@b.example', 'state': 'absent'}]) == ['Dave@b.example']


def test_disabled_domain_kicks_all_its_mailboxes():
    assert kick_of(domains=[{'name': 'a.example', 'active': False}]) == ['alice@a.example', 'bob@a.example']


def test_removed_domain_kicks_its_mailboxes():
    assert kick_of(domains=[{'name': 'b.example', 'state': 'absent', 'force': True}]) == \
        ['Dave@b.example', 'carol@b.example']


def test_several_reasons_once_each_sorted():
    got = kick_of(users=[{'email': 'carol@b.example', 'password_hash': OTHER, 'active': False},
                         {'email': 'alice@a.example', 'state': 'absent'}])
    assert got == ['alice@a.example', 'carol@b.example']


class FakeModule(object):
    def __init__(self, path='/usr/bin/doveadm', rcs=None):
        self.path, self.rcs, self.calls = path, rcs or {}, []

    def get_bin_path(self, name):
        assert name == 'doveadm'
        return self.path

    def run_command(self, argv, **kwargs):
        assert isinstance(argv, list), 'an argument list, never a shell string'
        self.calls.append(argv)
        return self.rcs.get(argv[-1], 0), '', 'boom' if self.rcs.get(argv[-1]) else ''


def test_kick_runs_doveadm_with_an_argument_list():
    module = FakeModule(rcs={'b@x.example': 68})
    kicked, warnings = vmail_kick.kick(module, ['a@x.example', 'b@x.example', '-c@x.example'])
    assert module.calls == [['/usr/bin/doveadm', 'kick', 'a@x.example'], ['/usr/bin/doveadm', 'kick', 'b@x.example'],
                            ['/usr/bin/doveadm', 'kick', '--', '-c@x.example']]
    assert kicked == ['a@x.example', 'b@x.example', '-c@x.example'] and warnings == []


def test_kick_failure_is_a_warning():
    kicked, warnings = vmail_kick.kick(FakeModule(rcs={'b@x.example': 75}), ['a@x.example', 'b@x.example'])
    assert kicked == ['a@x.example'] and len(warnings) == 1 and 'b@x.example' in warnings[0] and '75' in warnings[0]


def test_no_doveadm_is_a_warning_not_a_failure():
    module = FakeModule(path=None)
    kicked, warnings = vmail_kick.kick(module, ['a@x.example'])
    assert kicked == [] and module.calls == [] and 'doveadm is not installed' in warnings[0] and 'a@x.example' in warnings[0]


@pytest.mark.parametrize('users', [[], None])
def test_nobody_to_kick_runs_nothing(users):
    module = FakeModule()
    assert vmail_kick.kick(module, users) == ([], []) and module.calls == []
