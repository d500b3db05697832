# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Normalization and validation of mail domain names and addresses.

Domains: lowercased, one trailing dot removed, internationalized names
converted to their A-label (punycode) form with the ``idna`` package
(IDNA 2008, UTS #46 mapping), then checked as an RFC 1123 host name
(labels of 1-63 octets of letters, digits and hyphens, not starting or
ending with a hyphen, at least two labels, total <= 253 octets).

Addresses: parsed with the standard library's RFC 5322 parser
(``email.headerregistry.Address``); only a dot-atom local part is accepted
(no quoted strings, comments or white space), the local part must be ASCII
and at most 64 octets (RFC 5321 section 4.5.3.1.1) and is lowercased unless
the caller asks to preserve its case; the domain part is normalized as above.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import re

try:
    import idna
    HAS_IDNA = True
    IDNA_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    HAS_IDNA = False
    IDNA_IMPORT_ERROR = exc

from email.errors import HeaderParseError, MessageDefect
from email.headerregistry import Address

MAX_DOMAIN_OCTETS = 253
MAX_LABEL_OCTETS = 63
MAX_LOCAL_PART_OCTETS = 64
MAX_ADDRESS_OCTETS = 254

_LABEL_RE = re.compile(r'^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$')
# RFC 5322 atext plus the dot of a dot-atom
_DOT_ATOM_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


class AddressError(ValueError):
    """Raised with a human readable message when a name or address is invalid."""


def _shorten(value, limit=60):
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        return text[:limit] + '...'
    return text


def normalize_domain(name, max_length=None):
    """Return the canonical (lowercase, A-label) form of the domain ``name``.

    ``max_length`` is the width of the database column the name goes into;
    a longer result raises too. Raises :class:`AddressError` on invalid input.
    Results are cached (large account sets repeat the same few domains).
    """
    if not isinstance(name, str):
        raise AddressError('domain name must be a non-empty string')
    return check_width(_normalize_domain(name), max_length, 'domain name')


def normalize_host(name, max_length=None):
    """Return the canonical (lowercase, A-label) form of the host name ``name`` of a mail node.

    The rules of :func:`normalize_domain`, except that one label is enough
    (``mail1`` resolved through ``/etc/hosts`` or a search domain). IP
    addresses are refused (the Postfix transport and Dovecot proxy need the
    name). Raises :class:`AddressError` on invalid input.
    """
    if not isinstance(name, str):
        raise AddressError('host name must be a non-empty string')
    return check_width(_normalize_domain(name, 'host name', 1), max_length, 'host name')


@functools.lru_cache(maxsize=4096)
def _normalize_domain(name, what='domain name', min_labels=2):
    if not name.strip():
        raise AddressError('%s must be a non-empty string' % what)
    value = name.strip()
    if value != name:
        raise AddressError(what + ' %r contains leading or trailing white space' % _shorten(name))
    if value.endswith('.'):
        value = value[:-1]
    if not value or '..' in value or value.startswith('.'):
        raise AddressError(what + ' %r has an empty label' % _shorten(name))
    if value.startswith('[') or value.endswith(']'):
        raise AddressError('%s: address literals such as %r are not supported; use a %s' % (what, _shorten(name), what))
    if any(ord(c) > 127 for c in value):
        if not HAS_IDNA:
            raise AddressError(what + ' %r is internationalized but the Python package idna is missing' % _shorten(name))
        try:
            value = idna.encode(value, uts46=True).decode('ascii')
        except (idna.IDNAError, UnicodeError) as exc:
            raise AddressError(what + ' %r is not a valid internationalized domain name: %s' % (_shorten(name), exc))
    value = value.lower()
    if len(value) > MAX_DOMAIN_OCTETS:
        raise AddressError(what + ' %r is %d octets long; RFC 1123 allows at most %d'
                           % (_shorten(name), len(value), MAX_DOMAIN_OCTETS))
    labels = value.split('.')
    for label in labels:
        if len(label) > MAX_LABEL_OCTETS:
            raise AddressError(what + ' %r has a label of %d octets; at most %d are allowed (RFC 1035)'
                               % (_shorten(name), len(label), MAX_LABEL_OCTETS))
        if not _LABEL_RE.match(label):
            raise AddressError(what + ' %r is not a valid host name: label %r may only contain letters, digits '
                               'and hyphens and must not start or end with a hyphen (RFC 1123)'
                               % (_shorten(name), _shorten(label)))
    if len(labels) < min_labels:
        raise AddressError(what + ' %r must have at least two labels (for example example.com)' % _shorten(name))
    if labels[-1].isdigit():
        raise AddressError(what + ' %r has an all-numeric top-level label%s'
                           % (_shorten(name), '' if min_labels > 1 else ' (IP addresses are not supported: use a host name)'))
    if HAS_IDNA and any(label.startswith('xn--') for label in labels):
        try:
            idna.decode(value)
        except (idna.IDNAError, UnicodeError) as exc:
            raise AddressError(what + ' %r contains an invalid A-label: %s' % (_shorten(name), exc))
    return value


def check_width(value, max_length, what='address'):
    """Return the normalized ``value`` or raise :class:`AddressError` when it is longer than ``max_length``.

    ``max_length`` is the width of the database column (None: no limit);
    ``what`` names the value in the message (``address``, ``domain name``).
    """
    if max_length is not None and len(value) > max_length:
        raise AddressError('%s %r is %d characters long; the database column holds at most %d'
                           % (what, _shorten(value), len(value), max_length))
    return value


def normalize_local_part(local, lowercase=True):
    """Validate an RFC 5322 dot-atom local part; lowercase it unless told not to."""
    if not local:
        raise AddressError('local part must not be empty')
    if any(ord(c) > 127 for c in local):
        raise AddressError('local part %r contains non-ASCII characters; internationalized local parts '
                           '(SMTPUTF8, RFC 6531) are not supported' % _shorten(local))
    if not _DOT_ATOM_RE.match(local):
        raise AddressError('local part %r is not a valid dot-atom (RFC 5322 section 3.4.1)' % _shorten(local))
    if len(local) > MAX_LOCAL_PART_OCTETS:
        raise AddressError('local part %r is %d octets long; RFC 5321 allows at most %d'
                           % (_shorten(local), len(local), MAX_LOCAL_PART_OCTETS))
    return local.lower() if lowercase else local


def split_address(address):
    """Split ``address`` into (local part, domain) using the RFC 5322 parser of the standard library."""
    if not isinstance(address, str) or not address:
        raise AddressError('address must be a non-empty string')
    if address != address.strip() or any(c in address for c in '\r\n\t\0'):
        raise AddressError('address %r contains white space or control characters' % _shorten(address))
    if address.count('@') != 1:
        raise AddressError('address %r must contain exactly one "@"' % _shorten(address))
    local, domain = address.split('@')
    if _DOT_ATOM_RE.match(local) and _DOT_ATOM_RE.match(domain):
        # dot-atom "@" dot-atom is an addr-spec by the RFC 5322 grammar (section 3.4.1), and the
        # standard library parser returns exactly these two parts for it (a unit test compares
        # both); skipping the parser for this common plain form saves about 0.1 ms per address.
        return local, domain
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, TypeError, IndexError, HeaderParseError, MessageDefect) as exc:
        raise AddressError('%r is not a valid e-mail address: %s' % (_shorten(address), exc))
    local, domain = parsed.username, parsed.domain
    # The parser tolerates comments, folding white space and quoted strings; accept only the plain form.
    if '%s@%s' % (local, domain) != address or parsed.addr_spec.startswith('"'):
        raise AddressError('%r is not a plain e-mail address (quoted local parts, comments and white space '
                           'are not supported)' % _shorten(address))
    return local, domain


def normalize_address(address, lowercase_local_part=True, max_length=None, allow_catchall=False):
    """Return the canonical form of ``address``.

    The domain part is normalized by :func:`normalize_domain`; the local part
    is lowercased unless ``lowercase_local_part`` is false. With
    ``allow_catchall`` the form ``@domain`` (a catch-all alias source in the
    Postfix virtual alias table, see postfix virtual(5)) is accepted too.
    ``max_length`` is the width of the database column.
    """
    if allow_catchall and isinstance(address, str) and address.startswith('@'):
        result = '@' + normalize_domain(address[1:])
    else:
        local, domain = split_address(address)
        result = '%s@%s' % (normalize_local_part(local, lowercase_local_part), normalize_domain(domain))
    if len(result) > MAX_ADDRESS_OCTETS:
        raise AddressError('address %r is %d octets long; RFC 5321 allows at most %d'
                           % (_shorten(result), len(result), MAX_ADDRESS_OCTETS))
    return check_width(result, max_length)


def domain_of(address):
    """Return the domain part of a normalized address (or of ``@domain``)."""
    return address.rsplit('@', 1)[1]
