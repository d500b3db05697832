# -*- coding: utf-8 -*-
"""Helpers shared by the benchmark scripts in bench/ (not part of the collection)."""

from __future__ import annotations

import json
import os
import shutil
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))


def collections_path():
    """ANSIBLE_COLLECTIONS_PATH from the environment, else this checkout (.cache/collections, see make setup)."""
    return os.environ.get('ANSIBLE_COLLECTIONS_PATH') or (
        os.path.join(REPO, '.cache', 'collections') + ':' + os.path.expanduser('~/.ansible/collections'))


def ansible_env(**extra):
    """Environment for ansible-playbook: this checkout's ansible.cfg and collection, no colours."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, 'ansible.cfg'), ANSIBLE_COLLECTIONS_PATH=collections_path(),
               ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    env.update(extra)
    return env


def playbook_cmd():
    """ansible-playbook next to the running Python (the venv), else the one on PATH."""
    cmd = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    return cmd if os.path.exists(cmd) else shutil.which('ansible-playbook')


def write_private(path, data):
    """Write ``data`` (str, or JSON-dumped otherwise) to a new file readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as handle:
        if isinstance(data, str):
            handle.write(data)
        else:
            json.dump(data, handle)
    return path
