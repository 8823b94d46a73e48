"""Descriptor exhaustion: a broker whose process may open only 256 files (prlimit) is flooded with
connections. The ones past the limit are not served (the kernel queues some, refuses the rest; the broker
backs off accepting instead of failing), the connections it already serves keep producing and fetching, nothing
acknowledged is lost, and once the flood goes away new clients connect again. The segment file cache
sizes itself from the same limit (half of it), so files keep opening throughout."""
import logging
import os
import socket
import struct
import tempfile
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import PETREL, wait_until
from petrel_harness import broker_process

QUIET = logging.getLogger("descriptor-exhaustion-clients")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False
LIMIT = 256


def api_versions_answered(sock):
    """Sends ApiVersions v0 on a raw socket; True if an answer comes within 2 s."""
    request = struct.pack(">hhih", 18, 0, 7, 4) + b"test"
    try:
        sock.sendall(struct.pack(">i", len(request)) + request)
        sock.settimeout(2)
        return len(sock.recv(4)) == 4
    except OSError:
        return False


def test_a_connection_flood_past_the_descriptor_limit_leaves_served_clients_working():
    with tempfile.TemporaryDirectory(prefix="petrel-fd-limit-") as tmp:
        port = broker_process.free_port()
        command = ["prlimit", f"--nofile={LIMIT}:{LIMIT}", *broker_process.petrel_command(
            PETREL, os.path.join(tmp, "data"), port, "--metrics", "off")]
        broker = broker_process.BrokerProcess(command, port, os.path.join(tmp, "broker.log")).start()
        try:
            flooded_and_served(broker, port)
        finally:
            code = broker.stop() if broker.running else broker.process.returncode
        assert code == 0 or code is None, f"broker exited with {code}:\n{broker.log_tail()}"


def flooded_and_served(broker, port):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "logger": QUIET})
    admin.create_topics([NewTopic(f"fd-{i}", 4, 1) for i in range(10)])["fd-0"].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "logger": QUIET,
                         "message.timeout.ms": 30_000})
    acked = []

    def delivered(error, message):
        if error is None:
            acked.append(message.value().decode())
    for i in range(200):
        producer.produce(f"fd-{i % 10}", value=f"before-{i}", on_delivery=delivered)
    assert producer.flush(30) == 0 and len(acked) == 200

    # The flood: far more connections than the process may hold descriptors. Past the broker's budget
    # they are closed as they are accepted; past the kernel's accept queue, connecting times out.
    flood = []
    try:
        refused = 0
        for _ in range(LIMIT + 200):
            try:
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
            except OSError:
                refused += 1
        assert refused > 0 or len(flood) == LIMIT + 200
        time.sleep(1)
        served = sum(api_versions_answered(sock) for sock in flood[-50:])
        assert served < 50, "the broker cannot serve more connections than it has descriptors"
        assert broker.running, f"the broker died under the flood:\n{broker.log_tail()}"

        # The producer connected before the flood keeps working, across every partition's files.
        for i in range(200):
            producer.produce(f"fd-{i % 10}", value=f"during-{i}", on_delivery=delivered)
        assert producer.flush(30) == 0 and len(acked) == 400
    finally:
        for sock in flood:
            sock.close()

    # With the flood gone, a new client connects and reads everything acknowledged.
    def everything():
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "fd-reader",
                             "logger": QUIET, "enable.auto.commit": False})
        consumer.assign([TopicPartition(f"fd-{t}", p, 0) for t in range(10) for p in range(4)])
        values = []
        deadline = time.time() + 20
        while len(values) < 400 and time.time() < deadline:
            values += [m.value().decode() for m in consumer.consume(500, 0.5) if not m.error()]
        consumer.close()
        return values
    values = wait_until(lambda: (lambda v: v if len(v) >= 400 else None)(everything()), timeout=60,
                        interval=1, what="a new client reading every acknowledged record")
    assert sorted(values) == sorted(acked)
