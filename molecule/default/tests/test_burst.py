"""A burst of parallel SMTP sessions (issue #20): the database connection budget holds.

65 sessions open at once, 45 on port 25 from an outside sender and 20 authenticated on 587,
each sends one message once all are connected; then 10 ordinary messages. Every reply must be
2xx (no 4.3.0 "Temporary lookup failure"), every accepted message delivered exactly once, and
MariaDB must never have run out of connections: Max_used_connections stays below
max_connections and the lookup account never holds more connections than the budget the roles
promise (filter vmail.mailserver.db_connections, docs/scaling.md).
"""

import json
import os
import smtplib
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from vmailtest import make_message

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", ".cache", "collections"))
from ansible_collections.vmail.mailserver.plugins.filter.db_connections import host_budget  # noqa: E402

INBOUND = 45
SUBMISSIONS = 20
RECIPIENTS = ["alice@example.com", "bob@example.com", "carol@example.net", "dave@example.net"]
SENDERS = ["alice@example.com", "bob@example.com", "carol@example.net", "dave@example.net"]
OUTSIDE_SENDER = "burst@outside.example.org"


def _sql(host, query):
    """One value from MariaDB as root (unix socket authentication)."""
    out = host.check_output("mariadb -N -B -e %s", query)
    return out.split("\t")[-1].strip()


def _copies(host, tokens):
    """How many files under the Maildirs hold each token (one Python run on the server)."""
    script = (
        "import json,os,sys\n"
        "toks=json.loads(sys.argv[1]); n=dict.fromkeys(toks,0)\n"
        "for root,_d,files in os.walk('/var/mail/vhosts'):\n"
        "  if os.path.basename(root) not in ('new','cur'): continue\n"
        "  for f in files:\n"
        "    data=open(os.path.join(root,f),'rb').read().decode('latin-1')\n"
        "    for t in toks:\n"
        "      if t in data: n[t]+=1\n"
        "print(json.dumps(n))\n"
    )
    return json.loads(host.check_output("python3 -c %s %s", script, json.dumps(tokens)))


def _wait_delivered(host, tokens, timeout=120):
    deadline = time.time() + timeout
    counts = _copies(host, tokens)
    while time.time() < deadline and any(v == 0 for v in counts.values()):
        time.sleep(2)
        counts = _copies(host, tokens)
    time.sleep(2)  # a duplicate would arrive with or just after the first copy
    return _copies(host, tokens)


def _session(mail, kind, index, barrier):
    """One SMTP session: connect (and log in), wait for all others, then send one message.

    Returns (token or None, list of (stage, code, text)) where code is the SMTP reply code.
    """
    replies = []
    rcpt = RECIPIENTS[index % len(RECIPIENTS)]
    sender = OUTSIDE_SENDER if kind == "inbound" else SENDERS[index % len(SENDERS)]
    token, msg = make_message(sender, rcpt, subject=f"burst {kind} {index}")
    conn = None
    try:
        conn = mail.smtp(25) if kind == "inbound" else mail.submission(sender)
        barrier.wait(timeout=60)
        code, text = conn.mail(sender)
        replies.append(("MAIL", code, text))
        if code == 250:
            code, text = conn.rcpt(rcpt)
            replies.append(("RCPT", code, text))
        if code == 250:
            code, text = conn.data(msg.as_bytes())
            replies.append(("DATA", code, text))
    except threading.BrokenBarrierError:
        replies.append(("BARRIER", 0, b"not every session connected within 60 s"))
    except smtplib.SMTPResponseException as exc:
        replies.append(("SESSION", exc.smtp_code, exc.smtp_error))
    except (smtplib.SMTPException, OSError) as exc:
        replies.append(("SESSION", 0, str(exc).encode()))
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
    accepted = bool(replies) and replies[-1][0] == "DATA" and replies[-1][1] == 250
    return (token if accepted else None), replies


def test_burst_of_65_sessions_gets_no_temporary_failure(host, mail):
    budget = host_budget(mail.name, mail.vars)["total"]
    max_connections = int(_sql(host, "SELECT @@GLOBAL.max_connections"))
    assert max_connections > budget, f"max_connections {max_connections} is not above the budget {budget}"
    host.check_output("mariadb -e 'FLUSH STATUS'")

    peak = {"lookup": 0, "refused": 0}
    stop = threading.Event()
    lookup_user = mail.vars.get("mailsql_lookup_user", "mailuser")

    def watch():
        query = f"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='{lookup_user}'"
        while not stop.is_set():
            res = host.run("mariadb -N -B -e %s", query)
            if res.rc == 0:
                peak["lookup"] = max(peak["lookup"], int(res.stdout.strip()))
            else:  # e.g. 1040 Too many connections: the budget did not hold
                peak["refused"] += 1
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    kinds = ["inbound"] * INBOUND + ["submission"] * SUBMISSIONS
    barrier = threading.Barrier(len(kinds))
    try:
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            results = list(pool.map(lambda a: _session(mail, a[1], a[0], barrier), enumerate(kinds)))
        # Then ordinary mail, one message at a time, as right after the burst in issue #20.
        for index in range(10):
            results.append(_session(mail, "inbound", 1000 + index, threading.Barrier(1)))
    finally:
        stop.set()
        watcher.join(timeout=10)

    assert peak["refused"] == 0, f"MariaDB refused the watcher {peak['refused']} times during the burst"
    failures = [(i, r) for i, (tok, replies) in enumerate(results) if tok is None for r in replies[-1:]]
    assert not failures, f"{len(failures)} of {len(results)} sessions were not accepted: {failures[:5]}"
    tokens = [tok for tok, _replies in results]
    counts = _wait_delivered(host, tokens)
    wrong = {t: n for t, n in counts.items() if n != 1}
    assert not wrong, f"{len(wrong)} of {len(tokens)} messages not delivered exactly once: {list(wrong.items())[:5]}"

    max_used = int(_sql(host, "SHOW GLOBAL STATUS LIKE 'Max_used_connections'"))
    print(f"burst on {mail.name}: {len(tokens)} accepted and delivered once; lookup account peak "
          f"{peak['lookup']} of budget {budget}; Max_used_connections {max_used} of {max_connections}")
    assert max_used < max_connections, f"Max_used_connections {max_used} reached max_connections {max_connections}"
    assert 0 < peak["lookup"] <= budget, (
        f"the lookup account held {peak['lookup']} connections, the budget is {budget}")
