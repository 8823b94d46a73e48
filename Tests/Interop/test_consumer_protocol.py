"""The consumer group protocol of KIP-848 (`group.protocol=consumer`) with confluent-kafka: the broker
assigns, members reconcile with heartbeats. First piece: members share a topic's partitions, every
record is consumed, offsets commit, and admin tools see a consumer-protocol group."""
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import wait_until


def consumer(bootstrap, name, group="kip848"):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "client.id": name, "enable.auto.commit": True,
                     "auto.commit.interval.ms": 500})


def test_three_members_share_six_partitions_and_consume_everything(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("kip848-orders", 6, 1)])["kip848-orders"].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(600):
        producer.produce("kip848-orders", key=f"order-{i}", value=f"order-{i}")
    assert producer.flush(30) == 0

    members = [consumer(broker.bootstrap, f"worker-{i}") for i in range(3)]
    for member in members:
        member.subscribe(["kip848-orders"])
    seen = []
    assignments = {}
    lock = threading.Lock()
    stop = threading.Event()

    # Each member is used by its own thread only (confluent-kafka's calls on one consumer do not mix
    # across threads), which also records what it is assigned.
    def poll(index, member):
        while not stop.is_set():
            message = member.poll(0.2)
            with lock:
                assignments[index] = {tp.partition for tp in member.assignment()}
                if message is not None and not message.error():
                    seen.append(message.value().decode())
    threads = [threading.Thread(target=poll, args=(index, member)) for index, member in enumerate(members)]
    for thread in threads:
        thread.start()
    try:
        def settled():
            with lock:
                current = [assignments.get(index, set()) for index in range(3)]
            return current if sorted(len(a) for a in current) == [2, 2, 2] else None
        settled_assignments = wait_until(settled, timeout=60, interval=0.5, what="three members with two partitions each")
        assert set().union(*settled_assignments) == set(range(6))
        wait_until(lambda: len(set(seen)) == 600, timeout=60, what="every record consumed")
        # The broker describes it as a consumer-protocol group (ConsumerGroupDescribe).
        described = admin.describe_consumer_groups(["kip848"])["kip848"].result(30)
        assert described.type.name == "CONSUMER" and len(described.members) == 3
        assert sorted(len(m.assignment.topic_partitions) for m in described.members) == [2, 2, 2]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for member in members:
            member.close()
    assert set(seen) == {f"order-{i}" for i in range(600)}
