# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""End the open sessions of mailboxes whose access was taken away (``doveadm kick``).

Which mailboxes: :func:`vmail_accounts.users_to_kick` (pure, from the plan). This file only runs
``doveadm kick <user>`` (an argument list, never a shell string) on the host the module runs on.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

# doveadm's exit code when no session matched (EX_NOUSER/DOVEADM_EX_NOTFOUND): nothing was open.
DOVEADM_EX_NOTFOUND = 68


def kick(module, users):
    """Run ``doveadm kick`` for each of ``users``; return (kicked, warnings). Never fails the module.

    Without doveadm on this host (the module talks to a database from another machine), nothing
    is run and one warning names the mailboxes whose sessions stay open.
    """
    if not users:
        return [], []
    doveadm = module.get_bin_path('doveadm')
    if not doveadm:
        return [], ['doveadm is not installed on this host, so the open IMAP/POP3/ManageSieve sessions of %s were '
                    'not ended; run the module on the mail host or run "doveadm kick <user>" there'
                    % ', '.join(users)]
    kicked, warnings = [], []
    for user in users:
        argv = [doveadm, 'kick'] + (['--'] if user.startswith('-') else []) + [user]
        rc, _out, err = module.run_command(argv)
        if rc in (0, DOVEADM_EX_NOTFOUND):
            kicked.append(user)
        else:
            warnings.append('doveadm kick %s failed (exit %d): %s' % (user, rc, (err or '').strip()[:200]))
    return kicked, warnings


def end_sessions(module, result):
    """After the commit: ``doveadm kick`` the mailboxes in ``result['kicked']``, as the modules return them.

    Nothing runs in check mode (``kicked`` then lists those that would be kicked). Replaces
    ``result['kicked']`` with the mailboxes actually kicked and turns every failure into a warning.
    """
    if module.check_mode or not result['kicked']:
        return
    result['kicked'], warnings = kick(module, result['kicked'])
    for warning in warnings:
        module.warn(warning)
