#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: mail_store
short_description: Keep Dovecot's mail location where existing mail lives, or move the Maildirs when asked
version_added: "0.5.0"
description:
  - Reads the mail location the installed Dovecot gives its virtual users (C(doveconf -n); on Dovecot 2.3
    C(mail_location) and the userdb C(home)/C(mail) fields, on 2.4 C(mail_driver), C(mail_path), C(mail_home)
    and the userdb C(fields)), finds every Maildir under O(mail_root), and decides the location the new
    configuration must use so that every existing user keeps seeing the same mail.
  - With O(location) and O(home) empty, the location in use is kept (a server built with the 2013 Linode guide
    keeps C(maildir:~/Maildir) with the home C(/var/mail/vhosts/%d/%n)); a host without a virtual-user Dovecot
    gets O(default_location) and O(default_home).
  - The guard. When the wanted location differs from the one in use and Maildirs exist at the one in use, the
    module fails, naming both locations and the number of mailboxes, unless O(move=true). Nothing is changed.
  - O(state=moved) with O(move=true) moves each Maildir to the new location by renames on the same file system,
    so file names, C(dovecot-uidlist), keywords and C(subscriptions) (UIDs, flags, folders, subscriptions) stay
    as they are. Dovecot and delivery must be stopped meanwhile (the dovecot role does it). A target that already
    holds messages stops the move before anything moves; merge such mailboxes with C(doveadm sync).
  - Locations are written the Dovecot 2.3 way, C(driver:path[:KEY=VALUE...]) with C(%d) (domain), C(%n)
    (local part), C(%u) (address) and C(~) (home); RV(settings_v24) gives the Dovecot 2.4 settings for it
    (U(https://doc.dovecot.org/2.4.0/installation/upgrade/2.3-to-2.4.html)).
options:
  mail_root:
    description: Directory under which the Maildirs are searched (to a depth of 6, not entering dot-directories).
    type: path
    default: /var/mail/vhosts
  location:
    description:
      - Wanted mail location, for example C(maildir:~/Maildir) or C(maildir:/var/mail/vhosts/%d/%n).
      - Empty keeps the location in use, or O(default_location) on a host without one.
    type: str
    default: ''
  home:
    description: Wanted userdb home template, for example C(/var/mail/vhosts/%d/%n). Empty keeps the one in use.
    type: str
    default: ''
  default_location:
    description: Location for a host whose Dovecot does not serve virtual users yet.
    type: str
    default: maildir:/var/mail/vhosts/%d/%n
  default_home:
    description: Home for a host whose Dovecot does not serve virtual users yet.
    type: str
    default: /var/mail/vhosts/%d/%n
  volatile_dir:
    description:
      - Directory template for Dovecot's volatile files (lock files, such as the duplicate database's
        C(.dovecot.lda-dupes.locks) that vacation replies use), for example C(/var/lib/vmail/volatile/%d/%n).
        Set as the C(VOLATILEDIR) option of RV(location) (2.4 C(mail_volatile_path) in RV(settings_v24)),
        replacing any the location had.
      - It holds no mail, so a change of it alone is not a change of location (no guard, nothing to move).
        With the home as the Maildir root it keeps lock directories out of the folder list.
      - Empty keeps the location's own C(VOLATILEDIR), if any.
    type: str
    default: ''
    version_added: "0.5.0"
  current_location:
    description:
      - The location in use, instead of reading it with C(doveconf). The dovecot role passes the value found
        before it replaced the configuration when it calls O(state=moved).
    type: str
  current_home:
    description: The home in use, instead of reading it with C(doveconf). Goes with O(current_location).
    type: str
  move:
    description:
      - The admin declares that mail moves to the new location. Without it, a change of location on a host with
        mail fails (see the guard above).
    type: bool
    default: false
  state:
    description:
      - C(inspected) only reads and decides (never changes anything).
      - C(moved) also moves the Maildirs (requires O(move=true)).
    type: str
    choices: [inspected, moved]
    default: inspected
  uid:
    description:
      - The uid that must own the existing Maildirs (the vmail account). A Maildir owned by another uid fails the
        module, because Dovecot would not open it; nothing is chowned. Directories created by a move get it.
    type: int
  gid:
    description: The gid for directories created by a move (see O(uid)).
    type: int
  doveconf:
    description: The C(doveconf) program.
    type: path
    default: doveconf
  config_file:
    description: Dovecot's main configuration file to read. Missing means no Dovecot is configured on this host.
    type: path
    default: /etc/dovecot/dovecot.conf
attributes:
  check_mode:
    support: full
    description: In check mode O(state=moved) reports the moves without making them.
author:
  - vmail.mailserver developers (@vmail)
notes:
  - Mail on disk is never deleted. A move replaces only entries at the target that hold no message (the empty
    skeleton Dovecot creates when a user logs in).
  - Maildirs that match neither the current nor the wanted location are returned in RV(orphans) and warned about
    (for example mail split by an earlier configuration); they are not touched.
'''

EXAMPLES = r'''
- name: Decide the mail location for the new Dovecot configuration
  vmail.mailserver.mail_store:
    mail_root: /var/mail/vhosts
    uid: 5000
  register: store

- name: Render it (Dovecot 2.3)
  ansible.builtin.debug:
    msg: "mail_location = {{ store.location }} / home {{ store.home }}"

- name: Move every Maildir from ~/Maildir into the home, with Dovecot stopped
  vmail.mailserver.mail_store:
    location: maildir:/var/mail/vhosts/%d/%n
    current_location: maildir:~/Maildir
    current_home: /var/mail/vhosts/%d/%n
    move: true
    state: moved
    uid: 5000
    gid: 5000
'''

RETURN = r'''
current:
  description: The location in use as read from C(doveconf) (or given), with where it came from.
  returned: always
  type: dict
  contains:
    location:
      description: Location in 2.3 form; null when none.
      type: str
    home:
      description: Home template; null when none or computed by an SQL userdb.
      type: str
    version:
      description: Dovecot configuration family (2.3 or 2.4); null without Dovecot.
      type: str
    userdb:
      description: Driver of the first userdb; null without one.
      type: str
    source:
      description: C(doveconf), C(given), C(unreadable) or C(none).
      type: str
    config_version:
      description: Dovecot 2.4 C(dovecot_config_version) of the configuration in use (setting defaults depend on it).
      type: str
    storage_version:
      description: Dovecot 2.4 C(dovecot_storage_version) of the configuration in use (storage formats depend on it).
      type: str
  sample: {location: "maildir:~/Maildir", home: "/var/mail/vhosts/%d/%n", version: "2.3", userdb: static,
           source: doveconf, config_version: null, storage_version: null}
location:
  description: The mail location the new configuration must use (2.3 form), with O(volatile_dir) if given.
  returned: always
  type: str
  sample: maildir:~/Maildir:VOLATILEDIR=/var/lib/vmail/volatile/%d/%n
home:
  description: The userdb home template the new configuration must use.
  returned: always
  type: str
  sample: /var/mail/vhosts/%d/%n
home_v24:
  description: RV(home) in Dovecot 2.4 syntax.
  returned: always
  type: str
  sample: "/var/mail/vhosts/%{user | domain}/%{user | username}"
settings_v24:
  description: The Dovecot 2.4 settings for RV(location), as [name, value] pairs (mail_driver, mail_home, mail_path ...).
  returned: always
  type: list
  elements: list
  sample: [[mail_driver, maildir], [mail_home, "/var/mail/vhosts/%{user | domain}/%{user | username}"],
           [mail_path, "%{home}/Maildir"]]
mail_path:
  description: The directory template each user's mail is read from (RV(location) with C(~) expanded).
  returned: always
  type: str
  sample: /var/mail/vhosts/%d/%n/Maildir
maildirs:
  description: Number of Maildirs found at the location in use (one per mailbox).
  returned: always
  type: int
  sample: 3
mailboxes:
  description: The addresses whose Maildir is at the location in use (at most 100).
  returned: always
  type: list
  elements: str
orphans:
  description: Maildirs under O(mail_root) that neither location serves (at most 100).
  returned: always
  type: list
  elements: str
leftover_lock_dirs:
  description:
    - With O(volatile_dir) and the home as the Maildir root, the duplicate database's lock directories
      (C(.dovecot.lda-dupes.locks)) that an older configuration left in the Maildirs, where mail clients list
      them as folders. Only those holding no message and no lock file (at most 100); the module does not
      remove them (the dovecot role does).
  returned: always
  type: list
  elements: str
  sample: [/var/mail/vhosts/example.com/email1/.dovecot.lda-dupes.locks]
  version_added: "0.5.0"
moves:
  description: Each Maildir to move (O(state=inspected)) or moved (O(state=moved)), with source and target.
  returned: always
  type: list
  elements: dict
  sample: [{user: email1@example.com, src: /var/mail/vhosts/example.com/email1/Maildir,
            dst: /var/mail/vhosts/example.com/email1}]
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_mailstore as store

CAP = 100
V24_DEFAULTED = ('mail_driver', 'mail_path', 'mail_home')


def read_current(module):
    """The location in use: given, read with doveconf, or none. Returns a dict (see RETURN current)."""
    p = module.params
    if p['current_location']:
        return dict(location=p['current_location'], home=p['current_home'] or p['default_home'], version=None,
                    userdb=None, source='given', virtual=True, config_version=None, storage_version=None)
    none = dict(location=None, home=None, version=None, userdb=None, source='none', virtual=False,
                config_version=None, storage_version=None)
    if not os.path.exists(p['config_file']):
        return none
    doveconf = module.get_bin_path(p['doveconf']) if '/' not in p['doveconf'] else p['doveconf']
    if not doveconf:
        return none
    rc, out, err = module.run_command([doveconf, '-n', '-c', p['config_file']])
    if rc != 0:
        return dict(none, source='unreadable', error=(err or out).strip())
    defaults = {}
    if store.doveconf_version(out) and not store.doveconf_version(out).startswith('2.3'):
        for name in V24_DEFAULTED:
            rc2, value, _err = module.run_command([doveconf, '-c', p['config_file'], '-h', name])
            if rc2 == 0 and value.strip():
                defaults[name] = value.strip()
    parsed = store.parse_doveconf(out, defaults)
    return dict(parsed, source='doveconf')


def decide(params, current):
    """The wanted home and location: given, else the ones in use, else the defaults."""
    keep = current['virtual'] and current['location'] and current['home']
    home = params['home'] or (current['home'] if keep else params['default_home'])
    location = params['location'] or (current['location'] if keep else params['default_location'])
    return home, location


def guard_message(current, home, location, plan, count):
    return ('Dovecot on this host serves mail from %s (mail location %s, home %s); the new configuration would '
            'serve it from %s (mail location %s, home %s). %d mailboxes found at the current location (e.g. %s) '
            'would look empty to their users. Nothing was changed. Keep the current location (leave '
            'dovecot_mail_location and dovecot_mail_home empty), or declare the move with '
            'dovecot_mail_location_move: true.'
            % (plan['current_path'], current['location'], current['home'], plan['wanted_path'], location, home,
               count, plan['at_current'][0]['path']))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mail_root=dict(type='path', default='/var/mail/vhosts'),
            location=dict(type='str', default=''),
            home=dict(type='str', default=''),
            default_location=dict(type='str', default='maildir:/var/mail/vhosts/%d/%n'),
            default_home=dict(type='str', default='/var/mail/vhosts/%d/%n'),
            volatile_dir=dict(type='str', default=''),
            current_location=dict(type='str'),
            current_home=dict(type='str'),
            move=dict(type='bool', default=False),
            state=dict(type='str', default='inspected', choices=['inspected', 'moved']),
            uid=dict(type='int'),
            gid=dict(type='int'),
            doveconf=dict(type='path', default='doveconf'),
            config_file=dict(type='path', default='/etc/dovecot/dovecot.conf'),
        ),
        required_by={'current_home': 'current_location'},
        supports_check_mode=True,
    )
    p = module.params
    if p['state'] == 'moved' and not p['move']:
        module.fail_json(msg='state=moved requires move=true (the admin declares the move)')
    current = read_current(module)
    maildirs = store.find_maildirs(p['mail_root'])
    if current['source'] == 'unreadable' and maildirs and not p['location']:
        module.fail_json(msg='The installed Dovecot configuration cannot be read (%s), and %d Maildirs exist under %s. '
                             'Set dovecot_mail_location and dovecot_mail_home to the layout they use; nothing was '
                             'changed.' % (current.get('error'), len(maildirs), p['mail_root']))
    if current['virtual'] and not current['home'] and maildirs and not p['home']:
        module.fail_json(msg='The installed Dovecot takes each user\'s home from its %s userdb, which this module '
                             'cannot read; %d Maildirs exist under %s. Set dovecot_mail_home (and '
                             'dovecot_mail_location) to the layout in use; nothing was changed.'
                             % (current['userdb'], len(maildirs), p['mail_root']))
    home, location = decide(p, current)
    try:
        location = store.with_volatile_dir(location, p['volatile_dir'])
        settings_v24 = store.location_to_v24(location, home)
        known = current if (current['virtual'] and current['location'] and current['home']) else None
        plan = store.plan(maildirs, known, dict(home=home, location=location))
    except store.MailStoreError as exc:
        module.fail_json(msg=str(exc))
    count = len(plan['at_current'])
    if plan['changes'] and count and not p['move']:
        module.fail_json(msg=guard_message(current, home, location, plan, count), current=current,
                         maildirs=count, moves=plan['moves'][:CAP])
    if p['uid'] is not None:
        owners = [(m['path'], os.stat(m['path']).st_uid) for m in plan['at_current']]
        wrong = [(path, uid) for path, uid in owners if uid != p['uid']]
        if wrong:
            module.fail_json(msg='%d Maildirs belong to another uid than the vmail account\'s %d (e.g. %s is owned by '
                                 'uid %d); Dovecot would not open them. Set dovecot_vmail_uid/dovecot_vmail_gid to '
                                 'the owner in use; the role does not chown mail.'
                                 % (len(wrong), p['uid'], wrong[0][0], wrong[0][1]))
    for orphan in plan['orphans'][:10]:
        module.warn('%s is a Maildir that neither the current nor the new mail location serves; it is left as it '
                    'is (mail split by an earlier configuration? see the dovecot role README)' % orphan)
    moves = plan['moves'] if count and plan['changes'] else []
    changed = False
    if p['state'] == 'moved' and moves:
        try:
            for item in moves:
                store.move_entries(item['src'], item['dst'])  # all checked before the first rename
        except store.MailStoreError as exc:
            module.fail_json(msg='%s. Nothing was moved.' % exc)
        changed = True
        if not module.check_mode:
            for item in moves:
                item['mode'] = store.move_maildir(item['src'], item['dst'], p['uid'], p['gid'])
    leftover = []
    if p['volatile_dir'] and plan['wanted_path'] == store.effective_path(home, '~'):
        leftover = store.leftover_lock_dirs([m['path'] for m in plan['at_current']])
    current_out = dict((k, current.get(k)) for k in ('location', 'home', 'version', 'userdb', 'source',
                                                     'config_version', 'storage_version'))
    module.exit_json(changed=changed, current=current_out, location=location, home=home,
                     home_v24=store.to_v24(home), settings_v24=[list(s) for s in settings_v24],
                     mail_path=plan['wanted_path'], maildirs=count,
                     mailboxes=[m['user'] for m in plan['at_current']][:CAP], orphans=plan['orphans'][:CAP],
                     moves=moves[:CAP], leftover_lock_dirs=leftover[:CAP])


if __name__ == '__main__':
    main()
