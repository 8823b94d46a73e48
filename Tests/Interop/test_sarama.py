"""sarama 1.22.1 (Debian's golang-github-shopify-sarama-dev) in a consumer group. sarama never negotiates
versions: with config.Version = V2_0_0_0 it sends JoinGroup v1, SyncGroup/Heartbeat v0, OffsetCommit v2."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import petrel

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def sarama_binary():
    # Debian ships sarama as Go source under /usr/share/gocode: build in GOPATH mode, offline.
    assert shutil.which("go"), "Go is missing: scripts/install-test-deps.sh installs golang-go"
    assert os.path.isdir("/usr/share/gocode/src/github.com/Shopify/sarama"), "golang-github-shopify-sarama-dev is missing"
    with tempfile.TemporaryDirectory(prefix="petrel-sarama-") as gopath:
        source = os.path.join(gopath, "src", "saramagroup")
        os.makedirs(source)
        shutil.copy(os.path.join(HERE, "sarama", "main.go"), source)
        binary = os.path.join(gopath, "saramagroup")
        env = dict(os.environ, GO111MODULE="off", GOPATH=f"{gopath}:/usr/share/gocode", GOCACHE=os.path.join(gopath, "cache"),
                   GOFLAGS="", CGO_CFLAGS="-Wno-deprecated-declarations")
        subprocess.run(["go", "build", "-o", binary, "saramagroup"], env=env, check=True, timeout=300, capture_output=True)
        yield binary


def test_sarama_joins_a_group_and_commits(broker, sarama_binary):
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", "sarama-orders"],
                   input="".join(f"order-{i}\n" for i in range(20)).encode(), check=True, timeout=60)
    result = subprocess.run([sarama_binary, broker.bootstrap, "sarama-workers", "sarama-orders", "20"],
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[2] for line in lines] == [f"order-{i}" for i in range(20)]
    assert [int(line.split()[1]) for line in lines] == list(range(20))
    described = petrel("groups", "describe", "sarama-workers", "--bootstrap", broker.bootstrap)
    row = next(line for line in described.splitlines() if line.startswith("sarama-orders"))
    assert row.split()[2:] == ["20", "20", "0"], described
