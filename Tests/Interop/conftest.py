"""Fixtures for the interop suite: a real Petrel broker process on a free loopback port."""
import os
import subprocess
import tempfile
import time

import pytest
from petrel_harness import broker_process
from petrel_harness.broker_process import free_port  # noqa: F401  (the tests' own import)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PETREL = os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "debug", "petrel"))


class BrokerProcess(broker_process.BrokerProcess):
    """A Petrel broker started by the test, stopped by its own pid only."""

    # Tests do not wait out Kafka's production timings: a short initial rebalance delay, and session
    # timeouts down to one second.
    DEFAULT_ARGS = ["--group-initial-rebalance-delay-ms", "100", "--group-min-session-timeout-ms", "1000"]

    def __init__(self, data_dir, extra_args=()):
        if not os.access(PETREL, os.X_OK):
            raise RuntimeError(f"no petrel binary at {PETREL}: run `swift build` first")
        self.data_dir = data_dir
        port = free_port()
        # The metrics endpoint's default port is shared by every broker on the machine: tests that want
        # it pass their own --metrics address.
        metrics = [] if "--metrics" in extra_args else ["--metrics", "off"]
        args = self.DEFAULT_ARGS + metrics + list(extra_args)
        super().__init__(broker_process.petrel_command(PETREL, data_dir, port, *args), port,
                         os.path.join(data_dir + "-logs", "broker.log"))


@pytest.fixture
def broker():
    with tempfile.TemporaryDirectory(prefix="petrel-interop-") as tmp:
        process = BrokerProcess(os.path.join(tmp, "data")).start()
        try:
            yield process
        finally:
            code = process.stop()
            # A graceful stop must exit cleanly; anything else is a broker bug worth failing on.
            assert code == 0 or code is None, f"broker exited with {code}:\n{process.log()}"


def wait_until(predicate, timeout=30, interval=0.1, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


_admins = {}


def forget_admin_clients():
    """Drops the cached clients: after a broker restarts on the same address, new ones are needed."""
    _admins.clear()


@pytest.fixture(autouse=True)
def _drop_admin_clients():
    yield
    forget_admin_clients()  # each test's brokers are gone with it; so are its clients


def admin(broker):
    """One AdminClient per broker, kept alive: a client that is garbage-collected fails its futures."""
    from confluent_kafka.admin import AdminClient
    if broker.bootstrap not in _admins:
        _admins[broker.bootstrap] = AdminClient({"bootstrap.servers": broker.bootstrap})
    return _admins[broker.bootstrap]


def petrel(*args):
    """Runs the petrel CLI; returns its standard output, failing the test on a non-zero exit."""
    result = subprocess.run([PETREL, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"petrel {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def create_topic(broker, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
