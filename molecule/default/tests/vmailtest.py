"""Shared helpers for the Molecule verifiers (testinfra); conftest.py makes the fixtures.

The tests talk to the mail server the way a remote client does: from the test
host to 127.0.0.1:<published port> (docs/design.md), so the server sees a
client outside ``mynetworks``. Inside checks (Maildir contents, postmap) go
through testinfra's ``host`` fixture.
"""

import base64
import imaplib
import os
import pathlib
import poplib
import smtplib
import socket
import ssl
import subprocess
import time
import uuid
from email.message import EmailMessage

import pytest

# Published port = base + service port (see molecule.yml and docs/design.md).
PORT_BASE = {"vmail-debian12": 12000, "vmail-debian13": 13000, "vmail-demo": 10000,
             "adopt-debian12": 14000, "adopt-debian13": 15000,
             "adoptnew-debian12": 16000, "adoptnew-debian13": 17000,
             "vmail-quick-debian12": 18000, "fw-debian12": 19000, "vmail-acme-debian12": 19500}
TIMEOUT = 30  # seconds for any network operation


class MailServer:
    """Client-side view of one Molecule platform."""

    def __init__(self, host):
        self.host = host
        self.name = host.backend.get_hostname()
        self.base = PORT_BASE[self.name]
        self.vars = host.ansible.get_variables()
        self.hostname = self.vars.get("postfix_myhostname", "mail.example.com")
        # Default scenario: a certificate from the scenario's test CA (prepare.yml)
        # naming 127.0.0.1 too, so clients verify chain and name. Otherwise the
        # roles' self-signed certificate (or the host's own, when given): trusted as such, name not checked.
        ca_file = pathlib.Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "pki" / "ca.crt"
        if self.vars.get("postfix_tls_cert_file") and ca_file.exists():
            self.ca_file = str(ca_file)
            self._ca_pem = ca_file.read_text()
            self._check_name = True
        else:
            cert = host.file(self.vars.get("dovecot_tls_cert_file") or "/etc/vmail/tls/mail.crt")
            self.ca_file = None
            self._ca_pem = cert.content_string if cert.exists else None
            self._check_name = False

        self.pass_postscreen()

    def port(self, service_port):
        return self.base + service_port

    def pass_postscreen(self):
        """Let postscreen(8) on port 25 meet this test client once, as a real MTA's first retry would.

        With the deep protocol tests on (postfix_postscreen_deep_protocol_tests), a client seen for
        the first time is told 450 4.3.2 at RCPT and reaches smtpd on its next connection. Every test
        that talks to port 25 expects smtpd, so the client goes through that first session here (MAIL
        and RCPT, no DATA: nothing is sent). A client that has passed reaches smtpd at once, so this
        session is then an ordinary one, ended before DATA.
        """
        try:
            with smtplib.SMTP("127.0.0.1", self.port(25), local_hostname="client.example.org",
                              timeout=TIMEOUT) as conn:
                conn.ehlo()
                conn.mail("")
                conn.rcpt(f"postmaster@{self.hostname}")
        except (smtplib.SMTPException, OSError):
            pass  # a server that is down is reported by the tests themselves

    def users(self):
        """mailsql_users followed by the mailsql_users__* parts, as the mailsql role merges them."""
        users = list(self.vars.get("mailsql_users", []))
        for name in sorted(k for k in self.vars if k.startswith("mailsql_users__")):
            users += self.vars[name]
        return users

    def password(self, email):
        for user in self.users():
            if user["email"] == email:
                return user["password"]
        raise KeyError(email)

    def client_context(self):
        """A client TLS context that verifies the server like a careful mail client."""
        ctx = ssl.create_default_context()
        if self._ca_pem:
            ctx.load_verify_locations(cadata=self._ca_pem)
        ctx.check_hostname = self._check_name
        return ctx

    # --- SMTP -----------------------------------------------------------
    def smtp(self, service_port=25):
        conn = smtplib.SMTP("127.0.0.1", self.port(service_port), local_hostname="client.example.org",
                            timeout=TIMEOUT)
        conn.ehlo()
        return conn

    def submission(self, email, service_port=587):
        """Authenticated session on 587 (STARTTLS) or 465 (implicit TLS)."""
        if service_port == 465:
            conn = smtplib.SMTP_SSL("127.0.0.1", self.port(465), local_hostname="client.example.org",
                                    timeout=TIMEOUT, context=self.client_context())
            conn.ehlo()
        else:
            conn = self.smtp(service_port)
            conn.starttls(context=self.client_context())
            conn.ehlo()
        conn.login(email, self.password(email))
        return conn

    # --- IMAP / POP3 ----------------------------------------------------
    def imaps(self):
        return imaplib.IMAP4_SSL("127.0.0.1", self.port(993), ssl_context=self.client_context(),
                                 timeout=TIMEOUT)

    def imap_login(self, email):
        """Log in over IMAPS with *email*'s password from inventory; return the status (``OK``)."""
        imap = self.imaps()
        try:
            return imap.login(email, self.password(email))[0]
        finally:
            imap.logout()

    def pop3s(self):
        return poplib.POP3_SSL("127.0.0.1", self.port(995), context=self.client_context(), timeout=TIMEOUT)

    # --- Maildir --------------------------------------------------------
    def maildir_grep(self, email, token, folder=""):
        local, domain = email.split("@")
        path = f"/var/mail/vhosts/{domain}/{local}"
        sub = f"/.{folder}" if folder else ""
        cmd = host_grep_cmd(f"{path}{sub}", token)
        return self.host.run(cmd)

    def wait_delivered(self, email, token, timeout=40):
        """Poll until a message with *token* is in *email*'s Maildir; return True/False."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.maildir_grep(email, token).rc == 0:
                return True
            time.sleep(1)
        return False


def host_grep_cmd(path, token):
    return f"grep -rlF -- '{token}' {path}/new {path}/cur"


def make_message(sender, recipient, subject=None):
    token = f"vmail-test-{uuid.uuid4().hex}"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject or token
    msg["Message-ID"] = f"<{token}@client.example.org>"
    msg.set_content(f"Test message {token}\n")
    return token, msg


def banner(port, timeout=5):
    """The first bytes a server sends on 127.0.0.1:*port*, or None when nothing answers.

    Docker's proxy accepts connections on every published port even when nothing
    listens inside the container, so "the TCP connect worked" proves nothing;
    a greeting does.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = sock.recv(200)
            return data or None
    except OSError:
        return None


def dkim_private_key_texts(host, key_dir="/var/lib/rspamd/dkim"):
    """Pieces of text that only the DKIM private keys in *key_dir* hold, to look for where no key
    may be (logs, /tmp, the journal, the process list, Ansible output).

    Per ``*.key`` file (rspamd's own: PEM for RSA, one base64 line of seed and public key for
    ed25519): every full line of an RSA key's second half (its private exponent and primes; the
    first lines carry the public modulus) or the seed part of an ed25519 line, plus a piece of the
    base64 of the whole file (how ``slurp`` or ``b64encode`` would show it). A leaked key holds
    them all; a leaked line of its second half is one of them. Never put them in an assert's
    operands: pytest prints those when it fails.
    """
    texts = []
    for path in host.check_output(f"find {key_dir} -maxdepth 1 -name '*.key' | sort").split():
        body = host.check_output(f"cat {path}")
        lines = [line for line in body.splitlines() if line and not line.startswith("-----")]
        if len(lines) > 1:      # PEM (RSA): the full 64-character lines of the second half
            texts += [line for line in lines[len(lines) // 2:] if len(line) == 64]
        else:                   # rspamd's ed25519 key: base64 of the 32-byte seed, then the public key
            texts.append(lines[0][:40])
        encoded = base64.b64encode((body + "\n").encode()).decode()
        texts.append(encoded[len(encoded) // 2:len(encoded) // 2 + 40])
    assert all(len(t) >= 40 for t in texts), "unexpected DKIM key format"
    return texts


PROJECT_DIR = pathlib.Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", pathlib.Path(__file__).resolve().parents[3]))


def molecule_inventory():
    """The inventory Molecule generated for this scenario (group_vars linked in)."""
    ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not ephemeral:
        pytest.skip("not running under Molecule (MOLECULE_EPHEMERAL_DIRECTORY unset)")
    return str(pathlib.Path(ephemeral) / "inventory")


def run_playbook(host, playbook, *args, timeout=900):
    """Run a playbook against this platform only; return the CompletedProcess.

    *playbook* is a name in playbooks/ ("site.yml") or a path from the project root.
    """
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = f"{PROJECT_DIR}/.cache/collections:{env.get('HOME', '/root')}/.ansible/collections"
    env["ANSIBLE_CONFIG"] = str(PROJECT_DIR / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    path = PROJECT_DIR / playbook if "/" in playbook else PROJECT_DIR / "playbooks" / playbook
    cmd = ["ansible-playbook", "-i", molecule_inventory(), str(path),
           "--limit", host.backend.get_hostname(), *args]
    return subprocess.run(cmd, cwd=str(PROJECT_DIR), env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def recap_counts(output, hostname):
    """Parse ``PLAY RECAP`` counters (ok, changed, failed, ...) for *hostname*."""
    for line in output.splitlines():
        if line.startswith(hostname) and "changed=" in line:
            return {k: int(v) for k, v in (f.split("=") for f in line.split()[2:] if "=" in f)}
    raise AssertionError(f"no PLAY RECAP line for {hostname} in output:\n{output[-3000:]}")


def group_by_platform(items):
    """Mark each test with an ``xdist_group`` named after the platform it runs on.

    With pytest-xdist's ``--dist loadgroup`` (molecule.yml: ``n: 2``) every platform's tests
    then run in one worker of their own, in collection order: the platforms are verified side
    by side, and the tests of one platform (which restart its services, re-run its roles and
    fill its mailboxes) never overlap. Without xdist the marker does nothing.
    """
    for item in items:
        name = platform_of(item)
        if name:
            item.add_marker(pytest.mark.xdist_group(name))


def outside_name(name):
    """The partner container of mail platform *name* (molecule.yml, group ``outside``): the platform's
    name with ``-outside-`` before its last part (``vmail-debian12`` -> ``vmail-outside-debian12``,
    ``vmail-acme-debian12`` -> ``vmail-acme-outside-debian12``)."""
    prefix, rest = name.rsplit("-", 1)
    return f"{prefix}-outside-{rest}"


def is_outside(name):
    """Whether platform *name* is an outside partner rather than a mail server."""
    return "-outside-" in name


def platform_of(item):
    """The name of the testinfra host a collected test runs on ("" when it has none)."""
    callspec = getattr(item, "callspec", None)
    host = callspec.params.get("_testinfra_host") if callspec else None
    backend = getattr(host, "backend", None)
    return backend.get_hostname() if backend is not None else ""
