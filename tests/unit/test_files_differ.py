# -*- coding: utf-8 -*-
"""The filter vmail.mailserver.files_differ: the one rule by which the postfix, dovecot and rspamd roles decide
which managed files to write (content checksum, mode, owner, group), compared with what Ansible's own modules
report for the same text."""

import hashlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.filter.files_differ import files_differ

TEXT = 'smtpd_banner = $myhostname ESMTP\nmyhostname = mail.example.com\n'
UNICODE = '# Grüße: ünïcödé in a comment\n'


def found(path, text, mode='0644', owner='root', group='root'):
    """One entry as ansible.builtin.find returns it with get_checksum=true (SHA-1 of the file's bytes)."""
    return {'path': path, 'checksum': hashlib.sha1(text.encode('utf-8')).hexdigest(), 'mode': mode,
            'pw_name': owner, 'gr_name': group}


def want(path, text=None, mode='0644', group='root', **extra):
    entry = {'path': path, 'mode': mode, 'group': group, **extra}
    if text is not None:
        entry['content'] = text
    return entry


def test_identical_files_differ_in_nothing():
    files = [found('/etc/postfix/main.cf', TEXT), found('/etc/rspamd/local.d/x.conf', UNICODE, '0640', 'root', '_rspamd')]
    wanted = [want('/etc/postfix/main.cf', TEXT), want('/etc/rspamd/local.d/x.conf', UNICODE, '0640', '_rspamd')]
    assert files_differ(files, wanted) == []


@pytest.mark.parametrize('change', ['content', 'trailing newline', 'mode', 'owner', 'group', 'missing'])
def test_each_kind_of_difference_is_seen(change):
    cur = found('/etc/postfix/main.cf', TEXT)
    if change == 'content':
        cur = found('/etc/postfix/main.cf', TEXT.replace('mail.', 'mx.'))
    elif change == 'trailing newline':
        cur = found('/etc/postfix/main.cf', TEXT.rstrip('\n'))
    elif change == 'mode':
        cur['mode'] = '0666'
    elif change == 'owner':
        cur['pw_name'] = 'postfix'
    elif change == 'group':
        cur['gr_name'] = 'postfix'
    files = [] if change == 'missing' else [cur]
    assert files_differ(files, [want('/etc/postfix/main.cf', TEXT)]) == ['/etc/postfix/main.cf']


def test_only_the_differing_files_in_the_wanted_order_with_their_key():
    files = [found('/etc/a', 'a'), found('/etc/b', 'old'), found('/etc/c', 'c')]
    wanted = [want('/etc/c', 'c!', key='c'), want('/etc/b', 'new'), want('/etc/a', 'a', key='a')]
    assert files_differ(files, wanted) == ['c', '/etc/b']


def test_contents_by_position_as_a_template_query_gives_them():
    files = [found('/etc/a', 'a'), found('/etc/b', 'b')]
    assert files_differ(files, [want('/etc/a'), want('/etc/b')], ['a', 'B']) == ['/etc/b']


def test_owner_other_than_root_can_be_wanted():
    assert files_differ([found('/etc/a', 'a', owner='_rspamd')], [want('/etc/a', 'a', owner='_rspamd')]) == []


@pytest.mark.parametrize('wanted,contents,message', [
    ([{'path': '/etc/a', 'mode': '0644'}], None, 'needs path, mode and group'),
    ([want('/etc/a')], None, 'no content for /etc/a'),
    ([want('/etc/a'), want('/etc/b')], ['a'], '1 contents for 2 wanted files'),
    ('/etc/a', None, 'must be lists'),
])
def test_bad_input_is_a_clear_error(wanted, contents, message):
    with pytest.raises(AnsibleFilterError, match=message):
        files_differ([], wanted, contents)
