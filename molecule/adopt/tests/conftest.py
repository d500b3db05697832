"""Fixtures for the adoption scenario; shares the helpers of the default scenario."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "default" / "tests"))

from vmailtest import MailServer  # noqa: E402


@pytest.fixture(scope="module")
def mail(host):
    """Client-side view of the adopted server."""
    return MailServer(host)
