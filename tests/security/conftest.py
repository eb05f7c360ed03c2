"""The fixture of the two-user attacks: a victim and an attacker (tests/security/two_users.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from two_users import PYTHON, REPO, SETPRIV, User, World, _free_uid, _traversable


@pytest.fixture
def world() -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip("the two-user attacks need root, to run as two unprivileged uids with setpriv")
    if SETPRIV is None:
        pytest.skip("setpriv (util-linux) is not installed: it runs the victim and the attacker")
    base = Path(tempfile.mkdtemp(prefix="cb-security-", dir="/tmp"))
    os.chmod(base, 0o755)
    # The victim runs this checkout's interpreter and code: every folder above them must let it in.
    changed = _traversable(REPO / ".venv" / "bin") + _traversable(Path(os.path.realpath(PYTHON)).parent)
    victim_uid = _free_uid(64100)
    attacker_uid = _free_uid(victim_uid + 1)
    users = []
    for name, uid in (("victim", victim_uid), ("attacker", attacker_uid)):
        home = base / name
        (home / ".claude").mkdir(parents=True)
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        user = User(name, uid, home, env)
        user.own(home)
        os.chmod(home, 0o700)
        users.append(user)
    try:
        yield World(base, users[0], users[1])
    finally:
        for user in users:
            user.kill_all()
        shutil.rmtree(base, ignore_errors=True)
        for folder, mode in reversed(changed):
            os.chmod(folder, mode)
