"""Mail from outside reaches each mailbox's own node through either node, once; IMAP works on both."""

import pytest
from clustertest import MAIL_NODES, imap_count, maildir_count, new_token, send, wait_delivered

# mailbox -> the node that holds it (group_vars/all.yml: domain host, carol's override)
HOMES = {"alice@example.com": "mail1", "bob@example.net": "mail2", "carol@example.com": "mail2"}


def other(mail):
    return "mail2" if mail == "mail1" else "mail1"


@pytest.mark.parametrize("via", MAIL_NODES)
@pytest.mark.parametrize("email", sorted(HOMES))
def test_delivered_once_into_the_owning_node(email, via):
    token = new_token()
    send("db3", via, email, token)
    home = HOMES[email]
    assert wait_delivered(home, email, token) == 1
    assert maildir_count(other(home), email, token) == 0
    # IMAP on either node reaches the user's mail (the other node proxies to the owner)
    for login_node in MAIL_NODES:
        assert imap_count("db3", login_node, email, token) == 1, login_node


def test_alias_expands_across_nodes():
    token = new_token()
    send("db3", "mail1", "team@example.com", token)
    assert wait_delivered("mail1", "alice@example.com", token) == 1
    assert wait_delivered("mail2", "bob@example.net", token) == 1
