"""Fixtures for the default scenario's verifier; helpers live in vmailtest.py."""

import pytest
from vmailtest import MailServer, group_by_platform


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """One pytest-xdist worker per platform (see vmailtest.group_by_platform); before xdist reads the groups."""
    group_by_platform(items)


@pytest.fixture(scope="module")
def mail(host):
    """Client-side view of the platform under test (ports, TLS, test passwords)."""
    return MailServer(host)
