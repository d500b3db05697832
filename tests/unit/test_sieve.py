# -*- coding: utf-8 -*-
"""Unit tests of the out-of-office script builder and plan (module_utils/vmail_sieve.py).

The strings are checked by reading them back with a small tokenizer of the
RFC 5228 lexical grammar (section 2.4.2, quoted strings and ``text:``
literals), written here independently of the builder: whatever text goes in
must come out of the script as exactly one string token with the same value.
"""

import datetime
import os
import re

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_sieve as sieve

NASTY = [
    'plain',
    'a "quoted" word',
    'back\\slash at the end\\',
    '\\"',
    '"; discard; keep "',
    'Ünïcödé – ✓ 日本語',
    '${hex:41} ${variable} %d ~',
    'tab\there',
]


def tokenize(script):
    """Split Sieve script text into (kind, value) tokens: string, text, word, punct (comments dropped)."""
    tokens = []
    i = 0
    while i < len(script):
        ch = script[i]
        if ch in ' \t\n':
            i += 1
        elif ch == '#':
            i = script.index('\n', i) + 1
        elif ch == '"':
            value, i = [], i + 1
            while script[i] != '"':
                if script[i] == '\\':
                    i += 1
                value.append(script[i])
                i += 1
            tokens.append(('string', ''.join(value)))
            i += 1
        elif script.startswith('text:', i):
            i = script.index('\n', i) + 1
            lines = []
            while True:
                end = script.index('\n', i)
                line = script[i:end]
                i = end + 1
                if line == '.':
                    break
                lines.append(line[1:] if line.startswith('..') else line)
            tokens.append(('text', ''.join(line + '\n' for line in lines)))
        else:
            match = re.compile(r'[A-Za-z_:][A-Za-z0-9_:]*|[0-9]+|.').match(script, i)
            tokens.append(('word' if match.group(0)[0].isalnum() or match.group(0)[0] in '_:' else 'punct',
                           match.group(0)))
            i = match.end()
    return tokens


def spec(**over):
    args = dict(email='alice@example.com', subject='Away', body='I am away.\n')
    args.update(over)
    return sieve.normalize(**args)


def argument(tokens, tag):
    """The token after the tagged argument ``tag`` (e.g. ':subject')."""
    index = tokens.index(('word', tag))
    return tokens[index + 1]


# --- strings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize('value', NASTY)
def test_quote_round_trips(value):
    assert tokenize(sieve.quote(value)) == [('string', value)]


def test_quote_escapes_only_backslash_and_quote():
    assert sieve.quote('a"b\\c') == '"a\\"b\\\\c"'
    assert sieve.quote('${x}') == '"${x}"'


def test_quote_refuses_nul_and_surrogates():
    with pytest.raises(sieve.SieveError, match='NUL'):
        sieve.quote('a\x00b')
    with pytest.raises(sieve.SieveError, match='Unicode'):
        sieve.quote('a\udcffb')


def test_string_list():
    assert sieve.string_list(['a', 'b"c']) == '["a", "b\\"c"]'
    strings = [t for t in tokenize(sieve.string_list(['a', 'b"c'])) if t[0] == 'string']
    assert strings == [('string', 'a'), ('string', 'b"c')]


@pytest.mark.parametrize('body', [
    'one line',
    'ends with newline\n',
    '.\n..\n...\n. dot space\n',
    'first\n.\n;\ndiscard;\n"\n',
    'crlf\r\nlines\r\nand a lone\rcr',
    '\n\nleading blank lines',
])
def test_multiline_round_trips(body):
    normalized = body.replace('\r\n', '\n').replace('\r', '\n')
    expected = normalized if normalized.endswith('\n') else normalized + '\n'
    assert tokenize(sieve.multiline(body)) == [('text', expected)]


def test_multiline_dot_stuffs():
    assert sieve.multiline('.\nx') == 'text:\n..\nx\n.\n'


# --- options --------------------------------------------------------------------------------------------


def test_normalize_defaults_and_normalization():
    extra = ['Postmaster@example.com', 'alice@example.com', 'postmaster@example.com']
    result = spec(email='Alice@Example.COM', addresses=extra)
    assert result == dict(email='alice@example.com', state='present', subject='Away', body='I am away.\n',
                          active=True, start_date=None, end_date=None, days=7,
                          addresses=['postmaster@example.com'])


def test_absent_needs_only_the_address():
    assert sieve.normalize('Bob@example.com', state='absent') == dict(email='bob@example.com', state='absent')


def test_yaml_dates_are_accepted():
    result = spec(start_date=datetime.date(2026, 12, 20), end_date='2027-01-05')
    assert (result['start_date'], result['end_date']) == ('2026-12-20', '2027-01-05')


@pytest.mark.parametrize('over, message', [
    (dict(email='not an address'), 'email'),
    (dict(email='a/b@example.com'), '"/"'),
    (dict(body=None), 'body is required'),
    (dict(body='   \n'), 'body is required'),
    (dict(body='bell\x07'), 'control characters'),
    (dict(body='x' * (sieve.MAX_BODY_OCTETS + 1)), 'octets long'),
    (dict(subject='two\nlines'), 'single line'),
    (dict(subject='\x1b[31mred'), 'single line'),
    (dict(subject=' padded'), 'white space'),
    (dict(subject='s' * 257), 'characters long'),
    (dict(days=0), 'days must be'),
    (dict(days=61), 'days must be'),
    (dict(days=True), 'days must be'),
    (dict(days='7'), 'days must be'),
    (dict(start_date='20.12.2026'), 'start_date must be an ISO date'),
    (dict(start_date='2026-02-30'), 'not a calendar date'),
    (dict(end_date='2026-12-1'), 'end_date must be'),
    (dict(start_date='2027-01-05', end_date='2026-12-20'), 'before start_date'),
    (dict(addresses=['ok@example.com', 'bad address']), r'addresses\[1\]'),
    (dict(state='gone'), 'state must be'),
])
def test_bad_options_are_refused(over, message):
    with pytest.raises(sieve.SieveError, match=message):
        spec(**over)


def test_expired():
    today = datetime.date(2027, 1, 6)
    assert sieve.expired(spec(end_date='2027-01-05'), today)
    assert not sieve.expired(spec(end_date='2027-01-06'), today)
    assert not sieve.expired(spec(), today)


# --- the script ----------------------------------------------------------------------------------------------


def test_script_structure():
    text = sieve.build_script(spec(subject='Out "of" office', addresses=['postmaster@example.com'], days=3))
    assert text.startswith(sieve.MARKER + '\n')
    tokens = tokenize(text)
    assert tokens[:2] == [('word', 'require'), ('punct', '[')]
    assert ('string', 'vacation') in tokens and ('string', 'date') not in tokens
    assert argument(tokens, ':days') == ('word', '3')
    assert argument(tokens, ':subject') == ('string', 'Out "of" office')
    assert tokens[tokens.index(('word', ':addresses')) + 2] == ('string', 'postmaster@example.com')
    # exactly one action, the vacation, at the end of the one if-block
    assert [t for t in tokens if t[0] == 'word' and t[1] in ('vacation', 'discard', 'keep', 'redirect',
                                                             'fileinto', 'stop')] == [('word', 'vacation')]
    assert tokens[-3:] == [('text', 'I am away.\n'), ('punct', ';'), ('punct', '}')]


def test_script_refuses_lists_bulk_and_automatic_mail():
    tokens = tokenize(sieve.build_script(spec()))
    for header in ('list-id', 'list-unsubscribe', 'list-post', 'list-owner', 'list-subscribe', 'list-help',
                   'list-archive'):
        index = tokens.index(('string', header))
        assert tokens[index - 2:index] == [('word', 'not'), ('word', 'exists')], header
    index = tokens.index(('string', 'precedence'))
    assert tokens[index - 3:index] == [('word', 'not'), ('word', 'header'), ('word', ':is')]
    assert tokens[index + 1:index + 8] == [('punct', '['), ('string', 'list'), ('punct', ','), ('string', 'bulk'),
                                           ('punct', ','), ('string', 'junk'), ('punct', ']')]
    text = sieve.build_script(spec())
    assert 'anyof (not exists "auto-submitted", header :is "auto-submitted" "no")' in text
    assert text.count('if allof (') == 1


def test_script_dates():
    text = sieve.build_script(spec(start_date='2026-12-20', end_date='2027-01-05'))
    assert 'require ["date", "relational", "vacation"];' in text
    assert 'currentdate :value "ge" "date" "2026-12-20"' in text
    assert 'currentdate :value "le" "date" "2027-01-05"' in text
    only_end = sieve.build_script(spec(end_date='2027-01-05'))
    assert '"ge"' not in only_end and '"le" "date" "2027-01-05"' in only_end


def test_inactive_script_keeps_the_text_but_sends_nothing():
    text = sieve.build_script(spec(active=False, start_date='2026-12-20'))
    tokens = tokenize(text)
    index = tokens.index(('word', 'if'))
    assert tokens[index + 1:index + 3] == [('word', 'false'), ('punct', '{')]
    assert ('text', 'I am away.\n') in tokens and 'currentdate' not in text


@pytest.mark.parametrize('value', NASTY)
def test_user_text_cannot_escape_its_string(value):
    """Subject and body come back as one token each; no extra command appears."""
    body = value + '\n.\n;\ndiscard;\n'
    tokens = tokenize(sieve.build_script(spec(subject=value.replace('\t', ' ').strip() or 'x', body=body)))
    assert argument(tokens, ':subject') == ('string', value.replace('\t', ' ').strip() or 'x')
    assert tokens[-3] == ('text', body)
    assert ('word', 'discard') not in tokens


def test_script_is_deterministic():
    assert sieve.build_script(spec()) == sieve.build_script(spec())


def test_script_path():
    assert sieve.script_path('/var/lib/vmail/vacation/', 'alice@example.com') == (
        '/var/lib/vmail/vacation/example.com', '/var/lib/vmail/vacation/example.com/alice.sieve')
    with pytest.raises(sieve.SieveError, match='absolute'):
        sieve.script_path('relative/dir', 'alice@example.com')


# --- plan and apply on a temporary directory -----------------------------------------------------------------


@pytest.fixture
def base(tmp_path):
    return str(tmp_path / 'vacation')


def ids():
    return os.getuid(), os.getgid()


def converge(base, content, email='alice@example.com'):
    state = sieve.read_state(base, email)
    changes = sieve.plan(state, content, *ids())
    sieve.apply(changes, content, *ids())
    return changes


def test_create_then_nothing_to_do(base):
    content = sieve.build_script(spec())
    changes = converge(base, content)
    assert [(c['op'], os.path.relpath(c['path'], base)) for c in changes] == [
        ('mkdir', '.'), ('mkdir', 'example.com'), ('write', 'example.com/alice.sieve')]
    path = os.path.join(base, 'example.com', 'alice.sieve')
    assert open(path, encoding='utf-8').read() == content
    assert os.stat(path).st_mode & 0o777 == sieve.FILE_MODE
    assert os.stat(base).st_mode & 0o777 == sieve.DIR_MODE
    assert converge(base, content) == []
    assert sorted(os.listdir(os.path.join(base, 'example.com'))) == ['alice.sieve']


def test_update_removes_the_stale_binary(base):
    converge(base, sieve.build_script(spec()))
    binary = os.path.join(base, 'example.com', 'alice.svbin')
    open(binary, 'w').close()
    changes = converge(base, sieve.build_script(spec(subject='Changed')))
    assert [c['op'] for c in changes] == ['write', 'unlink']
    assert not os.path.exists(binary)
    assert 'Changed' in open(os.path.join(base, 'example.com', 'alice.sieve'), encoding='utf-8').read()


def test_wrong_modes_are_repaired(base):
    content = sieve.build_script(spec())
    converge(base, content)
    os.chmod(os.path.join(base, 'example.com', 'alice.sieve'), 0o666)
    os.chmod(os.path.join(base, 'example.com'), 0o777)
    changes = converge(base, content)
    wanted = [('chmod', 'mode 0777 -> 0750'), ('chmod', 'mode 0666 -> 0640')]
    assert [(c['op'], c['detail']) for c in changes] == wanted
    assert converge(base, content) == []


def test_owner_difference_is_planned(base):
    content = sieve.build_script(spec())
    converge(base, content)
    state = sieve.read_state(base, 'alice@example.com')
    uid, gid = ids()
    changes = sieve.plan(state, content, uid + 1, gid)
    assert [c['op'] for c in changes] == ['chown', 'chown', 'chown']


def test_remove(base):
    converge(base, sieve.build_script(spec()))
    open(os.path.join(base, 'example.com', 'alice.svbin'), 'w').close()
    changes = converge(base, None)
    assert [c['op'] for c in changes] == ['unlink', 'unlink']
    assert os.listdir(os.path.join(base, 'example.com')) == []
    assert converge(base, None) == []


def test_remove_when_nothing_exists(base):
    assert converge(base, None) == []
    assert not os.path.exists(base)


def test_a_foreign_file_is_not_touched(base):
    os.makedirs(os.path.join(base, 'example.com'))
    path = os.path.join(base, 'example.com', 'alice.sieve')
    with open(path, 'w') as handle:
        handle.write('require "fileinto";\nfileinto "Hand-written";\n')
    for content in (sieve.build_script(spec()), None):
        with pytest.raises(sieve.SieveError, match='not written by vmail.mailserver.mail_vacation'):
            sieve.plan(sieve.read_state(base, 'alice@example.com'), content, *ids())
    assert open(path).read().startswith('require "fileinto"')


def test_a_symlink_is_not_followed(base, tmp_path):
    os.makedirs(os.path.join(base, 'example.com'))
    target = tmp_path / 'elsewhere.sieve'
    target.write_text(sieve.MARKER + '\n')
    os.symlink(str(target), os.path.join(base, 'example.com', 'alice.sieve'))
    with pytest.raises(sieve.SieveError, match='symbolic link'):
        sieve.plan(sieve.read_state(base, 'alice@example.com'), sieve.build_script(spec()), *ids())


def test_a_file_where_the_domain_directory_belongs_is_refused(base):
    os.makedirs(base)
    open(os.path.join(base, 'example.com'), 'w').close()
    with pytest.raises(sieve.SieveError, match='not a directory'):
        sieve.plan(sieve.read_state(base, 'alice@example.com'), sieve.build_script(spec()), *ids())


def test_parents_are_created(tmp_path):
    base = str(tmp_path / 'var' / 'lib' / 'vmail' / 'vacation')
    converge(base, sieve.build_script(spec()))
    assert os.path.isfile(os.path.join(base, 'example.com', 'alice.sieve'))
