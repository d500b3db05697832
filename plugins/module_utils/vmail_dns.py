# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The DNS records a mail domain should publish, computed from options (no I/O).

:func:`dns_records` returns, for one domain, the MX records, the SPF policy
(RFC 7208), one DKIM key record per selector (RFC 6376, RFC 8463 for
Ed25519), the DMARC policy (RFC 7489) and, when asked for, the MTA-STS
(RFC 8461) and TLS-RPT (RFC 8460) records and the autoconfiguration records
(a CNAME for ``autoconfig.<domain>`` and the SRV records of RFC 6186 and
RFC 8314). :func:`dns_rrsets` groups them into RRsets (all records of one
name and type), the unit that DNS update APIs replace.

Names and host names are absolute, lowercase A-labels without the trailing
dot (normalized like the domains of the account modules, see
:mod:`vmail_address`). Every record is a dict::

    {type, name, value, rdata[, priority][, weight, port, target][, value_chunks]}

``value`` is the plain value (for TXT the text, for MX and CNAME the host
name, for SRV "priority weight port target"); ``rdata`` is the same in zone
file presentation form (host names with a trailing dot, TXT text as quoted
character-strings of at most 255 bytes each), as ``nsupdate`` and zone files
take it; TXT records also carry ``value_chunks``, the text split into those
character-strings (RFC 1035 section 3.3.14, RFC 7208 section 3.3).

Bad options raise :class:`DnsError` (a ``ValueError``) naming the option;
key material is never quoted in a message.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import hashlib
import ipaddress
import re

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_address import (
    AddressError, normalize_address, normalize_domain)

DMARC_POLICIES = ('none', 'quarantine', 'reject')
DEFAULT_DMARC_POLICY = 'quarantine'
SPF_ALL = ('-all', '~all', '?all')
DEFAULT_SPF_ALL = '-all'
DKIM_ALGORITHMS = ('rsa', 'ed25519')
MTA_STS_MODES = ('enforce', 'testing', 'none')
DEFAULT_MTA_STS_MODE = 'testing'
DEFAULT_MTA_STS_MAX_AGE = 604800            # one week
MAX_MTA_STS_MAX_AGE = 31557600              # RFC 8461 section 3.2
MX_PRIORITY_STEP = 10
MAX_CHARACTER_STRING = 255                  # RFC 1035 section 3.3
SPF_MAX_LOOKUPS = 10                        # RFC 7208 section 4.6.4
SRV_SERVICES = (('_submissions._tcp', 465), ('_imaps._tcp', 993), ('_submission._tcp', 587))
SRV_POP3S = ('_pop3s._tcp', 995)
ALIGNMENT = {'relaxed': 'r', 'strict': 's'}

# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE { SEQUENCE { OID 1.3.101.112 } BIT STRING }
_ED25519_SPKI_PREFIX = bytes(bytearray([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]))
_ED25519_KEY_BYTES = 32
_RSA_MIN_DER_BYTES = 140                    # the DER of a 1024-bit key (RFC 8301: at least 1024 bits)
_BASE64_RE = re.compile(r'^[A-Za-z0-9+/]+={0,2}$')
_PEM_RE = re.compile(r'-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----', re.S)
_SELECTOR_LABEL_RE = re.compile(r'^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')
_STS_ID_RE = re.compile(r'^[A-Za-z0-9]{1,32}$')
_SPF_TERM_RE = re.compile(r'^([+?~-]?)(a|mx|ptr|exists|include|ip4|ip6|all)([:/].*)?$', re.I)
_SPF_MODIFIER_RE = re.compile(r'^(redirect|exp)=(\S+)$', re.I)
_SPF_LOOKUP_TERMS = ('a', 'mx', 'ptr', 'exists', 'include', 'redirect')


class DnsError(ValueError):
    """Raised with a message naming the option when DNS options are invalid."""


def dns_argument_spec():
    """The argument spec of the ``dns`` option of mail_domain and mail_info (one definition for both)."""
    return dict(type='dict', options=dict(
        mx=dict(type='list', elements='raw', required=True),
        spf=dict(type='dict', options=dict(
            mechanisms=dict(type='list', elements='str', default=[]),
            all=dict(type='str', default=DEFAULT_SPF_ALL, choices=list(SPF_ALL)),
            record=dict(type='str'),
        )),
        dkim_keys=dict(type='list', elements='dict', default=[], no_log=False, options=dict(
            selector=dict(type='str', required=True),
            algorithm=dict(type='str', choices=list(DKIM_ALGORITHMS)),
            public_key=dict(type='str', required=True, no_log=False),
            domain=dict(type='str'),
        )),
        dmarc=dict(type='dict', options=dict(
            policy=dict(type='str', default=DEFAULT_DMARC_POLICY, choices=list(DMARC_POLICIES)),
            subdomain_policy=dict(type='str', choices=list(DMARC_POLICIES)),
            rua=dict(type='list', elements='str', default=[]),
            pct=dict(type='int'),
            adkim=dict(type='str', choices=sorted(ALIGNMENT)),
            aspf=dict(type='str', choices=sorted(ALIGNMENT)),
        )),
        mta_sts=dict(type='dict', options=dict(
            enabled=dict(type='bool', default=True),
            mode=dict(type='str', default=DEFAULT_MTA_STS_MODE, choices=list(MTA_STS_MODES)),
            max_age=dict(type='int', default=DEFAULT_MTA_STS_MAX_AGE),
            mx=dict(type='list', elements='str'),
            id=dict(type='str'),
        )),
        tls_rpt=dict(type='dict', options=dict(
            rua=dict(type='list', elements='str', default=[]),
        )),
        autoconfig=dict(type='dict', options=dict(
            enabled=dict(type='bool', default=True),
            host=dict(type='str'),
            pop3=dict(type='bool', default=False),
        )),
    ))


# ------------------------------------------------------------------ helpers

def _host(name, what):
    """Normalize the host name ``name`` (option ``what``); an IP address or invalid name raises."""
    if isinstance(name, str):
        try:
            ipaddress.ip_address(name.strip('[]'))
        except ValueError:
            pass
        else:
            raise DnsError('%s: %r is an IP address; a host name is required (RFC 5321 section 5.1)' % (what, name))
    try:
        return normalize_domain(name)
    except AddressError as exc:
        raise DnsError('%s: %s' % (what, exc))


def _section(options, key):
    """Return the sub-dict ``options[key]`` or {} when it is not given."""
    value = (options or {}).get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DnsError('dns.%s must be a dictionary' % key)
    return value


def _enabled(options, key):
    """True when the optional feature ``key`` (mta_sts, autoconfig) is given and not ``enabled: false``."""
    return (options or {}).get(key) is not None and bool(_opt(_section(options, key), 'enabled', True))


def _opt(section, key, default):
    value = section.get(key)
    return default if value is None else value


def _choice(value, choices, what):
    if value not in choices:
        raise DnsError('%s must be one of %s, got %r' % (what, ', '.join(choices), value))
    return value


def _check_txt(text, what):
    """A TXT value must be printable ASCII without quotes or backslashes (so every consumer can quote it)."""
    if not text or any(ord(c) < 0x20 or ord(c) > 0x7e or c in '"\\' for c in text):
        raise DnsError('%s must be non-empty printable ASCII without double quotes or backslashes' % what)
    return text


def chunks(text, size=MAX_CHARACTER_STRING):
    """Split ``text`` (ASCII) into strings of at most ``size`` bytes, the DNS character-strings of a TXT record."""
    return [text[i:i + size] for i in range(0, len(text), size)] or ['']


def _txt(name, text):
    parts = chunks(text)
    return dict(type='TXT', name=name, value=text, value_chunks=parts,
                rdata=' '.join('"%s"' % part for part in parts))


def _mailto(address, what):
    """``mailto:<normalized address>`` for ``address`` given with or without the ``mailto:`` scheme."""
    if not isinstance(address, str):
        raise DnsError('%s: %r is not an e-mail address' % (what, address))
    plain = address[len('mailto:'):] if address.lower().startswith('mailto:') else address
    try:
        return 'mailto:' + normalize_address(plain)
    except AddressError as exc:
        raise DnsError('%s: %s' % (what, exc))


def _report_uri(uri, what):
    """A TLS-RPT ``rua`` URI: ``https://...`` as given, otherwise an address as ``mailto:``."""
    if isinstance(uri, str) and uri.lower().startswith('https://'):
        if len(uri) <= len('https://') or any(c in uri for c in ' ,;!"\\') or not _check_ascii(uri):
            raise DnsError('%s: %r is not a valid https URI for reports' % (what, uri))
        return uri
    return _mailto(uri, what)


def _check_ascii(text):
    return all(0x20 < ord(c) < 0x7f for c in text)


# ---------------------------------------------------------------- records

def _mx_hosts(mx, domain):
    """Return [(priority, host)] sorted by priority then host from the ``mx`` option."""
    if not isinstance(mx, list) or not mx:
        raise DnsError('dns.mx must list at least one mail exchanger host name for %s' % domain)
    out, seen = [], set()
    for index, entry in enumerate(mx):
        what = 'dns.mx[%d]' % index
        priority = MX_PRIORITY_STEP * (index + 1)
        if isinstance(entry, dict):
            unknown = sorted(set(entry) - set(('host', 'priority')))
            if unknown:
                raise DnsError('%s: unknown keys %s (allowed: host, priority)' % (what, ', '.join(unknown)))
            if 'host' not in entry:
                raise DnsError('%s: host is required' % what)
            if entry.get('priority') is not None:
                priority = entry['priority']
                if isinstance(priority, str) and priority.isdigit():
                    priority = int(priority)
                if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 65535:
                    raise DnsError('%s: priority must be an integer from 0 to 65535, got %r' % (what, priority))
            entry = entry['host']
        host = _host(entry, what)
        if host in seen:
            raise DnsError('%s: %s is listed twice' % (what, host))
        seen.add(host)
        out.append((priority, host))
    return sorted(out)


def _spf_value(spf, domain):
    if spf.get('record') is not None:
        record = _check_txt(spf['record'], 'dns.spf.record')
        if not re.match(r'^v=spf1( |$)', record):
            raise DnsError('dns.spf.record must start with "v=spf1" (RFC 7208 section 4.5)')
        terms = record.split()[1:]
    else:
        terms = ['mx'] + list(spf.get('mechanisms') or [])
        for index, term in enumerate(terms[1:]):
            _spf_term(term, 'dns.spf.mechanisms[%d]' % index)
        terms.append(_choice(_opt(spf, 'all', DEFAULT_SPF_ALL), SPF_ALL, 'dns.spf.all'))
        record = ' '.join(['v=spf1'] + terms)
    lookups = sum(1 for t in terms if re.sub(r'^[+?~-]', '', t).split(':')[0].split('/')[0].split('=')[0].lower()
                  in _SPF_LOOKUP_TERMS)
    if lookups > SPF_MAX_LOOKUPS:
        raise DnsError('the SPF record of %s needs %d DNS lookups; RFC 7208 section 4.6.4 allows at most %d'
                       % (domain, lookups, SPF_MAX_LOOKUPS))
    return record


def _spf_term(term, what):
    """Check one extra SPF mechanism or modifier (RFC 7208 section 5 and 6)."""
    if not isinstance(term, str) or not term or not _check_ascii(term):
        raise DnsError('%s: %r is not an SPF mechanism' % (what, term))
    if _SPF_MODIFIER_RE.match(term):
        return
    match = _SPF_TERM_RE.match(term)
    if not match:
        raise DnsError('%s: %r is not an SPF mechanism (a, mx, ptr, exists, include, ip4, ip6) or modifier '
                       '(redirect=, exp=)' % (what, term))
    name, arg = match.group(2).lower(), match.group(3) or ''
    if name == 'all':
        raise DnsError('%s: set the final "all" with dns.spf.all, not as a mechanism' % what)
    if name in ('include', 'exists') and (not arg.startswith(':') or len(arg) < 2):
        raise DnsError('%s: %s needs a domain, as in %s:example.net' % (what, name, name))
    if name in ('ip4', 'ip6'):
        try:
            network = ipaddress.ip_network(arg[1:] if arg.startswith(':') else '', strict=False)
        except ValueError:
            raise DnsError('%s: %r is not a valid %s network' % (what, term, name))
        if network.version != int(name[-1]):
            raise DnsError('%s: %r is not an IPv%s address' % (what, term, name[-1]))


def _selector(selector, what):
    if not isinstance(selector, str) or not selector:
        raise DnsError('%s: selector must be a non-empty string' % what)
    labels = selector.split('.')
    if len(selector) > 63 or not all(_SELECTOR_LABEL_RE.match(label) for label in labels):
        raise DnsError('%s: selector %r must be one or more DNS labels of letters, digits and hyphens '
                       '(RFC 6376 section 3.1)' % (what, selector))
    return selector.lower()


def _key_text(text, what):
    """Return (base64 body, k= tag or None) from PEM, bare base64 or a DKIM record text such as rspamd prints."""
    if not isinstance(text, str) or not text.strip():
        raise DnsError('%s: public_key must be a non-empty string' % what)
    if 'PRIVATE KEY' in text:
        raise DnsError('%s: public_key contains a private key; give only the public key' % what)
    tag = None
    pem = _PEM_RE.search(text)
    if pem:
        if pem.group(1) not in ('PUBLIC KEY', 'RSA PUBLIC KEY'):
            raise DnsError('%s: public_key is a PEM %r block; a PUBLIC KEY is required' % (what, pem.group(1)))
        body = pem.group(2)
    elif 'p=' in text:
        # the TXT record as `rspamadm dkim_keygen` or opendkim-genkey print it: quoted strings, tags
        quoted = re.findall(r'"([^"]*)"', text)
        record = ''.join(quoted) if quoted else text
        tags = {}
        for part in record.split(';'):
            if '=' in part:
                key, value = part.split('=', 1)
                tags[key.strip().lower()] = value
        if 'p' not in tags:
            raise DnsError('%s: public_key has no p= tag' % what)
        body, tag = tags['p'], (tags.get('k') or '').strip().lower() or None
    else:
        body = text
    body = re.sub(r'\s+', '', body)
    if not body:
        raise DnsError('%s: public_key is empty (an empty p= revokes a key, RFC 6376 section 3.6.1)' % what)
    if not _BASE64_RE.match(body) or len(body) % 4:
        raise DnsError('%s: public_key is not valid base64' % what)
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise DnsError('%s: public_key is not valid base64' % what)
    return raw, tag


def _dkim_value(key, index):
    what = 'dns.dkim_keys[%d]' % index
    if not isinstance(key, dict):
        raise DnsError('%s must be a dictionary with selector and public_key' % what)
    selector = _selector(key.get('selector'), what)
    raw, tag = _key_text(key.get('public_key'), what)
    spki_ed25519 = len(raw) == len(_ED25519_SPKI_PREFIX) + _ED25519_KEY_BYTES and raw.startswith(_ED25519_SPKI_PREFIX)
    algorithm = key.get('algorithm') or tag or ('ed25519' if spki_ed25519 else 'rsa')
    _choice(algorithm, DKIM_ALGORITHMS, '%s: algorithm' % what)
    if tag and tag != algorithm:
        raise DnsError('%s: algorithm is %s but the key text says k=%s' % (what, algorithm, tag))
    if algorithm == 'ed25519':
        if spki_ed25519:
            raw = raw[len(_ED25519_SPKI_PREFIX):]      # PEM/DER form; RFC 8463 publishes the bare 32 bytes
        if len(raw) != _ED25519_KEY_BYTES:
            raise DnsError('%s: an Ed25519 public key is %d bytes, this one is %d (RFC 8463 section 4.2)'
                           % (what, _ED25519_KEY_BYTES, len(raw)))
    else:
        if spki_ed25519:
            raise DnsError('%s: public_key is an Ed25519 key, not an RSA key; set algorithm: ed25519' % what)
        if raw[:1] != b'\x30':
            raise DnsError('%s: public_key is not a DER-encoded RSA public key' % what)
        if len(raw) < _RSA_MIN_DER_BYTES:
            raise DnsError('%s: the RSA key is shorter than 1024 bits (RFC 8301 section 3.2)' % what)
    return selector, 'v=DKIM1; k=%s; p=%s' % (algorithm, base64.b64encode(raw).decode('ascii'))


def _dmarc_value(dmarc):
    policy = _choice(_opt(dmarc, 'policy', DEFAULT_DMARC_POLICY), DMARC_POLICIES, 'dns.dmarc.policy')
    tags = ['v=DMARC1', 'p=' + policy]
    if dmarc.get('subdomain_policy') is not None:
        tags.append('sp=' + _choice(dmarc['subdomain_policy'], DMARC_POLICIES, 'dns.dmarc.subdomain_policy'))
    if dmarc.get('pct') is not None:
        pct = dmarc['pct']
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise DnsError('dns.dmarc.pct must be an integer from 0 to 100, got %r' % (pct,))
        tags.append('pct=%d' % pct)
    rua = [_mailto(a, 'dns.dmarc.rua[%d]' % i) for i, a in enumerate(dmarc.get('rua') or [])]
    if rua:
        tags.append('rua=' + ','.join(rua))
    for key in ('adkim', 'aspf'):
        if dmarc.get(key) is not None:
            tags.append('%s=%s' % (key, ALIGNMENT[_choice(dmarc[key], sorted(ALIGNMENT), 'dns.dmarc.' + key)]))
    return '; '.join(tags)


def mta_sts_policy(domain, options):
    """Return the MTA-STS policy file text (RFC 8461 section 3.2) for ``domain``, or None when not enabled.

    It is what ``https://mta-sts.<domain>/.well-known/mta-sts.txt`` must serve;
    the ``mx`` patterns default to the MX hosts of ``options``.
    """
    domain = _host(domain, 'domain')
    if not _enabled(options, 'mta_sts'):
        return None
    sts = _section(options, 'mta_sts')
    mode = _choice(_opt(sts, 'mode', DEFAULT_MTA_STS_MODE), MTA_STS_MODES, 'dns.mta_sts.mode')
    max_age = _opt(sts, 'max_age', DEFAULT_MTA_STS_MAX_AGE)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= MAX_MTA_STS_MAX_AGE:
        raise DnsError('dns.mta_sts.max_age must be 0 to %d seconds, got %r' % (MAX_MTA_STS_MAX_AGE, max_age))
    patterns = sts.get('mx')
    if patterns:
        hosts = []
        for index, pattern in enumerate(patterns):
            wild = isinstance(pattern, str) and pattern.startswith('*.')
            host = _host(pattern[2:] if wild else pattern, 'dns.mta_sts.mx[%d]' % index)
            hosts.append('*.' + host if wild else host)
    else:
        hosts = [entry[1] for entry in _mx_hosts((options or {}).get('mx'), domain)]
    lines = ['version: STSv1', 'mode: ' + mode] + ['mx: ' + h for h in hosts] + ['max_age: %d' % max_age]
    return '\n'.join(lines) + '\n'


def dns_records(domain, options, alias_domain=False):
    """Return the DNS records that ``domain`` should publish, as a list of dicts (see the module docstring).

    ``options`` is the ``dns`` option (:func:`dns_argument_spec`); DKIM keys
    with a ``domain`` other than ``domain`` are skipped, keys without one
    apply. ``alias_domain``: the domain is an alias domain (it has no
    mailboxes of its own), so no autoconfiguration records are returned.

    Order: MX (by priority), SPF, DKIM (by selector), DMARC, MTA-STS, TLS-RPT,
    autoconfig CNAME, SRV. Raises :class:`DnsError` on invalid options.
    """
    domain = _host(domain, 'domain')
    options = options or {}
    mx = _mx_hosts(options.get('mx'), domain)
    records = [dict(type='MX', name=domain, value=host, priority=prio, rdata='%d %s.' % (prio, host))
               for prio, host in mx]
    records.append(_txt(domain, _spf_value(_section(options, 'spf'), domain)))

    keys = {}
    for index, key in enumerate(options.get('dkim_keys') or []):
        owner = key.get('domain') if isinstance(key, dict) else None
        if owner and _host(owner, 'dns.dkim_keys[%d].domain' % index) != domain:
            continue
        selector, value = _dkim_value(key, index)
        if selector in keys:
            raise DnsError('dns.dkim_keys[%d]: selector %s is given twice for %s' % (index, selector, domain))
        keys[selector] = value
    records.extend(_txt('%s._domainkey.%s' % (s, domain), keys[s]) for s in sorted(keys))

    records.append(_txt('_dmarc.' + domain, _dmarc_value(_section(options, 'dmarc'))))

    policy = mta_sts_policy(domain, options)
    if policy is not None:
        sts_id = _section(options, 'mta_sts').get('id')
        if sts_id is None:
            sts_id = hashlib.sha256(policy.encode('ascii')).hexdigest()[:20]
        elif not isinstance(sts_id, str) or not _STS_ID_RE.match(sts_id):
            raise DnsError('dns.mta_sts.id must be 1 to 32 letters and digits (RFC 8461 section 3.1)')
        records.append(_txt('_mta-sts.' + domain, 'v=STSv1; id=' + sts_id))

    rua = [_report_uri(u, 'dns.tls_rpt.rua[%d]' % i) for i, u in enumerate(_section(options, 'tls_rpt').get('rua') or [])]
    if rua:
        records.append(_txt('_smtp._tls.' + domain, 'v=TLSRPTv1; rua=' + ','.join(rua)))

    auto = _section(options, 'autoconfig')
    if _enabled(options, 'autoconfig') and not alias_domain:
        host = _host(auto['host'], 'dns.autoconfig.host') if auto.get('host') else mx[0][1]
        if host == 'autoconfig.' + domain:
            raise DnsError('dns.autoconfig.host must not be autoconfig.%s itself (a CNAME to itself)' % domain)
        records.append(dict(type='CNAME', name='autoconfig.' + domain, value=host, rdata=host + '.'))
        services = list(SRV_SERVICES) + ([SRV_POP3S] if auto.get('pop3') else [])
        for service, port in services:
            records.append(dict(type='SRV', name='%s.%s' % (service, domain), value='0 1 %d %s' % (port, host),
                                priority=0, weight=1, port=port, target=host, rdata='0 1 %d %s.' % (port, host)))
    return records


def dns_rrsets(records):
    """Group ``records`` into RRsets: [{name, type, rdata: [...]}] in the order of first appearance.

    DNS update interfaces (RFC 2136 ``nsupdate``, most provider APIs) replace
    all records of one name and type at once, so each RRset is one update.
    """
    out, index = [], {}
    for record in records:
        key = (record['name'], record['type'])
        if key not in index:
            index[key] = dict(name=record['name'], type=record['type'], rdata=[])
            out.append(index[key])
        index[key]['rdata'].append(record['rdata'])
    return out


def dns_result(domain, options, alias_domain=False):
    """The keys that mail_domain and mail_info return for one domain with the ``dns`` option.

    ``dns_records`` (:func:`dns_records`), ``dns_rrsets`` (:func:`dns_rrsets`)
    and ``mta_sts_policy`` (:func:`mta_sts_policy`, None when MTA-STS is not
    enabled). Raises :class:`DnsError` on invalid options.
    """
    records = dns_records(domain, options, alias_domain=alias_domain)
    return dict(dns_records=records, dns_rrsets=dns_rrsets(records), mta_sts_policy=mta_sts_policy(domain, options))


def check_options(options):
    """Validate the ``dns`` option for any domain (mail_info, before anything is read); raise :class:`DnsError`.

    Checks everything :func:`dns_records` checks except what depends on the
    domain (a selector given twice for the same domain).
    """
    options = options or {}
    for index, key in enumerate(options.get('dkim_keys') or []):
        if isinstance(key, dict) and key.get('domain'):
            _host(key['domain'], 'dns.dkim_keys[%d].domain' % index)
        _dkim_value(key, index)
    dns_result('example.com', dict(options, dkim_keys=[]))
