"""Observability and lifecycle against real tools: a Prometheus server scraping the broker, and a
SIGTERM under load."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import BrokerProcess, create_topic, free_port, wait_until

PROMETHEUS = shutil.which("prometheus")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read().decode()


class PrometheusServer:
    """A real Prometheus (Debian's package) scraping one target every second, stopped by its pid."""

    def __init__(self, workdir, target):
        if PROMETHEUS is None:
            raise RuntimeError("prometheus is not installed: scripts/install-test-deps.sh installs it")
        self.port = free_port()
        config = os.path.join(workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: petrel\n    static_configs:\n"
                f"      - targets: ['{target}']\n")
        self.log_path = os.path.join(workdir, "prometheus.log")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={os.path.join(workdir, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout=60, what="prometheus to be ready")

    def _ready(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{open(self.log_path).read()}")
        try:
            return http_get(f"http://127.0.0.1:{self.port}/-/ready")[0] == 200
        except OSError:
            return False

    def query(self, expression):
        """The instant vector for `expression`: {tuple of label values by name: float value}."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        body = json.loads(http_get(url)[1])
        assert body["status"] == "success", body
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in body["data"]["result"]}

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def observed_broker():
    with tempfile.TemporaryDirectory(prefix="petrel-observability-") as tmp:
        metrics_port = free_port()
        broker = BrokerProcess(os.path.join(tmp, "data"), ["--metrics", f"127.0.0.1:{metrics_port}"]).start()
        broker.metrics = f"127.0.0.1:{metrics_port}"
        prometheus = None
        try:
            prometheus = PrometheusServer(tmp, broker.metrics)
            yield broker, prometheus
        finally:
            if prometheus:
                prometheus.stop()
            assert broker.stop() == 0, broker.log()


def produce(bootstrap, topic, count, prefix):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=f"k{i}", value=f"{prefix}-{i}")
    assert producer.flush(30) == 0


def client_lag(bootstrap, group, topic, partitions):
    """Lag as a Kafka client computes it: high watermark minus the group's committed offset."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        lag = {}
        for tp in committed:
            if tp.offset < 0:
                continue
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            lag[tp.partition] = high - tp.offset
        return lag
    finally:
        consumer.close()


def test_prometheus_sees_the_lag_the_client_computes_and_request_counters_move(observed_broker):
    broker, prometheus = observed_broker
    create_topic(broker, "orders", 3)
    produce(broker.bootstrap, "orders", 90, "order")

    # A worker processes 40 orders, commits, and goes away: its group keeps offsets but no members.
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": "billing", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.subscribe(["orders"])
    seen = 0
    deadline = time.time() + 60
    while seen < 40 and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen += 1
            if seen == 40:
                consumer.commit(asynchronous=False)
    consumer.close()
    assert seen == 40

    # The client's view: committed offsets only where the worker consumed something.
    expected = client_lag(broker.bootstrap, "billing", "orders", 3)
    assert expected and sum(expected.values()) > 0, expected

    def prometheus_lag():
        series = prometheus.query('petrel_consumer_group_lag{group="billing",topic="orders"}')
        return {int(dict(labels)["partition"]): value for labels, value in series.items()}

    def matches(expected):
        return lambda: prometheus_lag() == {p: float(v) for p, v in expected.items()}

    wait_until(matches(expected), timeout=30, interval=0.5, what=f"prometheus to report the client's lag {expected}")

    # Requests are counted per API, and the counters move with traffic.
    before = prometheus.query('petrel_requests_total{api="Produce"}')
    assert len(before) == 1 and list(before.values())[0] > 0
    assert prometheus.query('petrel_requests_total{api="Fetch"}'), "fetches are counted"
    produce(broker.bootstrap, "orders", 30, "more")
    wait_until(
        lambda: list(prometheus.query('petrel_requests_total{api="Produce"}').values())[0] > list(before.values())[0],
        timeout=30, interval=0.5, what="the Produce request counter to move")
    # More records, no new commit: the lag grows, and Prometheus and the client still agree.
    grown = client_lag(broker.bootstrap, "billing", "orders", 3)
    assert sum(grown.values()) > sum(expected.values()), (expected, grown)
    wait_until(matches(grown), timeout=30, interval=0.5, what=f"prometheus to report the grown lag {grown}")
    assert list(prometheus.query('up{job="petrel"}').values()) == [1.0]


def test_health_and_ready_endpoints(observed_broker):
    broker, _ = observed_broker
    assert http_get(f"http://{broker.metrics}/health") == (200, "ok\n")
    assert http_get(f"http://{broker.metrics}/ready") == (200, "ready\n")


def test_sigterm_under_load_exits_cleanly_and_loses_no_acknowledged_record():
    with tempfile.TemporaryDirectory(prefix="petrel-sigterm-") as tmp:
        data = os.path.join(tmp, "data")
        broker = BrokerProcess(data, ["--flush", "interval", "--flush-interval-ms", "200"]).start()
        create_topic(broker, "orders", 4)
        acked = set()
        lock = threading.Lock()
        stop = threading.Event()

        def on_delivery(error, message):
            if error is None:
                with lock:
                    acked.add(message.value().decode())

        def load(worker):
            # log_level 2: the broker going away is the point, not worth a connection error per retry.
            producer = Producer({
                "bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 2,
                "message.timeout.ms": 5000, "reconnect.backoff.max.ms": 200, "log_level": 2})
            i = 0
            while not stop.is_set():
                try:
                    producer.produce("orders", key=f"w{worker}-{i}", value=f"w{worker}-{i}", on_delivery=on_delivery)
                    i += 1
                except BufferError:
                    producer.poll(0.05)
                producer.poll(0)
                if i % 200 == 0:
                    time.sleep(0.005)
            producer.flush(10)

        def consume():
            consumer = Consumer({
                "bootstrap.servers": broker.bootstrap, "group.id": "workers", "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 500, "enable.auto.commit": False, "log_level": 2})
            consumer.subscribe(["orders"])
            while not stop.is_set():
                consumer.poll(0.2)
            consumer.close()

        threads = [threading.Thread(target=load, args=(n,)) for n in range(2)] + [threading.Thread(target=consume)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: len(acked) > 5000, timeout=60, what="load to be acknowledged")
            time.sleep(1)  # in full flow: appends, fsyncs and long polls in flight
            broker.process.send_signal(signal.SIGTERM)
            code = broker.process.wait(30)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        log = broker.log()
        assert code == 0, log
        assert "connections drained" in log, log
        assert os.path.exists(os.path.join(data, ".clean-shutdown")), "the clean-shutdown marker is written"

        with lock:
            acknowledged = set(acked)
        restarted = BrokerProcess(data).start()
        try:
            startup = restarted.log()[len(log):]
            assert "clean=true" in startup, startup
            assert "recovery" not in startup, startup
            consumer = Consumer({
                "bootstrap.servers": restarted.bootstrap, "group.id": "audit", "auto.offset.reset": "earliest",
                "enable.auto.commit": False})
            consumer.subscribe(["orders"])
            stored = set()
            deadline = time.time() + 60
            while not acknowledged <= stored and time.time() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    stored.add(message.value().decode())
            consumer.close()
            missing = acknowledged - stored
            assert not missing, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[:5]}"
        finally:
            assert restarted.stop() == 0, restarted.log()
