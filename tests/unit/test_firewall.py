# -*- coding: utf-8 -*-
"""The firewall role (issue #21 item 5): its address filters and the ruleset its template renders.

The ruleset is rendered here with Jinja the way the template module renders it (trim_blocks), from the role's
defaults and vars plus the inventory of a case: a single host, a Galera node, a mail node of a cluster. When
``nft`` can check a file on this machine (root, nftables installed) each rendering also passes ``nft -c``; the
Molecule test checks the single-host file on the mail server itself.
"""

import os
import pathlib
import shutil
import subprocess

import jinja2
import jinja2.nativetypes
from jinja2.nativetypes import native_concat
import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.vmail.mailserver.plugins.filter.ip_in_networks import ip_in_networks
from ansible_collections.vmail.mailserver.plugins.filter.ip_networks import ip_networks

ROLE = pathlib.Path(__file__).resolve().parents[2] / 'roles' / 'firewall'


# --- filters ----------------------------------------------------------------------------------------------
def test_networks_are_normalised_and_split_by_family():
    values = ['192.0.2.7/24', '198.51.100.7', '2001:DB8::1', '2001:db8::/32', '192.0.2.0/24']
    assert ip_networks(values) == ['192.0.2.0/24', '198.51.100.7/32', '2001:db8::1/128', '2001:db8::/32']
    assert ip_networks(values, family=4) == ['192.0.2.0/24', '198.51.100.7/32']
    assert ip_networks(values, family=6) == ['2001:db8::1/128', '2001:db8::/32']


def test_collapse_merges_overlaps_for_an_interval_set():
    values = ['10.1.0.0/16', '10.0.0.0/8', '192.0.2.0/25', '192.0.2.128/25', '2001:db8::1', '2001:db8::/32']
    assert ip_networks(values, collapse=True) == ['10.0.0.0/8', '192.0.2.0/24', '2001:db8::/32']


@pytest.mark.parametrize('bad', ['', 'mail.example.com', '192.0.2.0/33', '10.0.0.0/8\n', '10.0.0.1 ', '1.2.3',
                                 'fe80::1%eth0', '2001:db8::/129', '0.0.0.0/0; accept', 7, None, ['10.0.0.1']])
def test_what_is_not_a_network_is_named(bad):
    assert ip_networks(['192.0.2.1', bad], invalid=True) == [bad]
    with pytest.raises(AnsibleFilterError):
        ip_networks(['192.0.2.1', bad])


def test_a_string_instead_of_a_list_is_invalid():
    assert ip_networks('192.0.2.0/24', invalid=True) == ['192.0.2.0/24']
    with pytest.raises(AnsibleFilterError):
        ip_networks('192.0.2.0/24')


@pytest.mark.parametrize('address, networks, inside', [
    ('192.0.2.7', ['192.0.2.0/24'], True),
    ('192.0.2.7', ['0.0.0.0/0'], True),
    ('192.0.2.7', ['::/0'], False),
    ('2001:db8::7', ['::/0'], True),
    ('198.51.100.7', ['192.0.2.0/24', 'not a network'], False),
    ('192.0.2.0/24', ['0.0.0.0/0'], False),        # a network, not one address
    ('mail.example.com', ['0.0.0.0/0'], False),
])
def test_ip_in_networks(address, networks, inside):
    assert ip_in_networks(address, networks) is inside


# --- the ruleset ------------------------------------------------------------------------------------------
def _bool(value):
    return value if isinstance(value, bool) else str(value).strip().lower() in ('true', 'yes', 'on', '1')


def _filters(env):
    env.filters['bool'] = _bool
    env.filters['vmail.mailserver.ip_networks'] = ip_networks


class LazyVars(dict):
    """Variables whose templates are rendered when read, as Ansible does (they refer to each other)."""

    def __init__(self, raw, env):
        super().__init__(raw)
        self.env = env

    def __getitem__(self, key):
        return self._resolve(super().__getitem__(key))

    def _resolve(self, value):
        if isinstance(value, str) and '{{' in value:
            template = self.env.from_string(value)
            return native_concat(template.root_render_func(template.new_context(self, shared=True)))
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value


def role_vars(inventory, hostname='mail.example.com', groups=None):
    """The role's defaults and vars for one host, overridden by *inventory* (Ansible's precedence), resolved."""
    env = jinja2.nativetypes.NativeEnvironment(undefined=jinja2.StrictUndefined)
    _filters(env)
    raw = yaml.safe_load((ROLE / 'defaults' / 'main.yml').read_text())
    raw.update(inventory)
    raw.update(yaml.safe_load((ROLE / 'vars' / 'main.yml').read_text()))
    raw.update({'inventory_hostname': hostname,
                'groups': groups if groups is not None else {'mail_db': [hostname], 'mail_servers': [hostname]}})
    lazy = LazyVars(raw, env)
    return {key: lazy[key] for key in raw}


def render(inventory, **kwargs):
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    _filters(env)
    template = env.from_string((ROLE / 'templates' / 'vmail-firewall.nft.j2').read_text())
    return template.render(ansible_managed='Managed by Ansible', **role_vars(inventory, **kwargs))


def nft_check(text, tmp_path):
    """``nft -c`` of *text* when this machine can check rulesets (root, nftables installed, CAP_NET_ADMIN)."""
    nft = shutil.which('nft') or ('/usr/sbin/nft' if os.path.exists('/usr/sbin/nft') else None)
    if not nft or os.geteuid() != 0:
        return None
    path = tmp_path / 'vmail-firewall.nft'
    path.write_text(text)
    result = subprocess.run([nft, '-c', '-f', str(path)], capture_output=True, text=True, check=False)
    if 'Operation not permitted' in result.stderr:
        return None
    assert result.returncode == 0, result.stderr
    return True


def rule_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith('#')]


def test_single_host_defaults(tmp_path):
    text = render({})
    lines = rule_lines(text)
    # Only its own table, replaced whole: declared, deleted, built again. Never the whole ruleset.
    assert lines[:3] == ['table inet vmail_firewall', 'delete table inet vmail_firewall', 'table inet vmail_firewall {']
    assert 'flush ruleset' not in text and not any('f2b' in line or 'ruleset' in line for line in lines)
    assert 'type filter hook input priority filter; policy drop;' in lines
    assert 'tcp dport { 25, 465, 587, 993, 995, 4190 } accept' in lines
    assert 'ip saddr @admin_ip tcp dport 22 accept' in lines
    assert 'ip6 saddr @admin_ip6 tcp dport 22 accept' in lines
    assert 'elements = { 0.0.0.0/0 }' in lines and 'elements = { ::/0 }' in lines
    assert not any('cluster' in line for line in lines)
    assert lines[-4:] == ['meta l4proto tcp reject with tcp reset', 'reject with icmpx type admin-prohibited', '}', '}']
    nft_check(text, tmp_path)


def test_dovecot_switches_choose_the_mail_ports():
    lines = rule_lines(render({'dovecot_pop3_enabled': False, 'dovecot_managesieve_port': 0}))
    assert 'tcp dport { 25, 465, 587, 993 } accept' in lines
    lines = rule_lines(render({'dovecot_sieve': False}))
    assert 'tcp dport { 25, 465, 587, 993, 995 } accept' in lines
    lines = rule_lines(render({'dovecot_plain_ports_enabled': True, 'firewall_public_tcp_ports': [443, 80, 25]}))
    assert 'tcp dport { 25, 80, 110, 143, 443, 465, 587, 993, 995, 4190 } accept' in lines
    lines = rule_lines(render({'firewall_pop3': False, 'firewall_plain_ports': True}))
    assert 'tcp dport { 25, 143, 465, 587, 993, 4190 } accept' in lines


def test_admin_networks_and_ssh_port():
    lines = rule_lines(render({'firewall_admin_networks': ['192.0.2.0/24', '192.0.2.7', '2001:db8::/48'],
                               'firewall_ssh_port': 2222}))
    assert 'elements = { 192.0.2.0/24 }' in lines and 'elements = { 2001:db8::/48 }' in lines
    assert 'ip saddr @admin_ip tcp dport 2222 accept' in lines
    assert 'ip6 saddr @admin_ip6 tcp dport 2222 accept' in lines
    lines = rule_lines(render({'firewall_admin_networks': ['192.0.2.0/24']}))
    assert 'ip saddr @admin_ip tcp dport 22 accept' in lines
    assert not any('admin_ip6' in line for line in lines)
    lines = rule_lines(render({'firewall_ssh_port': 0}))
    assert not any('@admin' in line or 'set admin' in line or 'dport 22 ' in line for line in lines)


CLUSTER = {'firewall_cluster_nodes': ['172.30.50.11', '172.30.50.12', '172.30.50.13', '172.30.50.21',
                                      '172.30.50.22', 'fd00:50::21']}


def test_galera_node_opens_the_cluster_ports_to_the_nodes_only(tmp_path):
    text = render(CLUSTER, hostname='db1', groups={'mail_db': ['db1', 'db2', 'db3'], 'mail_servers': ['mail1', 'mail2']})
    lines = rule_lines(text)
    assert 'elements = { 172.30.50.11/32, 172.30.50.12/31, 172.30.50.21/32, 172.30.50.22/32 }' in lines
    assert 'ip saddr @cluster_ip tcp dport { 24, 110, 143, 3306, 4444, 4567, 4568 } accept' in lines
    assert 'ip6 saddr @cluster_ip6 tcp dport { 24, 110, 143, 3306, 4444, 4567, 4568 } accept' in lines
    # A database node serves no mail to the public.
    assert not any(line.startswith('tcp dport') for line in lines)
    nft_check(text, tmp_path)


def test_mail_node_of_a_cluster(tmp_path):
    text = render({**CLUSTER, 'firewall_extra_rules': ['ip saddr 192.0.2.10 tcp dport 9100 accept']},
                  hostname='mail1', groups={'mail_db': ['db1'], 'mail_servers': ['mail1', 'mail2']})
    lines = rule_lines(text)
    assert 'tcp dport { 25, 465, 587, 993, 995, 4190 } accept' in lines
    assert 'ip saddr @cluster_ip tcp dport { 24, 110, 143, 3306, 4444, 4567, 4568 } accept' in lines
    # the extra rule comes before the final reject
    assert lines.index('ip saddr 192.0.2.10 tcp dport 9100 accept') < lines.index('meta l4proto tcp reject with tcp reset')
    nft_check(text, tmp_path)
