"""sarama 1.22.1 (Debian's golang-github-shopify-sarama-dev) in a consumer group, and its ClusterAdmin.
sarama never negotiates versions: with config.Version = V2_0_0_0 it sends JoinGroup v1, SyncGroup and
Heartbeat v0, OffsetCommit v2, DescribeConfigs and AlterConfigs v0, CreatePartitions v0, DeleteRecords
v0."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import petrel

HERE = os.path.dirname(os.path.abspath(__file__))


def build(program, name):
    """Builds one of the Go programs beside this file against Debian's sarama, offline, in GOPATH mode."""
    assert shutil.which("go"), "Go is missing: scripts/install-test-deps.sh installs golang-go"
    assert os.path.isdir("/usr/share/gocode/src/github.com/Shopify/sarama"), "golang-github-shopify-sarama-dev is missing"
    gopath = tempfile.mkdtemp(prefix="petrel-sarama-")
    source = os.path.join(gopath, "src", name)
    os.makedirs(source)
    shutil.copy(os.path.join(HERE, program, "main.go"), source)
    binary = os.path.join(gopath, name)
    env = dict(os.environ, GO111MODULE="off", GOPATH=f"{gopath}:/usr/share/gocode", GOCACHE=os.path.join(gopath, "cache"),
               GOFLAGS="", CGO_CFLAGS="-Wno-deprecated-declarations")
    subprocess.run(["go", "build", "-o", binary, name], env=env, check=True, timeout=300, capture_output=True)
    return gopath, binary


@pytest.fixture(scope="module")
def sarama_admin_binary():
    gopath, binary = build("sarama-admin", "saramaadmin")
    yield binary
    shutil.rmtree(gopath, ignore_errors=True)


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


def test_sarama_cluster_admin_configs_partitions_and_records(broker, sarama_admin_binary):
    petrel("topics", "create", "sarama-admin", "--partitions", "1", "--config", "retention.ms=3600000",
           "--bootstrap", broker.bootstrap)
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", "sarama-admin", "-p", "0"],
                   input="".join(f"record-{i}\n" for i in range(5)).encode(), check=True, timeout=60)
    result = subprocess.run([sarama_admin_binary, broker.bootstrap, "sarama-admin"], capture_output=True, text=True,
                            timeout=90)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "config sarama-admin retention.ms=3600000 default=false readonly=false",
        "config sarama-admin retention.ms=7200000 default=false readonly=false",
        "partitions 3",
        "deleted below 2",
        "config 1 log.retention.ms=604800000 default=false readonly=true",
    ]
    described = petrel("topics", "describe", "sarama-admin", "--bootstrap", broker.bootstrap)
    rows = [line.split() for line in described.splitlines() if line[:1].isdigit()]
    assert len(rows) == 3 and rows[0][2:4] == ["2", "5"], described
