# -*- coding: utf-8 -*-
"""requirements.yml and galaxy.yml's dependencies name the same collections, and exactly the ones the
roles and playbooks call (scripts/test-install.sh proves they resolve in a fresh install)."""

import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / 'galaxy.yml').read_text())
# A module, filter or action group by FQCN: namespace.collection.name (group/ns.coll.all too).
FQCN = re.compile(r'(?<![\w.])((?:community|ansible)\.[a-z_]+)\.[a-z_0-9]+\b')
# Collections that come with ansible-core.
BUILTIN = {'ansible.builtin'}


def _requirements():
    entries = yaml.safe_load((ROOT / 'requirements.yml').read_text())['collections']
    return {entry['name']: entry.get('version', '*') for entry in entries}


def _used():
    used = {}
    for path in sorted(list((ROOT / 'roles').rglob('*.yml')) + list((ROOT / 'roles').rglob('*.j2'))
                       + list((ROOT / 'playbooks').glob('*.yml'))):
        for line in path.read_text().splitlines():
            if line.lstrip().startswith('#'):
                continue
            for match in FQCN.finditer(line):
                used.setdefault(match.group(1), path.relative_to(ROOT).as_posix())
    return {name: where for name, where in used.items() if name not in BUILTIN}


def test_requirements_are_galaxy_dependencies():
    assert _requirements() == GALAXY['dependencies']


def test_every_collection_used_is_a_dependency():
    used = _used()
    assert 'community.mysql' in used  # the pattern still finds what the roles call
    missing = {name: where for name, where in used.items() if name not in GALAXY['dependencies']}
    assert missing == {}


def test_every_dependency_is_used():
    assert sorted(set(GALAXY['dependencies']) - set(_used())) == []


def test_readme_installs_the_requirements():
    readme = (ROOT / 'README.md').read_text()
    assert '## Deploy-only controller' in readme
    assert 'ansible-galaxy collection install -r requirements.yml' in readme
