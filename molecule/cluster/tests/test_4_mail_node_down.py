"""One mail node stopped: the other node's users are unaffected; mail for the stopped node's
users sent to the surviving node is queued (no 5xx, no bounce) and delivered exactly once after
the node returns. File order: the first test stops mail2, the last starts it again."""

from clustertest import (container, docker, imap_count, inventory_address, maildir_count, new_token, node, queue,
                         send, wait_delivered, wait_for, wait_services)

TOKENS = {}


def test_stop_mail2():
    docker("stop", container("mail2"))


def test_users_on_the_other_node_unaffected():
    token = new_token()
    send("db3", "mail1", "alice@example.com", token)
    assert wait_delivered("mail1", "alice@example.com", token) == 1
    assert imap_count("db3", "mail1", "alice@example.com", token) == 1


def test_mail_for_the_stopped_node_is_queued_not_bounced():
    token = TOKENS["bob"] = new_token()
    send("db3", "mail1", "bob@example.net", token, sender="sender@outside.test")

    def deferred():
        entries = [q for q in queue("mail1") if any(r["address"] == "bob@example.net" for r in q["recipients"])]
        return entries if entries and all(q["queue_name"] == "deferred" for q in entries) else None
    entries = wait_for(deferred, what="the message to be deferred on mail1")
    assert len(entries) == 1, entries
    # nothing bounced: no delivery status notification queued or logged
    assert not [q for q in queue("mail1") if q["sender"] == ""], queue("mail1")
    log = node("mail1").run("journalctl --no-pager -q --since '-10min' | grep -F 'to=<bob@example.net>'").stdout
    assert "status=bounced" not in log, log


def test_start_mail2_and_the_queued_mail_arrives_once():
    docker("start", container("mail2"))
    wait_services("mail2", ["postfix", "dovecot"])
    lmtp = f"tcp://{inventory_address('mail2')}:24"
    wait_for(lambda: node("mail2").socket(lmtp).is_listening, what="LMTP on mail2")
    node("mail1").check_output("postqueue -f")
    token = TOKENS["bob"]
    assert wait_delivered("mail2", "bob@example.net", token, timeout=120) == 1
    node("mail1").check_output("postqueue -f")
    wait_for(lambda: not queue("mail1"), what="mail1's queue to empty")
    assert maildir_count("mail2", "bob@example.net", token) == 1
