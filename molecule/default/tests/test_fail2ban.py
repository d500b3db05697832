"""Login throttling with fail2ban (issue #9 item 3): repeated failures ban one address, not others.

The clients run inside the container and choose their source address on the loopback: in this
scenario only 127.0.0.1 of that range is in fail2ban_ignoreip (with the test host, the admin), so
127.0.0.3 and 127.0.0.4 play password guessers and 127.0.0.2 an innocent user elsewhere. After
fail2ban_maxretry failures the guesser's next connection is refused on every port (nftables), the
innocent address and the test host still log in.
"""

import json
import shlex
import time

import pytest

CLIENT = r'''
import imaplib, json, smtplib, socket, ssl, sys

kind, src, user, password, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 15
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


class IMAP(imaplib.IMAP4_SSL):
    """IMAPS from a chosen source address."""
    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout, source_address=(src, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


def attempt():
    try:
        if kind == "smtp":
            with smtplib.SMTP("127.0.0.1", 587, local_hostname="client.example.org", timeout=timeout,
                              source_address=(src, 0)) as conn:
                conn.starttls(context=ctx)
                conn.ehlo()
                conn.user, conn.password = user, password
                try:
                    conn.auth("PLAIN", conn.auth_plain)     # one AUTH, one failure (login() tries each mechanism)
                    return "ok"
                except smtplib.SMTPAuthenticationError:
                    return "refused"
        imap = IMAP("127.0.0.1", 993, ssl_context=ctx, timeout=timeout)
        try:
            imap.login(user, password)
            imap.logout()
            return "ok"
        except imaplib.IMAP4.error:
            return "refused"
    except (OSError, smtplib.SMTPServerDisconnected) as exc:
        return "blocked: " + type(exc).__name__


print(json.dumps([attempt() for _ in range(count)]))
'''

USER = "bob@example.com"
GUESSERS = {"postfix-sasl": ("smtp", "127.0.0.3"), "dovecot": ("imap", "127.0.0.4")}
NEIGHBOUR = "127.0.0.2"


def attempts(host, kind, src, password, count=1, user=USER, timeout=15):
    """*count* logins as *user* from *src*, each "ok", "refused" or "blocked: <error>"; *timeout* seconds each."""
    cmd = "python3 -c " + " ".join(shlex.quote(str(a)) for a in (CLIENT, kind, src, user, password, count, timeout))
    result = host.run(cmd)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


def total_failed(host, jail):
    """The jail's "Total failed" counter (lines its filter matched since fail2ban started)."""
    out = host.check_output(f"fail2ban-client status {jail}")
    line = [x for x in out.splitlines() if "Total failed:" in x]
    return int(line[0].split(":", 1)[1]) if line else 0


def banned(host, jail):
    out = host.check_output(f"fail2ban-client status {jail}")
    line = [x for x in out.splitlines() if "Banned IP list:" in x]
    return line[0].split(":", 1)[1].split() if line else []


@pytest.fixture
def clean_bans(host):
    host.run("fail2ban-client unban --all")
    yield
    host.run("fail2ban-client unban --all")


def test_jails_read_the_journal_and_spare_the_admin(host, mail):
    status = host.check_output("fail2ban-client status")
    assert "postfix-sasl" in status and "dovecot" in status, status
    for jail in GUESSERS:
        ignored = host.check_output(f"fail2ban-client get {jail} ignoreip")
        assert "127.0.0.1" in ignored and "127.0.0.2" not in ignored, ignored
        assert host.check_output(f"fail2ban-client get {jail} maxretry") == str(mail.vars["fail2ban_maxretry"])


@pytest.mark.parametrize("jail", sorted(GUESSERS))
def test_repeated_failures_ban_that_address_only(host, mail, jail, clean_bans):
    kind, guesser = GUESSERS[jail]
    maxretry = int(mail.vars["fail2ban_maxretry"])
    counted = total_failed(host, jail)
    failures = attempts(host, kind, guesser, "not-the-password", maxretry)
    # The last may be cut off by the ban itself: Dovecot logs the verdict (which the dovecot jail
    # counts) at once but answers only after its auth penalty of a few seconds.
    assert failures[:-1] == ["refused"] * (maxretry - 1), failures
    assert failures[-1] == "refused" or failures[-1].startswith("blocked"), failures
    # SMTP AUTH failures are counted by the postfix-sasl jail (Postfix's lines) and by the dovecot
    # jail (Dovecot's verdicts): whichever reaches maxretry first bans the address.
    jails = [jail, "dovecot"] if kind == "smtp" else [jail]
    deadline = time.time() + 30
    while not any(guesser in banned(host, name) for name in jails) and time.time() < deadline:
        time.sleep(1)
    assert any(guesser in banned(host, name) for name in jails), \
        "\n".join(host.check_output(f"fail2ban-client status {name}") for name in jails)
    # The service's own jail counted the failures too (at least the first two, which Dovecot's
    # auth penalty does not delay past Postfix's wait).
    assert total_failed(host, jail) >= counted + min(2, maxretry), host.check_output(f"fail2ban-client status {jail}")
    # Banned from every port: the right password does not help, on either service.
    for service in ("smtp", "imap"):
        outcome = attempts(host, service, guesser, mail.password(USER))
        assert outcome[0].startswith("blocked"), (service, outcome)
    # Another address, and the test host, still log in.
    assert attempts(host, kind, NEIGHBOUR, mail.password(USER)) == ["ok"]
    assert mail.imap_login(USER) == "OK"
    with mail.submission(USER) as smtp:
        assert smtp.noop()[0] == 250
    # Unbanned (here by hand, from every jail that banned it; after fail2ban_bantime by fail2ban),
    # the address logs in again.
    host.check_output(f"fail2ban-client unban {guesser}")
    assert attempts(host, kind, guesser, mail.password(USER)) == ["ok"]
