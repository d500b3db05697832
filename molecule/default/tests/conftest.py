"""Fixtures for the default scenario's verifier; helpers live in vmailtest.py."""

import pytest
from vmailtest import MailServer, group_by_platform, is_outside, platform_of


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests run on the mail servers only: the ``outside`` platforms (molecule.yml) are the other
    end of tests/test_outside.py, reached from there. One pytest-xdist worker per platform (see
    vmailtest.group_by_platform); before xdist reads the groups."""
    outside = [item for item in items if is_outside(platform_of(item))]
    if outside:
        config.hook.pytest_deselected(items=outside)
        items[:] = [item for item in items if item not in outside]
    group_by_platform(items)


@pytest.fixture(scope="module")
def mail(host):
    """Client-side view of the platform under test (ports, TLS, test passwords)."""
    return MailServer(host)
