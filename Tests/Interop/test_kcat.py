"""kcat (Debian's, built on librdkafka 2.0.2) against the broker."""
import json
import subprocess

KCAT_TIMEOUT = 60


def kcat(broker, *args, input=None):
    result = subprocess.run(["kcat", "-b", broker.bootstrap, *args], input=input, capture_output=True, timeout=KCAT_TIMEOUT)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode()


def test_metadata_lists_broker_and_topics(broker):
    kcat(broker, "-P", "-t", "listed", input=b"one\n")
    listing = kcat(broker, "-L")
    assert f"broker 1 at 127.0.0.1:{broker.port} (controller)" in listing
    assert 'topic "listed" with 1 partitions' in listing
    assert "partition 0, leader 1, replicas: 1, isrs: 1" in listing


def test_thousand_messages_round_trip_in_order(broker):
    # Three partitions; kcat partitions by key, so each key's messages share a partition.
    subprocess.run(["kcat", "-b", broker.bootstrap, "-L"], check=True, capture_output=True, timeout=KCAT_TIMEOUT)
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("kcat-orders", num_partitions=3, replication_factor=1)])["kcat-orders"].result(30)

    # Keys are customers: every customer's orders must land in one partition, in production order.
    lines = "".join(f"customer-{i % 7}:{{\"order\": {i}, \"total\": {i * 3}}}\n" for i in range(1000))
    kcat(broker, "-P", "-t", "kcat-orders", "-K:", "-H", "event=order-created", "-H", "source=kcat", input=lines.encode())

    out = kcat(broker, "-C", "-t", "kcat-orders", "-e", "-o", "beginning", "-f", "%p\t%o\t%k\t%s\t%h\n")
    rows = [line.split("\t") for line in out.splitlines() if line]
    assert len(rows) == 1000
    partitions_of_key = {}
    by_partition = {}
    for partition, offset, key, value, headers in rows:
        assert headers == "event=order-created,source=kcat"
        order = json.loads(value)
        assert order["total"] == order["order"] * 3
        assert key == f"customer-{order['order'] % 7}"
        partitions_of_key.setdefault(key, set()).add(partition)
        by_partition.setdefault(partition, []).append((int(offset), order["order"]))
    assert all(len(p) == 1 for p in partitions_of_key.values()), "a key landed in two partitions"
    assert len(by_partition) > 1
    seen = []
    for partition, messages in by_partition.items():
        offsets = [offset for offset, _ in messages]
        assert offsets == list(range(len(messages))), f"partition {partition} offsets are not 0..n-1"
        orders = [order for _, order in messages]
        assert orders == sorted(orders), f"partition {partition} is out of production order"
        seen += orders
    assert sorted(seen) == list(range(1000))


def test_offsets_query_and_tail_offsets(broker):
    kcat(broker, "-P", "-t", "kcat-offsets", input=b"".join(b"m%d\n" % i for i in range(10)))
    out = kcat(broker, "-C", "-t", "kcat-offsets", "-e", "-o", "-3", "-f", "%o %s\n")
    assert out.split("\n")[:3] == ["7 m7", "8 m8", "9 m9"]
