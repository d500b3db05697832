# -*- coding: utf-8 -*-
"""Unit tests of the pure helpers: address normalization, hashing."""

import inspect

import pytest

from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_address as addr
from ansible_collections.vmail.mailserver.plugins.module_utils import vmail_hashing as hashing


@pytest.mark.parametrize('raw, expected', [
    ('Example.COM', 'example.com'),
    ('example.com.', 'example.com'),
    ('bücher.example', 'xn--bcher-kva.example'),
    ('XN--BCHER-KVA.example', 'xn--bcher-kva.example'),
    ('a-b.c0.example', 'a-b.c0.example'),
])
def test_normalize_domain(raw, expected):
    assert addr.normalize_domain(raw) == expected


@pytest.mark.parametrize('raw, message', [
    ('', 'non-empty'),
    ('localhost', 'two labels'),
    ('a..b', 'empty label'),
    ('-a.example', 'hyphen'),
    ('a_b.example', 'letters, digits'),
    ('x' * 64 + '.example', 'at most 63'),
    (('a' * 60 + '.') * 5 + 'com', '253'),
    ("x'); DROP TABLE x;--.com", 'not a valid host name'),
    ('example.123', 'numeric'),
    ('[1.2.3.4]', 'literal'),
])
def test_normalize_domain_rejects(raw, message):
    with pytest.raises(addr.AddressError, match=message):
        addr.normalize_domain(raw)


def test_domain_column_width():
    with pytest.raises(addr.AddressError, match='at most 50'):
        addr.normalize_domain('a' * 45 + '.example', max_length=50)


@pytest.mark.parametrize('raw, expected', [
    ('Alice@Example.COM', 'alice@example.com'),
    ("o'brien@example.com", "o'brien@example.com"),
    ('a.b+tag@bücher.example', 'a.b+tag@xn--bcher-kva.example'),
])
def test_normalize_address(raw, expected):
    assert addr.normalize_address(raw) == expected


def test_preserve_local_part_case():
    assert addr.normalize_address('Alice@Example.com', lowercase_local_part=False) == 'Alice@example.com'


@pytest.mark.parametrize('raw, message', [
    ("x'); DROP TABLE virtual_users;--@example.com", 'not a valid e-mail address'),
    ('"a b"@example.com', 'white space'),
    ('"ab"@example.com', 'not a plain e-mail address'),
    ('a(comment)@example.com', 'not a plain'),
    ('ünï@example.com', 'non-ASCII'),
    ('a..b@example.com', 'not a valid e-mail address'),
    ('x' * 65 + '@example.com', 'at most 64'),
    ('a@b@example.com', 'exactly one'),
    ('noat.example.com', 'exactly one'),
    ('a@localhost', 'two labels'),
])
def test_normalize_address_rejects(raw, message):
    with pytest.raises(addr.AddressError, match=message):
        addr.normalize_address(raw)


def test_catchall():
    assert addr.normalize_address('@Example.com', allow_catchall=True) == '@example.com'
    with pytest.raises(addr.AddressError):
        addr.normalize_address('@example.com')


@pytest.mark.parametrize('scheme, prefix', [
    ('SHA512-CRYPT', '$6$'), ('SHA256-CRYPT', '{SHA256-CRYPT}$5$'), ('BLF-CRYPT', '{BLF-CRYPT}$2y$'),
])
def test_hash_roundtrip(scheme, prefix):
    stored = hashing.hash_password('s3cret', scheme)
    assert stored.startswith(prefix)
    assert hashing.identify(stored) == scheme
    assert hashing.verify_password('s3cret', stored)
    assert not hashing.verify_password('S3cret', stored)


def test_sha512_fits_guide_column():
    stored = hashing.hash_password('x' * 200)
    assert len(stored) == 106 and 'rounds=' not in stored


def test_known_encrypt_vector():
    # crypt(3) SHA-512 test vector (Drepper's specification, rounds=5000 implicit)
    stored = '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1'
    assert hashing.identify(stored) == 'SHA512-CRYPT'
    assert hashing.verify_password('Hello world!', stored)
    assert hashing.verify_password('Hello world!', '{SHA512-CRYPT}' + stored)
    assert not hashing.verify_password('Hello world', stored)


@pytest.mark.parametrize('bad', ['', 'plain', '{PLAIN}', '$6$x y$z', '{SHA512-CRYPT}garbage',
                                 '{BLF-CRYPT}$6$saltstring$x', '{SHA256-CRYPT}'])
def test_check_hash_rejects(bad):
    with pytest.raises(hashing.HashingError):
        hashing.check_hash(bad)


def test_empty_password_rejected():
    with pytest.raises(hashing.HashingError, match='empty'):
        hashing.hash_password('')


def test_fast_native_crypt_runs_on_this_platform():
    """Fails when passlib's pure-Python fallback is what actually hashes (see docs/modules.md)."""
    info = hashing.probe(count=10)
    assert info['backends']['SHA512-CRYPT'] == 'os_crypt', info
    assert info['crypt_calls'] == 10, info  # the C library's crypt really ran, once per hash
    func = hashing.crypt_function()
    assert info['crypt_function_module'] in ('crypt', 'crypt_r', 'legacycrypt'), info
    # the function at the bottom is C code (builtin) or a ctypes call into libcrypt
    assert inspect.isbuiltin(func) or func.__module__ in ('crypt', 'crypt_r', 'legacycrypt'), info
    assert info['ms_per_hash'] < 20, info
