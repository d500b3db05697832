# -*- coding: utf-8 -*-
"""inventories/example works the first time: its vault copied as the README says, Ansible reads it
without warnings, every variable the example refers to is defined, no certificate path that a fresh
host lacks, and the playbooks pass --syntax-check with it."""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jinja2
import jinja2.meta
import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / 'inventories' / 'example'
HOST = 'mail1.example.com'
VAULT = pathlib.Path('group_vars', 'all', 'vault.yml')
BIN = os.path.dirname(sys.executable)


def _env():
    return dict(os.environ,
                ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.cache' / 'collections'),
                ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                ANSIBLE_NOCOLOR='1')


def _run(*args, cwd):
    return subprocess.run([os.path.join(BIN, args[0])] + list(args[1:]), cwd=str(cwd), env=_env(),
                          capture_output=True, text=True, check=False, timeout=300)


def _inventory(tmp_path, with_vault=True):
    """A copy of the example; with_vault: its vault.yml made from vault.yml.example as the README says."""
    inventory = tmp_path / 'example'
    shutil.copytree(str(EXAMPLE), str(inventory), ignore=shutil.ignore_patterns('vault.yml'))
    if with_vault:
        shutil.copy(str(inventory / VAULT.with_name('vault.yml.example')), str(inventory / VAULT))
    return inventory


def _hostvars(inventory, source):
    result = _run('ansible-inventory', '-i', str(source), '--list', cwd=inventory)
    assert result.returncode == 0, result.stderr
    assert 'WARNING' not in result.stderr and 'ERROR' not in result.stderr, result.stderr
    return json.loads(result.stdout)['_meta']['hostvars'][HOST]


def _referenced(value):
    """The variable names the Jinja templates in ``value`` (nested data) use."""
    names = set()
    if isinstance(value, dict):
        for item in value.values():
            names |= _referenced(item)
    elif isinstance(value, list):
        for item in value:
            names |= _referenced(item)
    elif isinstance(value, str) and '{' in value:
        names |= jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(value))
    return names


@pytest.mark.parametrize('source', ['hosts.yml', '.'], ids=['hosts file', 'directory'])
def test_inventory_reads_without_warnings_and_defines_what_it_uses(tmp_path, source):
    inventory = _inventory(tmp_path)
    hostvars = _hostvars(inventory, inventory / source)
    used = _referenced(hostvars)
    assert 'vault_alice_password' in used
    assert sorted(used - set(hostvars)) == []


def test_vault_example_itself_is_not_read(tmp_path):
    # The .example file is not a vars file (nor an inventory source): without the copy the
    # vault variables are missing, which is why the README says to copy it.
    inventory = _inventory(tmp_path, with_vault=False)
    hostvars = _hostvars(inventory, inventory)
    assert 'vault_alice_password' not in hostvars


def test_documented_copy_target_is_where_ansible_reads_it():
    target = 'inventories/example/%s' % VAULT.as_posix()
    example = (EXAMPLE / VAULT.with_name('vault.yml.example')).read_text()
    assert 'cp inventories/example/group_vars/all/vault.yml.example %s' % target in example
    assert 'ansible-vault encrypt %s' % target in example
    readme = (ROOT / 'README.md').read_text()
    assert target in readme
    assert not re.search(r'group_vars/vault\.yml|inventories/example/vault\.yml', readme + example)


def test_no_certificate_paths_a_fresh_host_lacks(tmp_path):
    # Left unset, the postfix and dovecot roles use the tls role's self-signed pair.
    inventory = _inventory(tmp_path)
    hostvars = _hostvars(inventory, inventory / 'hosts.yml')
    for name, value in hostvars.items():
        if name.endswith(('_cert_file', '_key_file')):
            assert not value, name


def test_every_vault_variable_of_the_example_is_used_or_optional():
    vault = yaml.safe_load((EXAMPLE / VAULT.with_name('vault.yml.example')).read_text())
    main = yaml.safe_load((EXAMPLE / 'group_vars' / 'all' / 'main.yml').read_text())
    assert set(vault) <= _referenced(main)


@pytest.mark.parametrize('playbook', ['site.yml', 'accounts.yml'])
def test_playbooks_syntax_check_with_the_example(tmp_path, playbook):
    inventory = _inventory(tmp_path)
    result = _run('ansible-playbook', '--syntax-check', '-i', str(inventory / 'hosts.yml'),
                  str(ROOT / 'playbooks' / playbook), cwd=inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'WARNING' not in result.stderr, result.stderr
