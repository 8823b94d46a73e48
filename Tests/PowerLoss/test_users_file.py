"""`petrel users` changes survive a power failure: the users file is replaced atomically and durably."""
import os
import subprocess

from petrel_harness.powerloss import ROOT, PowerLoss

PETREL = os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "debug", "petrel"))


def users(data, *args, env=None):
    result = subprocess.run([PETREL, "users", *args, "--data", data], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_added_users_survive_a_power_failure(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    loss = PowerLoss(str(data), str(tmp_path / "state"))
    loss.reset()
    users(str(data), "add", "alice", "--password", "secret-1", "--iterations", "4096", env=loss.environment())
    users(str(data), "add", "bob", "--password", "secret-2", "--iterations", "4096", env=loss.environment())
    loss.restore("strict")
    assert users(str(data), "list") == ["alice", "bob"]
