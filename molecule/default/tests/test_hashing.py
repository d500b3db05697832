# -*- coding: utf-8 -*-
"""Testinfra: mailbox password hashing on the managed host uses the C library, not passlib's pure-Python fallback.

Runs the collection's plugins/module_utils/vmail_hashing.py with the host's
python3 (the packages the mailsql role installed from docs/modules.md,
"Host requirements") and checks what actually runs: passlib's os_crypt
backend, a crypt function provided by crypt/crypt_r/legacycrypt that is
called once per hash, and the measured cost per hash.

    py.test --hosts=docker://<container> molecule/default/tests/test_hashing.py
"""

import json
import os

HASHING = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'plugins', 'module_utils', 'vmail_hashing.py')
MAX_MS_PER_HASH = 20.0  # C crypt(3): ~1-2 ms for SHA512-CRYPT at 5000 rounds

SNIPPET = r'''
import inspect, json
info = probe('SHA512-CRYPT', 50)
func = crypt_function()
info['crypt_function_builtin'] = bool(func is not None and inspect.isbuiltin(func))
info['stored_example_ok'] = verify_password('password', hash_password('password'))
print('VMAIL-PROBE ' + json.dumps(info))
'''


def _probe(host):
    with open(HASHING) as handle:
        source = handle.read()
    script = source + '\n' + SNIPPET
    cmd = host.run("python3 - <<'VMAIL_EOF'\n%s\nVMAIL_EOF" % script)
    assert cmd.rc == 0, cmd.stderr
    line = [l for l in cmd.stdout.splitlines() if l.startswith('VMAIL-PROBE ')][-1]
    return json.loads(line[len('VMAIL-PROBE '):])


def test_sha512_crypt_uses_native_crypt(host):
    info = _probe(host)
    print('per-hash cost on %s (Python %s, passlib %s): %.3f ms via %s'
          % (host.system_info.codename, info['python'], info['passlib'], info['ms_per_hash'],
             info['crypt_function_module']))
    assert info['stored_example_ok'], info
    assert info['backends']['SHA512-CRYPT'] == 'os_crypt', info
    # what actually runs: the crypt function passlib calls, once per hash (builtin backend never calls it)
    assert info['crypt_calls'] == info['count'], info
    assert info['crypt_function_module'] in ('crypt', 'crypt_r', 'legacycrypt'), info
    assert info['ms_per_hash'] < MAX_MS_PER_HASH, info


def test_host_requirements_installed(host):
    codename = host.system_info.codename
    packages = ['python3-pymysql', 'python3-passlib', 'python3-idna']
    if codename not in ('bookworm',):
        packages.append('python3-crypt-r')
    missing = [p for p in packages if not host.package(p).is_installed]
    assert not missing, 'missing host requirements on %s: %s' % (codename, missing)
