"""An exactly-once worker as Kafka's clients write one: consume orders-in in group `notifiers`, produce one
notification per order to notifications-out, and commit the consumed offsets in the same transaction
(send_offsets_to_transaction). With --crash-after-transactions N it kills itself with SIGKILL in the
middle of transaction N+1, after producing and before committing; with --expect M it stops once M
notifications are committed in total (counted from the group's committed offsets)."""
import argparse
import os
import signal
import time

from confluent_kafka import Consumer, Producer, TopicPartition

parser = argparse.ArgumentParser()
parser.add_argument("bootstrap")
parser.add_argument("--crash-after-transactions", type=int, default=-1)
parser.add_argument("--expect", type=int, default=-1)
parser.add_argument("--batch", type=int, default=40)
arguments = parser.parse_args()

consumer = Consumer({"bootstrap.servers": arguments.bootstrap, "group.id": "notifiers",
                     "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                     "enable.auto.commit": False, "session.timeout.ms": 6000})
producer = Producer({"bootstrap.servers": arguments.bootstrap, "transactional.id": "notifier-1",
                     "transaction.timeout.ms": 10000})
producer.init_transactions(30)
consumer.subscribe(["orders-in"])


def committed_total():
    partitions = [TopicPartition("orders-in", p) for p in range(2)]
    return sum(max(0, tp.offset) for tp in consumer.committed(partitions, timeout=10))


transactions = 0
deadline = time.time() + 90
while time.time() < deadline:
    if arguments.expect >= 0 and committed_total() >= arguments.expect:
        break
    messages = [m for m in consumer.consume(arguments.batch, timeout=1.0) if not m.error()]
    if not messages:
        continue
    producer.begin_transaction()
    for message in messages:
        producer.produce("notifications-out", key=message.key(), value=b"notified " + message.value())
    if transactions == arguments.crash_after_transactions:
        producer.flush(30)
        os.kill(os.getpid(), signal.SIGKILL)
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                         consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    transactions += 1
else:
    raise SystemExit(f"gave up: {committed_total()} of {arguments.expect} committed")
consumer.close()
