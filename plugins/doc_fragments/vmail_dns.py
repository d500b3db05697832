# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # The dns option of mail_domain and mail_info (argument spec: module_utils/vmail_dns.py, dns_argument_spec).
    DOCUMENTATION = r'''
options:
  dns:
    description:
      - Compute the DNS records the domain should publish and return them as C(dns_records) and C(dns_rrsets)
        (see the collection's C(docs/dns.md)). Nothing is looked up in DNS or written anywhere; the records are
        computed from these options only, so C(changed) is not affected and check mode returns the same records.
      - Returned records are MX, the SPF TXT record, one DKIM TXT record per key in I(dkim_keys), the DMARC TXT
        record, and when their options are given the MTA-STS, TLS-RPT and autoconfiguration records.
      - Names and host names are lowercase A-labels (IDNA 2008 with UTS 46 mapping, as for the domains) without the
        trailing dot.
      - Invalid options (no MX host, a host name that is invalid or an IP address, a public key that is not
        base64 or not a key of its algorithm, an unknown SPF mechanism, an SPF record with more than 10 DNS
        lookups) fail the task with a message naming the option; nothing is written.
    type: dict
    version_added: "0.5.0"
    suboptions:
      mx:
        description:
          - The mail exchangers of the domain, each a host name (priorities 10, 20, ... in list order) or a
            dictionary with C(host) and C(priority) (an integer from 0 to 65535).
          - Must not be empty; host names, not IP addresses (RFC 5321 section 5.1).
          - The first host by priority is also the default host of I(autoconfig).
        type: list
        elements: raw
        required: true
      spf:
        description:
          - The SPF record (RFC 7208) at the domain. By default C(v=spf1 mx -all), which authorizes the MX hosts to
            send, the usual set-up when the mail server sends and receives.
        type: dict
        suboptions:
          mechanisms:
            description:
              - Extra mechanisms or modifiers placed after C(mx), for example C(ip4:192.0.2.10),
                C(ip6:2001:db8::/64), C(a:relay.example.com) or C(include:_spf.example.net).
              - Checked against RFC 7208 (mechanism names, IP networks); the record may need at most 10 DNS lookups.
            type: list
            elements: str
            default: []
          all:
            description:
              - The final C(all) mechanism. C(~all) (soft fail) or C(?all) (neutral) for a transition.
            type: str
            choices: ['-all', '~all', '?all']
            default: '-all'
          record:
            description:
              - The whole SPF record, used as given instead of I(mechanisms) and I(all). Must start with C(v=spf1).
            type: str
      dkim_keys:
        description:
          - DKIM public keys to publish, one TXT record C(<selector>._domainkey.<domain>) with
            C(v=DKIM1; k=<algorithm>; p=<key>) each (RFC 6376 section 3.6.1; RFC 8463 for Ed25519).
          - The same shape as the fact C(rspamd_dkim_dns_keys) of the collection's rspamd role, so that list can be
            given as it is.
          - Keys whose I(domain) names another domain are skipped; keys without I(domain) apply to every domain.
          - Publish the old and the new selector together while rotating keys.
        type: list
        elements: dict
        default: []
        suboptions:
          selector:
            description:
              - The selector, one or more DNS labels.
            type: str
            required: true
          algorithm:
            description:
              - The key type, the C(k=) tag.
              - Not set, the C(k=) tag of a key given as a DKIM record text is used, otherwise C(rsa).
            type: str
            choices: [rsa, ed25519]
          public_key:
            description:
              - The public key, as PEM (C(-----BEGIN PUBLIC KEY-----)), as the bare base64 of the key, or as the
                record text that C(rspamadm dkim_keygen) or C(opendkim-genkey) print (quoted strings with C(p=)).
              - It must be valid base64 of a DER RSA public key of at least 1024 bits (RFC 8301), or of an Ed25519
                key (32 bytes; the PEM form is reduced to those bytes as RFC 8463 requires).
              - A private key is refused (and not shown in the message).
            type: str
            required: true
          domain:
            description:
              - The domain the key belongs to (normalized like the domain names). Not set, the key applies to every
                domain.
            type: str
      dmarc:
        description:
          - The DMARC record (RFC 7489) at C(_dmarc.<domain>). Always returned; by default
            C(v=DMARC1; p=quarantine).
        type: dict
        suboptions:
          policy:
            description:
              - The C(p=) tag, what receivers should do with mail that fails DMARC.
            type: str
            choices: [none, quarantine, reject]
            default: quarantine
          subdomain_policy:
            description:
              - The C(sp=) tag, the policy for subdomains. Not set, subdomains get I(policy).
            type: str
            choices: [none, quarantine, reject]
          rua:
            description:
              - Addresses for aggregate reports (C(rua=)), with or without C(mailto:).
              - An address in another domain only receives reports when that domain publishes
                C(<domain>._report._dmarc.<its domain>) (RFC 7489 section 7.1).
            type: list
            elements: str
            default: []
          pct:
            description:
              - The C(pct=) tag, the percentage of failing mail the policy applies to (0 to 100). Not set, 100.
            type: int
          adkim:
            description:
              - DKIM identifier alignment (C(adkim=)). Not set, relaxed (the RFC default).
            type: str
            choices: [relaxed, strict]
          aspf:
            description:
              - SPF identifier alignment (C(aspf=)). Not set, relaxed (the RFC default).
            type: str
            choices: [relaxed, strict]
      mta_sts:
        description:
          - Given, the MTA-STS record (RFC 8461) C(_mta-sts.<domain>) with C(v=STSv1; id=<id>) is returned, and
            C(mta_sts_policy), the policy file text to serve at C(https://mta-sts.<domain>/.well-known/mta-sts.txt).
          - The web server, its certificate and the C(mta-sts.<domain>) address record are not part of this.
        type: dict
        suboptions:
          enabled:
            description:
              - C(false) leaves the MTA-STS record out (for example from a variable).
            type: bool
            default: true
          mode:
            description:
              - The policy mode. C(testing) (the default) only reports failures through TLS-RPT; switch to
                C(enforce) once the MX hosts have certificates that public CAs sign (the collection's tls role makes
                a self-signed one by default), or senders that honour MTA-STS stop delivering.
            type: str
            choices: [enforce, testing, none]
            default: testing
          max_age:
            description:
              - The policy lifetime in seconds (at most 31557600).
            type: int
            default: 604800
          mx:
            description:
              - The C(mx) patterns of the policy (host names, or C(*.example.com)). Not set, the I(mx) hosts.
            type: list
            elements: str
          id:
            description:
              - The policy id (1 to 32 letters and digits). Not set, the first 20 hex digits of the SHA-256 of the
                policy text, so the id changes exactly when the policy does and an unchanged policy gives the
                same record.
            type: str
      tls_rpt:
        description:
          - SMTP TLS reporting (RFC 8460). With I(rua), the TXT record C(_smtp._tls.<domain>) with
            C(v=TLSRPTv1; rua=...).
        type: dict
        suboptions:
          rua:
            description:
              - Where reports go, addresses (with or without C(mailto:)) or C(https://) URLs.
            type: list
            elements: str
            default: []
      autoconfig:
        description:
          - Given, the records mail clients use to find the servers; a CNAME C(autoconfig.<domain>) to I(host)
            (Thunderbird's autoconfiguration) and SRV records (RFC 6186, RFC 8314) C(_submissions._tcp) (port 465),
            C(_imaps._tcp) (993) and C(_submission._tcp) (587), C(priority 0 weight 1 port host).
          - Not returned for alias domains (they have no mailboxes to sign in to).
          - The autoconfiguration file served at C(autoconfig.<domain>) is not part of this.
        type: dict
        suboptions:
          enabled:
            description:
              - C(false) leaves these records out.
            type: bool
            default: true
          host:
            description:
              - The host clients connect to. Not set, the first I(mx) host by priority.
            type: str
          pop3:
            description:
              - Also return C(_pop3s._tcp) (port 995).
            type: bool
            default: false
'''
