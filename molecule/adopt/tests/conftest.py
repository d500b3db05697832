"""Fixtures for the adoption scenario; shares the helpers of the default scenario."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "default" / "tests"))

from vmailtest import MailServer  # noqa: E402


class GuideServer(MailServer):
    """A guide-built server: the accounts and passwords the guide created."""

    def __init__(self, host):
        super().__init__(host)
        self.revision = str(self.vars["guide_revision"])
        self.accounts = dict(self.vars["guide_accounts"])
        # Where the guide's Dovecot keeps the mail of local part n in domain d.
        self.mail_dir_template = ("/var/mail/vhosts/{d}/{n}/Maildir" if self.revision == "2013"
                                  else "/var/mail/vhosts/{d}/{n}")

    def password(self, email):
        return self.accounts[email]

    def mail_dir(self, email):
        local, domain = email.split("@")
        return self.mail_dir_template.format(d=domain, n=local)

    def login(self, email):
        imap = self.imaps()
        typ, _data = imap.login(email, self.password(email))
        assert typ == "OK"
        return imap


@pytest.fixture(scope="module")
def mail(host):
    """Client-side view of the adopted server."""
    return GuideServer(host)
