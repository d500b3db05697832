#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_user
short_description: Manage a virtual mailbox and its password in the Postfix/Dovecot SQL schema
version_added: "0.5.0"
description:
  - Adds, updates or removes a row of C(virtual_users) (the schema of the Linode guide
    "Email with Postfix, Dovecot, and MySQL"). Dovecot authenticates against it and Postfix
    delivers to it (C(virtual_mailbox_maps)).
  - Idempotent for cleartext passwords. The given I(password) is verified against the stored
    hash with passlib (like community.general's htpasswd) and the hash is only rewritten when
    it does not match or when the stored scheme differs from I(password_scheme).
  - Adopts existing data, that is bare C($6$) hashes made by MySQL/MariaDB C(ENCRYPT()) as in the guide
    verify, and re-declaring the same password reports no change.
  - I(quota) and I(active) need schema version 4 (columns C(virtual_users.quota) and C(virtual_users.active), added
    by M(vmail.mailserver.mail_schema), which the mailsql role runs). On an older database the module keeps working
    without them, and setting one fails naming migration 4; nothing is written.
  - I(host) needs schema version 5 (column C(virtual_users.host)); setting it on an older database fails naming
    migration 5, nothing is written.
  - "Host requirements: PyMySQL, passlib and idna on the managed host. On Python 3.13 (Debian 13),
    which has no C(crypt) module, install C(python3-crypt-r) so passlib hashes with the C library
    (about 1-2 ms per SHA512-CRYPT hash instead of passlib's pure-Python fallback); see
    C(docs/modules.md), section Host requirements. C(BLF-CRYPT) also wants C(python3-bcrypt)."
options:
  email:
    description:
      - The mailbox address. Normalized as described for I(lowercase_local_part); the domain part is
        lowercased and converted to its A-label (punycode) with C(idna).
      - The local part must be an ASCII RFC 5322 dot-atom of at most 64 octets; the whole address must
        fit the C(email) column (100 characters in the guide schema).
      - The domain must already exist (see M(vmail.mailserver.mail_domain)); otherwise the module fails
        and names the domain.
    type: str
    required: true
    aliases: [ name, user ]
  password:
    description:
      - Cleartext password, hashed on the managed host with I(password_scheme). Never logged.
      - Must not be empty. Mutually exclusive with I(password_hash).
      - Required to create a mailbox unless I(password_hash) is given.
    type: str
  password_hash:
    description:
      - A ready hash stored as is, for example from C(doveadm pw -s SHA512-CRYPT). Never logged.
      - Accepted forms are a bare crypt string (C($6$), C($5$), C($2y$)) or a Dovecot
        C({SCHEME}) prefixed value; it must fit the C(password) column (106 characters in the guide schema).
      - Idempotence compares the string exactly.
    type: str
  update_password:
    description:
      - C(always) makes the stored password match I(password)/I(password_hash) on every run.
      - C(on_create) sets it only when the mailbox is created and never changes an existing password.
    type: str
    choices: [ always, on_create ]
    default: always
  password_scheme:
    description:
      - Dovecot password scheme used to hash I(password)
        (U(https://doc.dovecot.org/main/core/config/auth/schemes.html)).
      - C(SHA512-CRYPT) is stored as a bare C($6$...) crypt string of 106 characters (5000 rounds, the crypt(3)
        default), exactly what the guide's C(ENCRYPT()) produces; Dovecot needs
        C(default_pass_scheme = SHA512-CRYPT) for such rows.
      - C(SHA256-CRYPT) (5000 rounds) and C(BLF-CRYPT) (bcrypt, cost 12, about 250 ms per hash by design)
        are stored with Dovecot's C({SCHEME}) prefix.
      - When the stored hash uses another scheme but I(password) matches it, the hash is rewritten
        with this scheme and the module reports C(changed) and RV(password_changed=true).
    type: str
    choices: [ SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT ]
    default: SHA512-CRYPT
  quota:
    description:
      - Storage limit of the mailbox in bytes (C(virtual_users.quota)), enforced by Dovecot's quota plugin.
        C(0) means unlimited, as in Dovecot (U(https://doc.dovecot.org/main/core/plugins/quota.html)).
      - An integer number of bytes or a size with a binary unit such as C(2G), C(500M) or C(1.5G) (parsed with
        Ansible's C(human_to_bytes); C(1K) = 1024 bytes).
      - A negative, fractional or unparsable value fails; nothing is written.
      - Not set leaves the stored value of an existing mailbox; a new mailbox gets the I(default_quota) of its
        domain (see M(vmail.mailserver.mail_domain)), which is C(0) unless set.
    type: raw
    version_added: "0.5.0"
  active:
    description:
      - Whether the mailbox is enabled (C(virtual_users.active)). A disabled mailbox keeps its row, password and
        mail; the Dovecot and Postfix queries of this collection refuse its logins and mail to it. Setting it back to
        C(true) restores everything.
      - Not set leaves the stored value; a new mailbox is created enabled.
    type: bool
    version_added: "0.5.0"
  host:
    description:
      - The mail node that stores this mailbox (C(virtual_users.host)), when the mail service runs on several nodes.
        Overrides the I(host) of its domain (see M(vmail.mailserver.mail_domain)).
      - The other nodes hand mail for the mailbox to this node over LMTP (port 24) and proxy its IMAP, POP3 and
        ManageSieve logins to it (C(postfix_node_name), C(dovecot_node_name); see C(roles/dovecot/README.md),
        section "Moving a mailbox between nodes").
      - A host name (not an IP address), normalized like a domain name (lowercase, A-label) but one label is enough;
        at most 255 characters.
      - An empty string clears it (NULL, the domain's node). Not set leaves the stored value; a new mailbox gets NULL.
    type: str
    version_added: "0.5.0"
  state:
    description:
      - C(present) creates or updates the mailbox, C(absent) removes its row.
      - Removing a mailbox does not touch mail on disk, nor aliases that point to it (a warning lists them).
    type: str
    choices: [ present, absent ]
    default: present
  kick:
    description:
      - End the open IMAP, POP3 and ManageSieve sessions of every mailbox whose access this run takes away (removed
        also with its domain, password rewritten, disabled with I(active=false), or whose domain is disabled).
      - Runs C(doveadm kick <address>) on the host the module runs on, after the change is committed. Where
        C(doveadm) is not installed (the module reaches the database from another machine) nothing is run and a
        warning names the mailboxes; the module does not fail. A failing C(doveadm kick) is a warning too.
      - Not run in check mode; RV(kicked) then lists the mailboxes that would be kicked.
    type: bool
    default: true
    version_added: "0.5.0"
extends_documentation_fragment:
  - vmail.mailserver.vmail_db
  - vmail.mailserver.vmail_db.address
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_domain
  - module: vmail.mailserver.mail_alias
  - name: Dovecot password schemes
    description: Stored password formats understood by Dovecot.
    link: https://doc.dovecot.org/main/core/config/auth/schemes.html
'''

EXAMPLES = r'''
- name: Create a mailbox (password verified, not rehashed, on later runs)
  vmail.mailserver.mail_user:
    email: alice@example.com
    password: "{{ vault_alice_password }}"
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Set the password only when the mailbox is created; users change it later themselves
  vmail.mailserver.mail_user:
    email: bob@example.com
    password: "{{ initial_password }}"
    update_password: on_create
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Store a ready hash made with doveadm pw -s BLF-CRYPT
  vmail.mailserver.mail_user:
    email: carol@example.com
    password_hash: "{BLF-CRYPT}$2y$12$Ah5Wn9D6bQ0Qm8nC3dWJ8uQ0VwP1Yh5pFqXn6dBi1I8hU2wT6cR3y"
    config_file: /etc/vmail/mailsql-admin.cnf

- name: A mailbox limited to 2 GiB
  vmail.mailserver.mail_user:
    email: erin@example.com
    password: "{{ vault_erin_password }}"
    quota: 2G
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Disable a mailbox (logins and incoming mail refused, nothing deleted)
  vmail.mailserver.mail_user:
    email: bob@example.com
    active: false
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Keep a mailbox on the mail node mail2.example.net (after moving its mail there)
  vmail.mailserver.mail_user:
    email: frank@example.com
    host: mail2.example.net
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Remove a mailbox (mail on disk stays)
  vmail.mailserver.mail_user:
    email: dave@example.com
    state: absent
    config_file: /etc/vmail/mailsql-admin.cnf
'''

RETURN = r'''
kicked:
  description:
    - Addresses whose open sessions were ended with C(doveadm kick) (removed, password changed or disabled
      mailboxes, see O(kick)); in check mode, those that would be. Empty with O(kick=false) or when C(doveadm)
      is not on this host (a warning says so).
  returned: always
  type: list
  elements: str
  sample: ["alice@example.com"]
  version_added: "0.5.0"
email:
  description: The normalized address.
  returned: always
  type: str
  sample: alice@example.com
password_changed:
  description: Whether the stored password was (or, in check mode, would be) written or rewritten.
  returned: always
  type: bool
  sample: false
password_scheme:
  description: Scheme of the stored password after the run (null when the mailbox does not exist or the scheme is unknown).
  returned: always
  type: str
  sample: SHA512-CRYPT
quota:
  description: The mailbox's quota in bytes after the run (0 = unlimited); null when absent or the database is below
    schema version 4.
  returned: always
  type: int
  sample: 2147483648
  version_added: "0.5.0"
active:
  description: Whether the mailbox is enabled after the run; null when absent or below schema version 4.
  returned: always
  type: bool
  sample: true
  version_added: "0.5.0"
host:
  description: The mailbox's own mail node after the run; null when not set (its domain's node), when absent or when
    the database is below schema version 5.
  returned: always
  type: str
  sample: mail2.example.net
  version_added: "0.5.0"
diff:
  description:
    - Before and after state of the mailbox, when run with C(--diff). The password is never shown,
      only C((hidden)), its scheme, and C(password_changed). With schema version 4 also C(quota) and C(active),
      with version 5 C(host).
  returned: when diff mode is on
  type: dict
  sample: {"before": {}, "after": {"email": "alice@example.com", "domain": "example.com",
           "password": "(hidden)", "password_scheme": "SHA512-CRYPT", "password_changed": true,
           "quota": 0, "active": true}}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as accounts
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_kick


def main():
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(
        email=dict(type='str', required=True, aliases=['name', 'user']),
        password=dict(type='str', no_log=True),
        password_hash=dict(type='str', no_log=True),
        update_password=dict(type='str', default='always', choices=list(accounts.UPDATE_PASSWORD), no_log=False),
        password_scheme=dict(type='str', default=hashing.DEFAULT_SCHEME, choices=list(hashing.SCHEMES), no_log=False),
        state=dict(type='str', default='present', choices=list(accounts.STATES)),
        lowercase_local_part=dict(type='bool', default=True),
        quota=dict(type='raw'),
        active=dict(type='bool'),
        host=dict(type='str'),
        kick=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[('password', 'password_hash')])
    accounts.require_libraries(module)
    p = module.params
    user = dict((k, p[k]) for k in ('email', 'password', 'password_hash', 'password_scheme', 'update_password', 'state',
                                    'quota', 'active', 'host'))
    try:
        desired, entry = accounts.normalize_single(users=[user], lowercase_local_part=p['lowercase_local_part'])
    except accounts.AccountsError as exc:
        module.fail_json(msg=str(exc))
    email, key = entry['email'], accounts.fold(entry['email'])

    def view(email, stored, password_changed=None, attributes=None):
        out = dict(email=email, domain=entry['domain'], password=accounts.HIDDEN, password_scheme=stored)
        if password_changed is not None:
            out['password_changed'] = password_changed
        out.update(attributes or {})
        return out

    def work(cursor, widths):
        scope = dict(domains=[entry['domain']], users=[email])
        if entry['state'] == accounts.ABSENT:
            scope['destinations'] = [email]
        outcome = accounts.run_single(cursor, widths, desired, scope, check_mode=module.check_mode)
        for warning in outcome.plan.warnings:
            module.warn(warning)
        row = outcome.state.users.get(key)
        change = outcome.plan.users.get(key)
        stored_scheme = hashing.identify(row['password']) if row else None
        current = accounts.user_attributes(outcome.state, outcome.plan, key, after=False)
        final = accounts.user_attributes(outcome.state, outcome.plan, key, after=True)
        result = dict(changed=change is not None, email=email, password_changed=False, password_scheme=stored_scheme,
                      quota=None, active=None, host=None)
        if entry['state'] == accounts.ABSENT:
            before, after = (view(row['email'], stored_scheme, attributes=current) if row else {}), {}
            result['password_scheme'] = None
        else:
            password_changed = bool(change and change['password_changed'])
            scheme = stored_scheme
            if password_changed:
                scheme = hashing.identify(change['hash']) if change['hash'] else change['scheme']
            before = view(row['email'], stored_scheme, False, current) if row else {}
            after = view(email, scheme, password_changed, final)
            result.update(password_changed=password_changed, password_scheme=scheme, **final)
        if module._diff:
            result['diff'] = dict(before=before, after=after)
        result['kicked'] = accounts.users_to_kick(outcome.plan, outcome.state) if p['kick'] else []
        return result

    run_and_exit(module, work, after=lambda result: vmail_kick.end_sessions(module, result))


if __name__ == '__main__':
    main()
