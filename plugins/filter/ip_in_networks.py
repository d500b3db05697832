# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: ip_in_networks
short_description: Whether an IP address lies in one of a list of networks
version_added: "0.5.0"
description:
  - True when the input, one IPv4 or IPv6 address, lies in one of the networks of O(networks) (CIDR notation or
    single addresses, read like the filter C(vmail.mailserver.ip_networks) reads them with Python's C(ipaddress)).
  - False for an input that is not one address (a network, a name, an empty string); invalid entries of
    O(networks) never match.
options:
  _input:
    description: The address, for example C(198.51.100.7) or C(2001:db8::7).
    type: str
    required: true
  networks:
    description: Networks and addresses.
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: Refuse a firewall that would cut the SSH connection running the play
  ansible.builtin.assert:
    that: ssh_client_address | vmail.mailserver.ip_in_networks(firewall_admin_networks)
'''

RETURN = r'''
_value:
  description: Whether the address is in one of the networks.
  type: bool
'''

from ansible_collections.vmail.mailserver.plugins.filter.ip_networks import _network


def ip_in_networks(address, networks):
    """True when the address *address* lies in one of *networks* (invalid entries never match)."""
    addr = _network(address)
    if addr is None or addr.num_addresses != 1:
        return False
    for value in networks or []:
        net = _network(value)
        if net is not None and net.version == addr.version and addr.network_address in net:
            return True
    return False


class FilterModule(object):
    """vmail.mailserver filters."""

    def filters(self):
        return {'ip_in_networks': ip_in_networks}
