"""postscreen(8) on port 25 and Postfix's AUTH rate limit (issue #9, items 3 and 6).

The test host's own address is the client of every other test: it has passed postscreen
(vmailtest.MailServer.pass_postscreen) and is exempt from the rate limits in this scenario's
inventory, like an admin's own network. A *new* client is played from inside the container: a
connection to the container's own eth0 address comes from that address, which is outside
``mynetworks`` and unknown to postscreen.
"""

import json
import shlex

import pytest

# Runs inside the container (python3 is there for Ansible). Prints one JSON result.
CLIENT = r'''
import json, smtplib, socket, ssl, sys, time

ip, what = sys.argv[1], sys.argv[2]


def reply(f):
    """One SMTP reply: (code, last line)."""
    while True:
        line = f.readline().decode()
        if not line:
            return (0, "connection closed")
        if line[3:4] != "-":
            return (int(line[:3]), line.strip())


def pregreet():
    """Talk before the 220 greeting, then go on to RCPT."""
    s = socket.create_connection((ip, 25), 30)
    s.sendall(b"EHLO pregreet.example.org\r\n")
    f = s.makefile("rb")
    out = {"banner": reply(f)}
    # postscreen reads and logs what came before the greeting; it is not answered.
    s.sendall(b"EHLO pregreet.example.org\r\n")
    out["ehlo"] = reply(f)
    s.sendall(b"MAIL FROM:<someone@outside.test>\r\n")
    out["mail"] = reply(f)
    s.sendall(b"RCPT TO:<alice@example.com>\r\n")
    out["rcpt"] = reply(f)
    s.sendall(b"QUIT\r\n")
    s.close()
    return out


def clean():
    """A well-behaved client up to RCPT (no DATA: nothing is delivered)."""
    with smtplib.SMTP(ip, 25, local_hostname="newclient.example.org", timeout=30) as conn:
        conn.ehlo()
        conn.mail("someone@outside.test")
        return {"rcpt": list(conn.rcpt("alice@example.com"))}


def logins(count, user, password):
    """*count* successful submission logins in a row; the replies of each AUTH."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    codes = []
    for _ in range(count):
        with smtplib.SMTP(ip, 587, local_hostname="newclient.example.org", timeout=30) as conn:
            conn.starttls(context=ctx)
            conn.ehlo()
            try:
                conn.login(user, password)
                codes.append([235, "ok"])
            except smtplib.SMTPResponseException as exc:
                codes.append([exc.smtp_code, exc.smtp_error.decode()])
    return {"logins": codes}


if what == "pregreet":
    print(json.dumps({k: list(v) for k, v in pregreet().items()}, default=str))
elif what == "clean":
    print(json.dumps(clean(), default=str))
else:
    print(json.dumps(logins(int(sys.argv[3]), sys.argv[4], sys.argv[5])))
'''


def own_address(host):
    """The container's eth0 address: a client outside mynetworks when it connects to itself."""
    addr = host.check_output("hostname -I").split()[0]
    assert addr and not addr.startswith("127."), addr
    return addr


def run_client(host, *args):
    cmd = "python3 -c " + shlex.quote(CLIENT) + " " + " ".join(shlex.quote(str(a)) for a in args)
    result = host.run(cmd)
    assert result.rc == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def new_client(host, mail):
    """A client address postscreen has not met: its cache is emptied (then the test host passes again)."""
    host.check_output("systemctl stop postfix && rm -f /var/lib/postfix/postscreen_cache.db"
                      " && systemctl start postfix")
    host.check_output("for i in $(seq 1 50); do postfix status >/dev/null 2>&1 && exit 0; sleep 0.2; done; exit 1")
    mail.pass_postscreen()
    return own_address(host)


def test_postscreen_guards_port_25_only(host):
    services = host.check_output("postconf -M")
    smtp_inet = [line for line in services.splitlines() if line.split()[:2] == ["smtp", "inet"]]
    assert smtp_inet and smtp_inet[0].split()[-1] == "postscreen", services
    assert any(line.split()[:2] == ["smtpd", "pass"] for line in services.splitlines())
    submission = [line for line in services.splitlines() if line.split()[:2] == ["submission", "inet"]]
    assert submission and "smtpd" in submission[0].split(), submission


def test_empty_dnsbl_list_renders_as_no_dnsbl(host):
    """Issue #20: with no DNSBL sites (postfix_dns_checks false here) main.cf said
    ``postscreen_dnsbl_sites = None`` (a Python None rendered as a DNSBL name). Postfix must see an
    empty list, and no main.cf line may carry a Python None."""
    assert host.check_output("postconf -h postscreen_dnsbl_sites").strip() == ""
    lines = host.file("/etc/postfix/main.cf").content_string.splitlines()
    assert not [line for line in lines if line.rstrip().endswith("= None")]


def test_pregreet_client_refused_then_clean_client_passes_on_retry(host, new_client):
    """Pregreet: 550 5.5.1 at RCPT; a clean new client: 450 4.3.2 once, then smtpd's 250."""
    talker = run_client(host, new_client, "pregreet")
    assert talker["rcpt"][0] == 550 and "5.5.1" in talker["rcpt"][1], talker
    log = host.check_output("journalctl --since '-5min' --no-pager | grep -F 'PREGREET' || true")
    assert f"[{new_client}]" in log, log
    first = run_client(host, new_client, "clean")
    assert first["rcpt"][0] == 450 and "4.3.2" in first["rcpt"][1], first
    retry = run_client(host, new_client, "clean")
    assert retry["rcpt"][0] == 250, retry


def test_auth_rate_limit_blocks_one_client_not_another(host, mail, new_client):
    """More AUTH commands than postfix_smtpd_client_auth_rate_limit per minute: 4xx for that address only."""
    limit = int(mail.vars.get("postfix_smtpd_client_auth_rate_limit", 30))
    assert limit > 0
    result = run_client(host, new_client, "logins", limit + 2, "bob@example.com", mail.password("bob@example.com"))
    codes = [code for code, _text in result["logins"]]
    assert codes[:limit] == [235] * limit, result
    assert codes[-1] // 100 == 4 and "too many AUTH" in result["logins"][-1][1], result
    # The test host (another address, exempt here like the admin's own network) still logs in.
    with mail.submission("bob@example.com") as smtp:
        assert smtp.noop()[0] == 250
