#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_vacation
short_description: Manage a mailbox's out-of-office reply (Sieve vacation, RFC 5230) on the mail host
version_added: "0.5.0"
description:
  - Sets, changes, pauses or removes the automatic out-of-office reply of one virtual mailbox, as a Sieve
    script that Dovecot's Pigeonhole runs at delivery (LMTP) before the user's own script.
  - Runs B(on the mail host) (the C(mail_servers) group), not on the database host, and needs no database
    connection; the reply lives in a file, C(<vacation_dir>/<domain>/<local part>.sieve), owned by the vmail
    account (directories 0750, file 0640). The dovecot role with C(dovecot_sieve=true) points Dovecot there
    (Pigeonhole 0.5 C(sieve_before), Pigeonhole 2.4 a C(sieve_script) block of C(type=before)).
  - The user's own filters, uploaded with a ManageSieve client (port 4190) into C(~/sieve), are never read or
    written, and their active script stays active; both run at delivery, this one first. Pigeonhole sends at
    most one vacation reply per message, so a vacation rule the user wrote himself is then skipped.
  - Replies go to the envelope sender at most once every O(days) days per sender (RFC 5230 C(:days), tracked by
    Pigeonhole in the user's home), never to messages with a mailing-list header (C(List-Id), C(List-Unsubscribe)
    and the other RFC 2369 fields), with C(Precedence) C(list), C(bulk) or C(junk), or with an C(Auto-Submitted)
    field other than C(no). The script tests these itself; Pigeonhole also refuses them, and further skips
    senders such as C(MAILER-DAEMON), C(owner-*) and C(*-request), the null sender, and messages that do not
    name the mailbox (or one of O(addresses)) in C(To), C(Cc) or C(Bcc).
  - Every option is validated before anything is written; the new script is compiled with Pigeonhole's
    C(sievec) before it replaces the old one. The file is written atomically.
options:
  email:
    description:
      - The mailbox, normalized like the account modules do (lowercase, A-label domain). The module does not
        check that the mailbox exists (it has no database access); mail for an unknown address never reaches
        Dovecot.
    type: str
    required: true
  state:
    description: C(present) sets the reply (also when it is inactive), C(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  active:
    description:
      - C(false) keeps the reply's text and settings in place but sends nothing, so a later C(true) switches it
        on again (the script is kept under C(if false)).
    type: bool
    default: true
  subject:
    description:
      - Subject of the reply, one line, at most 256 characters. Non-ASCII text is MIME-encoded by Pigeonhole.
      - Empty or unset leaves it to Pigeonhole (C(Auto:) and the original subject).
    type: str
  body:
    description:
      - Text of the reply (plain text, UTF-8, at most 64 KiB; tabs and line breaks allowed, no other control
        characters). Required with O(state=present).
      - Written as a Sieve C(text:) literal with dot-stuffing, so any text is taken literally; C(${...}) is not
        expanded (the script does not use the variables extension).
    type: str
  start_date:
    description:
      - First day (ISO C(YYYY-MM-DD), inclusive) on which replies are sent, by the mail host's local date (Sieve
        C(currentdate), RFC 5260). Unset means from now on. A YAML date (unquoted) is accepted too.
    type: str
  end_date:
    description:
      - Last day (inclusive) on which replies are sent. Must not be before O(start_date). A date in the past is
        accepted with a warning (the reply is then never sent).
    type: str
  days:
    description:
      - Minimum number of days between two replies to the same sender (RFC 5230 C(:days)), 1 to 60; Pigeonhole's
        default C(sieve_vacation_min_period) is one day, and Pigeonhole 2.4 (Debian 13) caps longer periods at its
        default C(sieve_vacation_max_period) of 60 days (0.5 has no cap).
    type: int
    default: 7
  addresses:
    description:
      - Further addresses of this mailbox (for example aliases that point to it). Mail sent to one of them counts as
        addressed to the user (RFC 5230 C(:addresses)); without them, mail that reached the mailbox only through
        an alias gets no reply.
    type: list
    elements: str
    default: []
  vacation_dir:
    description:
      - Directory of the reply scripts. Must match the dovecot role's C(dovecot_sieve_vacation_dir).
    type: path
    default: /var/lib/vmail/vacation
  owner:
    description: Owner of the scripts and their directories (the account Dovecot delivers mail as).
    type: str
    default: vmail
  group:
    description: Group of the scripts and their directories.
    type: str
    default: vmail
  sievec:
    description:
      - Pigeonhole's compiler (Debian package C(dovecot-sieve)), used to check a new script before it is
        installed. When it is missing the module fails (outside check mode, where it only warns).
    type: path
    default: sievec
attributes:
  check_mode:
    support: full
    description:
      - Reports what would change; nothing is written (a changed script is still compiled with C(sievec) in a
        private temporary directory, to report errors).
  diff_mode:
    support: full
    description: The script before and after.
author:
  - vmail.mailserver developers (@vmail)
notes:
  - Errors (each before anything is written) name the option; for example an address that is not valid,
    C(days) outside 1..60, a date that is not C(YYYY-MM-DD), O(end_date) before O(start_date), a subject with a
    line break, a missing O(body), an unknown O(owner), a file at the script path that this module did not
    write (or a symbolic link), or a script that C(sievec) rejects (its message is shown).
  - With a separate database host nothing changes for this module, which always runs on the mail host(s) where
    Dovecot delivers; with several mail hosts, run it on each (the scripts are not in the database).
  - Removing a mailbox with the account modules does not remove its reply; use O(state=absent).
seealso:
  - name: RFC 5230 (Sieve vacation)
    description: The vacation action and its C(:days) and C(:addresses) arguments.
    link: https://www.rfc-editor.org/rfc/rfc5230
  - name: RFC 5228 (Sieve)
    description: Quoted strings and C(text:) literals, as the script is written.
    link: https://www.rfc-editor.org/rfc/rfc5228
'''

EXAMPLES = r'''
- name: Alice is away over the holidays
  vmail.mailserver.mail_vacation:
    email: alice@example.com
    subject: Out of office until 5 January
    body: |
      Hello,

      I am away until 5 January and will answer after that.
      For urgent matters write to office@example.com.
    start_date: "2026-12-20"
    end_date: "2027-01-05"
    addresses: [postmaster@example.com]

- name: Pause the reply but keep its text
  vmail.mailserver.mail_vacation:
    email: alice@example.com
    subject: Out of office until 5 January
    body: "..."
    active: false

- name: Remove it
  vmail.mailserver.mail_vacation:
    email: alice@example.com
    state: absent
'''

RETURN = r'''
email:
  description: The mailbox, normalized.
  returned: always
  type: str
  sample: alice@example.com
script_path:
  description: The script file of this mailbox's reply.
  returned: always
  type: str
  sample: /var/lib/vmail/vacation/example.com/alice.sieve
vacation:
  description: The reply as set (normalized options); null with O(state=absent).
  returned: always
  type: dict
  contains:
    active:
      description: Whether replies are sent.
      type: bool
    subject:
      description: The subject, or null for Pigeonhole's default.
      type: str
    start_date:
      description: First day, or null.
      type: str
    end_date:
      description: Last day, or null.
      type: str
    days:
      description: Days between two replies to one sender.
      type: int
    addresses:
      description: Further addresses of the mailbox.
      type: list
      elements: str
  sample: {active: true, subject: Out of office, start_date: "2026-12-20", end_date: "2027-01-05", days: 7,
           addresses: [postmaster@example.com]}
changes:
  description: What was changed (or would be, in check mode), one line each.
  returned: always
  type: list
  elements: str
  sample: ["mkdir /var/lib/vmail/vacation/example.com (create)", "write /var/lib/vmail/vacation/example.com/alice.sieve (create)"]
script:
  description: The Sieve script text; null with O(state=absent).
  returned: always
  type: str
'''

import datetime
import grp
import os
import pwd
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_sieve as sieve


def lookup_ids(owner, group):
    """uid and gid of the owner and group names (or numbers)."""
    try:
        uid = int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise sieve.SieveError('owner %r does not exist on this host (the vmail account is created by the dovecot '
                               'role)' % owner)
    try:
        gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise sieve.SieveError('group %r does not exist on this host' % group)
    return uid, gid


def compile_check(module, script):
    """Compile the script with sievec in a private temporary directory; fail with its message when rejected."""
    p = module.params
    sievec = p['sievec'] if '/' in p['sievec'] else module.get_bin_path(p['sievec'])
    if not sievec or not os.path.exists(sievec):
        message = ('sievec (Pigeonhole, Debian package dovecot-sieve) was not found, so Dovecot on this host cannot '
                   'run the reply: run the vmail.mailserver.dovecot role with dovecot_sieve: true first')
        if module.check_mode:
            module.warn(message)
            return
        module.fail_json(msg=message + '. Nothing was written.')
    tmp = tempfile.mkdtemp(prefix='vmail-vacation.')
    try:
        path = os.path.join(tmp, 'vacation.sieve')
        with open(path, 'wb') as handle:
            handle.write(script.encode('utf-8'))
        rc, out, err = module.run_command([sievec, path, os.path.join(tmp, 'vacation.svbin')])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        module.fail_json(msg='sievec rejected the generated script, nothing was written: %s'
                             % ((err or out).strip() or 'exit status %d' % rc), script=script)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            email=dict(type='str', required=True),
            state=dict(type='str', default='present', choices=['present', 'absent']),
            active=dict(type='bool', default=True),
            subject=dict(type='str'),
            body=dict(type='str'),
            start_date=dict(type='str'),
            end_date=dict(type='str'),
            days=dict(type='int', default=sieve.DEFAULT_DAYS),
            addresses=dict(type='list', elements='str', default=[]),
            vacation_dir=dict(type='path', default=sieve.DEFAULT_DIR),
            owner=dict(type='str', default='vmail'),
            group=dict(type='str', default='vmail'),
            sievec=dict(type='path', default='sievec'),
        ),
        required_if=[('state', 'present', ('body',))],
        supports_check_mode=True,
    )
    p = module.params
    try:
        spec = sieve.normalize(p['email'], state=p['state'], subject=p['subject'], body=p['body'],
                               active=p['active'], start_date=p['start_date'], end_date=p['end_date'],
                               days=p['days'], addresses=p['addresses'])
        script = sieve.build_script(spec) if p['state'] == 'present' else None
        uid, gid = lookup_ids(p['owner'], p['group']) if script is not None else (None, None)
        current = sieve.read_state(p['vacation_dir'], spec['email'])
        changes = sieve.plan(current, script, uid, gid)
    except sieve.SieveError as exc:
        module.fail_json(msg='%s. Nothing was written.' % exc)
    if script is not None and sieve.expired(spec, datetime.date.today()):
        module.warn('end_date %s has passed: the reply of %s will not be sent' % (spec['end_date'], spec['email']))
    if script is not None and any(c['op'] == 'write' for c in changes):
        compile_check(module, script)
    if changes and not module.check_mode:
        try:
            sieve.apply(changes, script, uid, gid)
        except sieve.SieveError as exc:
            module.fail_json(msg=str(exc), changes=sieve.describe(changes))
    result = dict(changed=bool(changes), email=spec['email'], script_path=current['path'], changes=sieve.describe(changes),
                  script=script,
                  vacation=None if script is None else dict(
                      (k, spec[k]) for k in ('active', 'subject', 'start_date', 'end_date', 'days', 'addresses')))
    if module._diff:
        result['diff'] = dict(before=current['content'] or '', after=script or '',
                              before_header=current['path'], after_header=current['path'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
