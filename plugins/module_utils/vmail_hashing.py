# -*- coding: utf-8 -*-
# Copyright: vmail.mailserver developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place where vmail.mailserver hashes and verifies mailbox passwords.

All hashing goes through passlib's API (``passlib.hash.sha512_crypt``,
``sha256_crypt``, ``bcrypt``). Stored forms follow Dovecot's password
schemes (https://doc.dovecot.org/main/core/config/auth/schemes.html):

* ``SHA512-CRYPT``: a bare ``$6$<16 salt>$<86>`` crypt string of exactly 106
  characters, what MySQL/MariaDB ``ENCRYPT()`` and ``doveadm pw`` produce and
  what the guide's ``password varchar(106)`` holds. Dovecot's passdb then
  needs ``default_pass_scheme = SHA512-CRYPT``. The implicit 5000 rounds of
  crypt(3) are used: an explicit ``rounds=N$`` field would not fit 106 characters.
* ``SHA256-CRYPT``: ``{SHA256-CRYPT}$5$...`` (5000 rounds, as above).
* ``BLF-CRYPT``: ``{BLF-CRYPT}$2y$12$...`` (bcrypt, cost 12).

Speed: passlib's ``os_crypt`` backend calls the C library's crypt(3)
(libxcrypt on Debian), about 1-2 ms per SHA-crypt hash at 5000 rounds.
Python 3.13 removed the standard library module ``crypt``; Debian 13's
``python3-crypt-r`` package provides the same C extension as ``crypt_r``
(plus a ``crypt`` shim), and Debian's ``python3-passlib`` falls back to
``legacycrypt`` (a ctypes wrapper around libcrypt). When none of these is
importable, passlib silently uses its pure-Python ``builtin`` backend.
:func:`_install_crypt` makes passlib use ``crypt_r`` when the standard
``crypt`` module is missing, before passlib is imported.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import logging
import sys
import traceback
import warnings


def _install_crypt():
    """Make ``import crypt`` resolve to a C implementation when Python lacks it (3.13+).

    Returns the name of the module that now provides ``crypt`` or None.
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # 'crypt' is deprecated on 3.11/3.12
        try:
            import crypt  # noqa: F401  pylint: disable=deprecated-module
            return 'crypt'
        except ImportError:
            pass
        try:
            import crypt_r
        except ImportError:
            return None
        sys.modules['crypt'] = crypt_r
        return 'crypt_r'


CRYPT_PROVIDER = _install_crypt()

try:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        # passlib 1.7.4 logs a harmless warning when it reads the version of bcrypt >= 4.1
        logging.getLogger('passlib.handlers.bcrypt').setLevel(logging.ERROR)
        import passlib
        import passlib.utils
        from passlib.hash import sha512_crypt, sha256_crypt, bcrypt, md5_crypt
        from passlib.exc import MissingBackendError
    HAS_PASSLIB = True
    PASSLIB_IMPORT_ERROR = None
except ImportError:  # pragma: no cover - depends on the host
    HAS_PASSLIB = False
    PASSLIB_IMPORT_ERROR = traceback.format_exc()
    MissingBackendError = Exception

DEFAULT_SCHEME = 'SHA512-CRYPT'
SCHEMES = ('SHA512-CRYPT', 'SHA256-CRYPT', 'BLF-CRYPT')
# Schemes whose stored hash is written without the {SCHEME} prefix.
UNPREFIXED = ('SHA512-CRYPT',)
# Schemes whose payload is a crypt(3) string that passlib can recognise.
CRYPT_SCHEMES = ('SHA512-CRYPT', 'SHA256-CRYPT', 'BLF-CRYPT', 'MD5-CRYPT')
SHA_CRYPT_ROUNDS = 5000
BCRYPT_COST = 12


class HashingError(ValueError):
    """Raised with a clear message when a password or hash cannot be processed."""


def _handler(scheme):
    if scheme == 'SHA512-CRYPT':
        return sha512_crypt.using(rounds=SHA_CRYPT_ROUNDS)
    if scheme == 'SHA256-CRYPT':
        return sha256_crypt.using(rounds=SHA_CRYPT_ROUNDS)
    if scheme == 'BLF-CRYPT':
        return bcrypt.using(rounds=BCRYPT_COST, ident='2y')
    if scheme == 'MD5-CRYPT':
        return md5_crypt
    raise HashingError('unsupported password scheme %r; supported: %s' % (scheme, ', '.join(SCHEMES)))


def split_scheme(stored):
    """Split a stored password into (Dovecot scheme or None, hash without the ``{SCHEME}`` prefix)."""
    if stored.startswith('{') and '}' in stored:
        scheme, rest = stored[1:].split('}', 1)
        return scheme.upper(), rest
    return None, stored


def identify(stored):
    """Return the Dovecot scheme name of a stored password, or None when it is not recognised.

    A bare crypt string is identified by its prefix (``$6$`` SHA512-CRYPT,
    ``$5$`` SHA256-CRYPT, ``$2a$``/``$2b$``/``$2y$`` BLF-CRYPT, ``$1$`` MD5-CRYPT),
    the way Dovecot's ``CRYPT`` scheme does.
    """
    if not stored:
        return None
    scheme, rest = split_scheme(stored)
    by_prefix = None
    if sha512_crypt.identify(rest):
        by_prefix = 'SHA512-CRYPT'
    elif sha256_crypt.identify(rest):
        by_prefix = 'SHA256-CRYPT'
    elif bcrypt.identify(rest):
        by_prefix = 'BLF-CRYPT'
    elif md5_crypt.identify(rest):
        by_prefix = 'MD5-CRYPT'
    if scheme is None or scheme == 'CRYPT':
        return by_prefix
    if scheme in CRYPT_SCHEMES:
        # A crypt scheme's payload must be that crypt string: {SHA512-CRYPT}garbage is not a hash.
        return scheme if scheme == by_prefix else None
    # Other Dovecot schemes ({SSHA512}, {ARGON2ID} ...) are opaque here: kept as they are.
    return scheme if by_prefix is None else None


def hash_password(password, scheme=DEFAULT_SCHEME):
    """Hash ``password`` with ``scheme`` and return the form stored in ``virtual_users.password``."""
    check_password(password)
    try:
        digest = _handler(scheme).hash(password)
    except MissingBackendError as exc:
        raise HashingError('no backend for %s on this host: %s' % (scheme, exc))
    if scheme in UNPREFIXED:
        return digest
    return '{%s}%s' % (scheme, digest)


def verify_password(password, stored):
    """Return True when ``password`` matches the stored hash, False when not or when it cannot be verified."""
    scheme = identify(stored)
    if scheme not in SCHEMES + ('MD5-CRYPT',):
        return False
    rest = split_scheme(stored)[1]
    try:
        return bool(_handler(scheme).verify(password, rest))
    except (ValueError, TypeError, MissingBackendError):
        return False


def check_password(password):
    """Raise :class:`HashingError` for an unusable cleartext password."""
    if not isinstance(password, str) or password == '':
        raise HashingError('password must not be empty')
    if '\0' in password:
        raise HashingError('password must not contain NUL characters')


def check_hash(stored, max_length=None):
    """Validate a ready hash (``password_hash``); return its scheme or raise :class:`HashingError`."""
    if not isinstance(stored, str) or not stored:
        raise HashingError('password_hash must not be empty')
    scheme = identify(stored)
    if scheme is None or not split_scheme(stored)[1]:
        raise HashingError('password_hash is not a recognised hash: expected a crypt string ($6$, $5$, $2y$) '
                           'or a Dovecot {SCHEME}-prefixed value')
    if any(c.isspace() for c in stored):
        raise HashingError('password_hash must not contain white space')
    if max_length is not None and len(stored) > max_length:
        raise HashingError('password_hash is %d characters long; the password column holds at most %d'
                           % (len(stored), max_length))
    return scheme


def crypt_function():
    """Return the crypt function passlib's ``os_crypt`` backend calls, or None."""
    if not HAS_PASSLIB:
        return None
    return getattr(passlib.utils, '_crypt', None) if passlib.utils.has_crypt else None


def backend_info():
    """Describe what actually hashes on this host (for tests and debugging).

    Returns a dict with the passlib version, the provider of ``crypt``, the
    module of the function passlib calls, and the active backend per scheme.
    """
    if not HAS_PASSLIB:
        raise HashingError('passlib is not installed')
    func = crypt_function()
    info = {
        'python': '%d.%d.%d' % sys.version_info[:3],
        'passlib': getattr(passlib, '__version__', 'unknown'),
        'crypt_provider': CRYPT_PROVIDER,
        'crypt_function_module': getattr(func, '__module__', None) if func else None,
        'backends': {},
    }
    for scheme in SCHEMES:
        handler = _handler(scheme)
        try:
            info['backends'][scheme] = handler.get_backend()
        except MissingBackendError:
            info['backends'][scheme] = None
    return info


def probe(scheme=DEFAULT_SCHEME, count=20):
    """Hash ``count`` times and report what ran and how long it took.

    The crypt function passlib calls is wrapped with a counter for the
    duration, so ``crypt_calls`` shows whether the C library path really ran
    (a pure-Python ``builtin`` backend never calls it). Returns
    ``backend_info()`` plus ``scheme``, ``crypt_calls`` and ``ms_per_hash``
    (milliseconds per hash, wall clock).
    """
    import time
    if not HAS_PASSLIB:
        raise HashingError('passlib is not installed')
    calls = [0]
    original = crypt_function()
    if original is not None:
        def counting(secret, config):
            calls[0] += 1
            return original(secret, config)
        passlib.utils._crypt = counting
    try:
        handler = _handler(scheme)
        handler.hash('warm-up')
        calls[0] = 0
        start = time.perf_counter()
        for i in range(count):
            handler.hash('probe-%d' % i)
        elapsed = time.perf_counter() - start
    finally:
        if original is not None:
            passlib.utils._crypt = original
    info = backend_info()
    info.update(scheme=scheme, count=count, crypt_calls=calls[0], ms_per_hash=round(elapsed * 1000.0 / count, 3))
    return info
