# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
name: ip_networks
short_description: Check, normalise and split lists of IPv4 and IPv6 addresses and networks
version_added: "0.5.0"
description:
  - Reads each string of a list as an IPv4 or IPv6 address or network in CIDR notation with Python's C(ipaddress)
    (no C(netaddr) needed on the controller, unlike C(ansible.utils.ipaddr)). An address without a prefix
    length is the network of that one address (C(/32) or C(/128)); host bits after the prefix are cleared
    (C(192.0.2.7/24) is C(192.0.2.0/24)).
  - With O(invalid=true) the filter returns the entries that are not addresses or networks (not strings, empty,
    with spaces or line breaks, a zone index, a host name), so a role can name them in an assert; otherwise it
    returns the normalised networks, optionally only those of one address family, in their first order without
    duplicates (or merged with O(collapse=true)). An invalid entry then raises an error.
options:
  _input:
    description: Addresses and networks, for example C(192.0.2.0/24), C(2001:db8::/32) or C(198.51.100.7).
    type: list
    elements: str
    required: true
  family:
    description: Only the networks of this address family (V(4) or V(6)); V(0) keeps both.
    type: int
    default: 0
  invalid:
    description: Return the invalid entries instead of the networks.
    type: bool
    default: false
  collapse:
    description:
      - Merge overlapping and adjacent networks into the fewest networks that cover them, sorted (IPv4 first),
        as an nftables interval set needs (it refuses overlapping elements).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Refuse what is not an address or network
  ansible.builtin.assert:
    that: firewall_admin_networks | vmail.mailserver.ip_networks(invalid=true) | length == 0

- name: The IPv6 networks only (for an nftables ip6 set)
  ansible.builtin.debug:
    msg: "{{ ['192.0.2.7/24', '2001:db8::1'] | vmail.mailserver.ip_networks(family=6) }}"
  # ['2001:db8::1/128']
'''

RETURN = r'''
_value:
  description: The normalised networks (C(address/prefix)), or with O(invalid=true) the entries that are not.
  type: list
  elements: str
'''

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.six import string_types

# Only hex digits, dots, colons and one slash with a prefix length: no zone index (%eth0), no space, no name.
SHAPE = re.compile(r'\A[0-9A-Fa-f.:]+(/[0-9]{1,3})?\Z')


def _network(value):
    """The ip_network of *value*, or None when it is not an address or network."""
    if not isinstance(value, string_types):
        return None
    text = to_text(value)
    if not SHAPE.match(text):
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def ip_networks(values, family=0, invalid=False, collapse=False):
    """Normalised networks of *values* (of one *family* when 4 or 6), or with *invalid* the bad entries;
    with *collapse* merged into the fewest covering networks."""
    if isinstance(values, string_types) or not isinstance(values, (list, tuple)):
        if invalid:
            return [values]
        raise AnsibleFilterError('ip_networks expects a list of addresses or networks, got %r' % (values,))
    if int(family) not in (0, 4, 6):
        raise AnsibleFilterError('ip_networks: family is 0, 4 or 6, not %r' % (family,))
    bad = [value for value in values if _network(value) is None]
    if invalid:
        return bad
    if bad:
        raise AnsibleFilterError('not an IPv4 or IPv6 address or network: %s' % ', '.join(repr(b) for b in bad))
    out = []
    for value in values:
        net = _network(value)
        if int(family) in (0, net.version) and str(net) not in out:
            out.append(str(net))
    if collapse:
        nets = [ipaddress.ip_network(n) for n in out]
        out = [str(n) for version in (4, 6)
               for n in ipaddress.collapse_addresses([x for x in nets if x.version == version])]
    return out


class FilterModule(object):
    """vmail.mailserver filters."""

    def filters(self):
        return {'ip_networks': ip_networks}
