# -*- coding: utf-8 -*-
"""Packaging metadata that must agree: the version in galaxy.yml, version_added in the plugins,
the changelog, requires_ansible, and the action group of the account modules (meta/runtime.yml)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.compat.version import LooseVersion
from ansible.release import __version__ as ansible_core_version

ROOT = pathlib.Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / 'galaxy.yml').read_text())
RUNTIME = yaml.safe_load((ROOT / 'meta' / 'runtime.yml').read_text())
PLUGINS = sorted(p for p in (ROOT / 'plugins').rglob('*.py') if '__pycache__' not in p.parts)
MODULES = sorted((ROOT / 'plugins' / 'modules').glob('*.py'))
VERSION_ADDED = re.compile(r'''version_added:\s*["']?([0-9][0-9.]*)''')


def _version_added():
    found = []
    for path in PLUGINS:
        for match in VERSION_ADDED.finditer(path.read_text()):
            found.append((path.relative_to(ROOT).as_posix(), match.group(1)))
    return found


def _documentation(path):
    source = path.read_text()
    match = re.search(r"^DOCUMENTATION = r?'''(.*?)'''", source, re.S | re.M)
    assert match, '%s has no DOCUMENTATION' % path.name
    return yaml.safe_load(match.group(1))


def test_version_added_is_found():
    # The regular expression still matches what the plugins write.
    assert len(_version_added()) > 20


@pytest.mark.parametrize('where,version', _version_added())
def test_version_added_is_not_after_the_release(where, version):
    assert LooseVersion(version) <= LooseVersion(GALAXY['version']), where


@pytest.mark.parametrize('where,version', _version_added())
def test_version_added_is_a_release(where, version):
    # Either the coming release (galaxy.yml) or one the changelog records.
    changes = yaml.safe_load((ROOT / 'changelogs' / 'changelog.yaml').read_text())
    releases = set(changes.get('releases') or {}) | {GALAXY['version']}
    assert version in releases, where


def test_changelog_names_the_coming_release():
    changes = yaml.safe_load((ROOT / 'changelogs' / 'changelog.yaml').read_text())
    released = set(changes.get('releases') or {})
    text = (ROOT / 'CHANGELOG.md').read_text()
    assert 'v%s' % GALAXY['version'] in text
    if GALAXY['version'] not in released:
        assert 'v%s (unreleased)' % GALAXY['version'] in text
    for version in released:
        assert LooseVersion(version) <= LooseVersion(GALAXY['version'])


def test_changelog_fragments_lint():
    pytest.importorskip('antsibull_changelog')
    result = subprocess.run([sys.executable, '-m', 'antsibull_changelog', 'lint'], cwd=str(ROOT),
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_no_placeholder_metadata():
    for key, value in GALAXY.items():
        assert 'example.invalid' not in str(value), key
        assert 'example.com' not in str(value), key


def _floor(spec):
    match = re.fullmatch(r'>=\s*([0-9.]+)', spec.strip())
    assert match, 'requires_ansible should be a plain lower bound: %r' % spec
    return match.group(1)


def test_requires_ansible_is_what_is_tested():
    # The claim is the tested version: this venv's ansible-core (the one make test uses) is
    # of the claimed minor version, so a lower claim fails here.
    floor = _floor(RUNTIME['requires_ansible'])
    assert LooseVersion(ansible_core_version) >= LooseVersion(floor)
    assert LooseVersion(ansible_core_version).version[:2] == LooseVersion(floor).version[:2]


@pytest.mark.parametrize('role', sorted(p.name for p in (ROOT / 'roles').iterdir() if (p / 'meta' / 'main.yml').exists()))
def test_roles_claim_the_same_minimum(role):
    meta = yaml.safe_load((ROOT / 'roles' / role / 'meta' / 'main.yml').read_text())
    floor = LooseVersion(_floor(RUNTIME['requires_ansible'])).version[:2]
    assert LooseVersion(str(meta['galaxy_info']['min_ansible_version'])).version[:2] == floor


def test_accounts_group_is_the_modules_with_the_connection_options():
    shared = sorted(path.stem for path in MODULES
                    if 'vmail.mailserver.vmail_db' in (_documentation(path).get('extends_documentation_fragment') or []))
    assert shared, 'no module uses the vmail_db doc fragment'
    assert sorted(RUNTIME['action_groups']['accounts']) == shared


def test_module_defaults_group_reaches_the_modules(tmp_path):
    # login_host set only through the group: mail_info refuses plaintext to that host before
    # connecting, and its message names the host, so the default arrived.
    playbook = tmp_path / 'play.yml'
    playbook.write_text(yaml.safe_dump([{
        'hosts': 'localhost',
        'gather_facts': False,
        'module_defaults': {'group/vmail.mailserver.accounts': {'login_host': 'db.example.invalid'}},
        'tasks': [{'name': 'Info', 'vmail.mailserver.mail_info': {}, 'register': 'info', 'ignore_errors': True},
                  {'name': 'Show', 'ansible.builtin.debug': {'var': 'info.msg'}}],
    }]))
    env = dict(os.environ,
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.cache' / 'collections'),
               ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
               ANSIBLE_NOCOLOR='1')
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
         '-e', 'ansible_python_interpreter=%s' % sys.executable, str(playbook)],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'login_host db.example.invalid is not on this host' in result.stdout, result.stdout
