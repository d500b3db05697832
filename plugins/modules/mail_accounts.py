#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_accounts
short_description: Declare a whole set of virtual domains, mailboxes and aliases in one task
version_added: "0.5.0"
description:
  - Makes the rows of C(virtual_domains), C(virtual_users) and C(virtual_aliases) (the schema of the Linode guide
    "Email with Postfix, Dovecot, and MySQL") match the declared I(domains), I(users) and I(aliases) in one run.
  - Every entry is validated and normalized by the same code as M(vmail.mailserver.mail_domain),
    M(vmail.mailserver.mail_user) and M(vmail.mailserver.mail_alias) (C(plugins/module_utils/vmail_accounts.py)),
    so an entry means exactly what the single module with the same options means.
  - Any invalid entry, duplicate or contradiction fails the task before anything is written, naming each
    offending entry by list and index, for example C(users[3] (a@example.com)). A mailbox or domain listed twice,
    an entry declared both present and absent, an alias source listed twice unless both entries are
    I(state=present) without I(exclusive) (their destinations are then merged), and a mailbox or alias declared
    present in a domain declared absent are errors.
  - It reads the current rows with one C(SELECT) per table, plans in time linear in the number of entries and rows
    and writes only the difference in one transaction, in dependency order (domains, mailboxes, aliases created or
    updated; then aliases, mailboxes, domains removed). Any error rolls the whole transaction back.
  - Cleartext passwords of existing mailboxes are verified, not rehashed (as M(vmail.mailserver.mail_user)). From 64
    passwords on, hashing and verification run in a process pool with one process per CPU core, using the C library's
    crypt(3) through passlib (see C(docs/modules.md), section Host requirements).
  - The account model options (I(domains[].active), I(domains[].default_quota), I(domains[].alias_of),
    I(users[].quota), I(users[].active), I(aliases[].active)) need schema version 4 (added by
    M(vmail.mailserver.mail_schema), which the mailsql role runs). On an older database the module keeps working
    without them; an entry that sets one fails naming migration 4, and nothing is written. An option that is not set
    leaves the stored value alone (new rows get the column default; a new mailbox's quota is its domain's
    I(default_quota)).
  - I(domains[].host) and I(users[].host) need schema version 5; on an older database an entry that sets one fails
    naming migration 5.
  - "Purge (I(purge=true)) removes every domain, mailbox and alias row that is not declared; a removed domain takes
    its mailboxes and aliases with it. Mail stored on disk (for example C(/var/mail/vhosts/<domain>/<user>)) is never
    touched, neither by I(purge) nor by I(state=absent): delete it yourself when a mailbox is gone for good."
options:
  domains:
    description:
      - Domains (rows of C(virtual_domains)).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Domain name, normalized as I(name) of M(vmail.mailserver.mail_domain) (lowercase, A-label form).
        type: str
        required: true
      state:
        description:
          - C(present) creates the domain when missing, C(absent) removes it.
        type: str
        choices: [ present, absent ]
        default: present
      force:
        description:
          - With I(state=absent), also remove the domain's mailboxes and aliases. Without it a domain that would
            keep mailboxes or aliases (not removed by other entries of this task) makes the task fail, as
            M(vmail.mailserver.mail_domain) does.
          - Also needed to remove a domain that has alias domains (they are removed with it).
        type: bool
        default: false
      active:
        description:
          - Whether the domain is enabled, as I(active) of M(vmail.mailserver.mail_domain). Not set leaves the stored
            value; new domains are enabled.
        type: bool
        version_added: "0.5.0"
      default_quota:
        description:
          - Quota in bytes (or a size such as C(2G), C(500M); C(0) = unlimited) given to mailboxes created later in
            this domain without a quota of their own, as I(default_quota) of M(vmail.mailserver.mail_domain).
            Applies to mailboxes created in the same task too.
        type: raw
        version_added: "0.5.0"
      alias_of:
        description:
          - Make this domain an alias domain of the named domain (declared in this task or existing), as I(alias_of)
            of M(vmail.mailserver.mail_domain); an empty string makes it a normal domain again. The same checks
            apply, against the state after the run (the target must exist and be a normal domain, no chains, no
            mailboxes of its own).
        type: str
        version_added: "0.5.0"
      host:
        description:
          - The mail node of the domain's mailboxes, as I(host) of M(vmail.mailserver.mail_domain) (a host name;
            an empty string clears it, NULL = the only node). Not set leaves the stored value.
        type: str
        version_added: "0.5.0"
  users:
    description:
      - Mailboxes (rows of C(virtual_users)).
      - A mailbox declared present needs its domain to exist after the run (declared in I(domains) or already
        in the database and not removed).
    type: list
    elements: dict
    default: []
    suboptions:
      email:
        description:
          - Mailbox address, normalized as I(email) of M(vmail.mailserver.mail_user).
        type: str
        required: true
      password:
        description:
          - Cleartext password, hashed with I(password_scheme) on the managed host. Never logged.
          - Must not be empty. Mutually exclusive with I(password_hash).
          - Required to create a mailbox unless I(password_hash) is given.
        type: str
      password_hash:
        description:
          - A ready hash stored as is (a bare crypt string C($6$), C($5$), C($2y$) or a Dovecot C({SCHEME}) prefixed
            value), compared as a string. Never logged. This is what RV(vmail.mailserver.mail_info#module:users)
            returns with C(format=accounts).
        type: str
      password_scheme:
        description:
          - Dovecot scheme used to hash I(password), as I(password_scheme) of M(vmail.mailserver.mail_user).
        type: str
        choices: [ SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT ]
        default: SHA512-CRYPT
      update_password:
        description:
          - C(always) makes the stored password match on every run (a matching password is verified and
            left alone; a stored hash of another scheme is rewritten).
          - C(on_create) sets it only when the mailbox is created; existing mailboxes are neither verified nor
            rehashed, which keeps a re-run fast.
          - Defaults to the top-level I(update_password).
        type: str
        choices: [ always, on_create ]
      quota:
        description:
          - Storage limit in bytes, or a size such as C(2G) or C(500M) (binary units); C(0) = unlimited (Dovecot's
            quota plugin, U(https://doc.dovecot.org/main/core/plugins/quota.html)). As I(quota) of
            M(vmail.mailserver.mail_user). Not set leaves the stored value; a new mailbox gets its domain's
            I(default_quota).
        type: raw
        version_added: "0.5.0"
      active:
        description:
          - Whether the mailbox is enabled, as I(active) of M(vmail.mailserver.mail_user). Not set leaves the stored
            value; new mailboxes are enabled.
        type: bool
        version_added: "0.5.0"
      host:
        description:
          - The mailbox's own mail node, overriding its domain's, as I(host) of M(vmail.mailserver.mail_user) (an
            empty string clears it). Not set leaves the stored value.
        type: str
        version_added: "0.5.0"
      state:
        description:
          - C(present) or C(absent). Removing a mailbox does not touch mail on disk.
        type: str
        choices: [ present, absent ]
        default: present
  aliases:
    description:
      - Alias sources and their destinations (rows of C(virtual_aliases), one row per source and destination).
    type: list
    elements: dict
    default: []
    suboptions:
      source:
        description:
          - The forwarded address or C(@domain) (catch-all), normalized as I(source) of M(vmail.mailserver.mail_alias).
        type: str
        required: true
      destination:
        description:
          - One address (string) or a list of addresses. Required with I(state=present).
          - With I(state=absent), the listed destinations are removed, or every row of I(source) when none is listed.
          - Same loop and typo protection as M(vmail.mailserver.mail_alias), checked against the state after the run.
        type: raw
      exclusive:
        description:
          - With I(state=present), remove the destinations of I(source) that are not listed.
        type: bool
        default: false
      active:
        description:
          - Whether the alias (all rows of I(source)) is enabled, as I(active) of M(vmail.mailserver.mail_alias).
            Not set leaves the stored value. Two entries for one source merge only when they do not set different
            values.
        type: bool
        version_added: "0.5.0"
      state:
        description:
          - C(present) adds the listed destinations, C(absent) removes them.
        type: str
        choices: [ present, absent ]
        default: present
  update_password:
    description:
      - Default of I(users[].update_password).
    type: str
    choices: [ always, on_create ]
    default: always
  purge:
    description:
      - Remove every domain, mailbox and alias row not declared in this task, and every destination of a declared
        alias source that is not listed (as if all aliases were I(exclusive)). Removed domains take their mailboxes
        and aliases with them (as I(force=true) of M(vmail.mailserver.mail_domain)).
      - With C(false) nothing is removed that is not declared with I(state=absent).
      - Mail on disk is never touched.
      - Behaviour modelled on the C(purge_tags) option of the amazon.aws collection.
    type: bool
    default: false
  kick:
    description:
      - End the open IMAP, POP3 and ManageSieve sessions of every mailbox whose access this run takes away (removed
        also with its domain, password rewritten, disabled with I(active=false), or whose domain is disabled with I(active=false) of a domain entry).
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
attributes:
  check_mode:
    support: full
    description: Runs the same statements in the transaction and rolls back; nothing is hashed in check mode.
  diff_mode:
    support: full
    description: A summary per kind of what is created, updated and removed, at most 200 lines; passwords hidden.
author:
  - vmail.mailserver developers (@vmail)
seealso:
  - module: vmail.mailserver.mail_domain
  - module: vmail.mailserver.mail_user
  - module: vmail.mailserver.mail_alias
  - module: vmail.mailserver.mail_info
'''

EXAMPLES = r'''
- name: All accounts of the server, anything else is removed
  vmail.mailserver.mail_accounts:
    domains:
      - name: example.com
      - name: example.org
    users:
      - email: alice@example.com
        password: "{{ vault_alice_password }}"
      - email: bob@example.org
        password: "{{ vault_bob_password }}"
        update_password: on_create
    aliases:
      - source: postmaster@example.com
        destination: alice@example.com
      - source: sales@example.org
        destination: [bob@example.org, alice@example.com]
    purge: true
    config_file: /etc/vmail/mailsql-admin.cnf

- name: Add and remove some accounts, leave the others alone
  vmail.mailserver.mail_accounts:
    users:
      - email: carol@example.com
        password: "{{ vault_carol_password }}"
      - email: dave@example.com
        state: absent
    update_password: on_create
    config_file: /etc/vmail/mailsql-admin.cnf

# Exporting a server's accounts and re-applying them elsewhere: see the examples of vmail.mailserver.mail_info.
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
domains:
  description:
    - Domain names created, updated (I(active), I(default_quota), I(alias_of) or I(host) changed) and removed, or that would
      be in check mode.
    - Each list holds at most 1000 names; C(*_count) are the full numbers and C(truncated) says whether a list was cut.
  returned: always
  type: dict
  contains:
    created: {description: Names created., type: list, elements: str, returned: always}
    updated: {description: "Names updated (active, default_quota, alias_of or host).", type: list, elements: str, returned: always}
    removed: {description: Names removed (with their mailboxes and aliases)., type: list, elements: str, returned: always}
    created_count: {description: Number of names created., type: int, returned: always}
    updated_count: {description: Number of names updated., type: int, returned: always}
    removed_count: {description: Number of names removed., type: int, returned: always}
    truncated: {description: Whether a list holds fewer keys than its count., type: bool, returned: always}
  sample: {"created": ["example.com"], "updated": [], "removed": [], "created_count": 1, "updated_count": 0,
           "removed_count": 0, "truncated": false}
users:
  description:
    - Mailbox addresses created, updated (password, address case, domain row, quota, active or host changed) and removed, as for
      RV(domains). Mailboxes of removed domains are listed as removed.
  returned: always
  type: dict
  sample: {"created": ["alice@example.com"], "updated": [], "removed": ["old@example.com"], "created_count": 1,
           "updated_count": 0, "removed_count": 1, "truncated": false}
aliases:
  description:
    - Alias sources created (had no rows), updated (destinations added or removed, or enabled or disabled) and
      removed (no rows left), as for RV(domains).
  returned: always
  type: dict
  sample: {"created": ["postmaster@example.com"], "updated": [], "removed": [], "created_count": 1,
           "updated_count": 0, "removed_count": 0, "truncated": false}
diff:
  description:
    - With C(--diff), a readable summary (C(prepared)) per kind of what is created (C(+)), updated (C(~)) and
      removed (C(-)), at most 200 lines. Passwords and hashes are never shown.
  returned: when diff mode is on
  type: dict
  sample: {"prepared": "domains: 1 to create, 0 to update, 0 to remove\n+ domain example.com\n..."}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vmail.mailserver.plugins.module_utils.vmail_db import run_and_exit, vmail_db_argument_spec
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_accounts as accounts
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_kick

RESULT_CAP = 1000
DIFF_LINES = 200
# Longer entry lists are shown as a count in the invocation Ansible prints with -vvv.
INVOCATION_ENTRIES = 100


def hide_entry_secrets(module):
    """Take the per-mailbox secrets out of Ansible's output filter; return them as a set.

    Ansible replaces every no_log value inside every string of the result
    (cost: values x strings, minutes for 10,000 passwords). The result of
    this module never contains an entry secret by construction (only names,
    addresses and counts), so the secrets are removed from
    ``module.no_log_values`` and masked in ``module.params`` (what Ansible
    shows as ``invocation``) instead; :func:`vmail_accounts.scrub` still masks
    any result string equal to, or free text containing, a secret. Lists of
    more than INVOCATION_ENTRIES entries appear in the invocation as a count.
    """
    secrets = set()
    users = []
    for entry in module.params['users'] or []:
        entry = dict(entry)
        for field in ('password', 'password_hash'):
            if entry.get(field) is not None:
                secrets.add(entry[field])
                entry[field] = accounts.NO_LOG_MASK
        users.append(entry)
    module.params['users'] = users
    # a secret that is also the value of another no_log option (login_password) stays filtered
    module.no_log_values.difference_update(secrets - set([module.params.get('login_password')]))
    for kind in ('domains', 'users', 'aliases'):
        if len(module.params[kind] or []) > INVOCATION_ENTRIES:
            module.params[kind] = '%d entries (not repeated here)' % len(module.params[kind])
    return secrets


def main():
    state = dict(type='str', default='present', choices=list(accounts.STATES))
    argument_spec = vmail_db_argument_spec()
    argument_spec.update(
        domains=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True),
            state=state,
            force=dict(type='bool', default=False),
            active=dict(type='bool'),
            default_quota=dict(type='raw'),
            alias_of=dict(type='str'),
            host=dict(type='str'),
        )),
        users=dict(type='list', elements='dict', default=[], options=dict(
            email=dict(type='str', required=True),
            password=dict(type='str', no_log=True),
            password_hash=dict(type='str', no_log=True),
            password_scheme=dict(type='str', default=hashing.DEFAULT_SCHEME, choices=list(hashing.SCHEMES),
                                 no_log=False),
            update_password=dict(type='str', choices=list(accounts.UPDATE_PASSWORD), no_log=False),
            quota=dict(type='raw'),
            active=dict(type='bool'),
            host=dict(type='str'),
            state=state,
        )),
        aliases=dict(type='list', elements='dict', default=[], options=dict(
            source=dict(type='str', required=True),
            destination=dict(type='raw'),
            exclusive=dict(type='bool', default=False),
            active=dict(type='bool'),
            state=state,
        )),
        update_password=dict(type='str', default='always', choices=list(accounts.UPDATE_PASSWORD), no_log=False),
        purge=dict(type='bool', default=False),
        lowercase_local_part=dict(type='bool', default=True),
        kick=dict(type='bool', default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    accounts.require_libraries(module)
    p = dict(module.params)
    secrets = hide_entry_secrets(module)
    try:
        desired = accounts.normalize_input(p['domains'], p['users'], p['aliases'],
                                           lowercase_local_part=p['lowercase_local_part'],
                                           update_password=p['update_password'])
    except accounts.AccountsError as exc:
        module.fail_json(msg='invalid input, nothing was changed: %s' % exc, errors=[
            dict(entry=label, msg=msg) for label, msg in exc.errors[:accounts.MAX_ERRORS]])

    def work(cursor, widths):
        outcome = accounts.run(cursor, widths, desired, purge=p['purge'], check_mode=module.check_mode)
        plan = outcome.plan
        for warning in plan.warnings:
            module.warn(warning)
        result = dict(changed=plan.changed)
        result.update(accounts.summarize(plan, cap=RESULT_CAP))
        if module._diff:
            result['diff'] = dict(prepared=accounts.diff_text(plan, max_lines=DIFF_LINES))
        result['kicked'] = accounts.users_to_kick(plan, outcome.state) if p['kick'] else []
        return accounts.scrub(result, secrets)

    run_and_exit(module, work, after=lambda result: vmail_kick.end_sessions(module, result))


if __name__ == '__main__':
    main()
