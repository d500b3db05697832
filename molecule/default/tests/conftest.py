"""Fixtures for the default scenario's verifier; helpers live in vmailtest.py."""

import pytest
from vmailtest import MailServer


@pytest.fixture(scope="module")
def mail(host):
    """Client-side view of the platform under test (ports, TLS, test passwords)."""
    return MailServer(host)
