"""Fixtures for the interop suite: a real Petrel broker process on a free loopback port."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PETREL = os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "debug", "petrel"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerProcess:
    """A broker started by the test, stopped by its own pid only."""

    # Tests do not wait out Kafka's production timings: a short initial rebalance delay, and session
    # timeouts down to one second.
    DEFAULT_ARGS = ["--group-initial-rebalance-delay-ms", "100", "--group-min-session-timeout-ms", "1000"]

    def __init__(self, data_dir, extra_args=()):
        if not os.access(PETREL, os.X_OK):
            raise RuntimeError(f"no petrel binary at {PETREL}: run `swift build` first")
        self.data_dir = data_dir
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        # The metrics endpoint's default port is shared by every broker on the machine: tests that want
        # it pass their own --metrics address.
        metrics = [] if "--metrics" in extra_args else ["--metrics", "off"]
        self.extra_args = self.DEFAULT_ARGS + metrics + list(extra_args)
        self.process = None
        self.log_path = os.path.join(data_dir + "-logs", "broker.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [PETREL, "broker", "--data", self.data_dir, "--listen", self.bootstrap, *self.extra_args],
            stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"broker exited with {self.process.returncode}:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("broker did not start listening within 30 s")

    def stop(self):
        """Graceful stop (SIGTERM), as an operator would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        return self.process.returncode

    def kill(self):
        """kill -9: no chance to flush or close anything."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def restart(self):
        self.stop()
        return self.start()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


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


def petrel(*args):
    """Runs the petrel CLI; returns its standard output, failing the test on a non-zero exit."""
    result = subprocess.run([PETREL, *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"petrel {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def create_topic(broker, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)
