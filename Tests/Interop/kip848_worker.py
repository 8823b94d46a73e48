"""A consumer-group worker for the KIP-848 tests: confluent-kafka with `group.protocol=consumer`, in
its own process so a test can stop it cleanly (SIGTERM: close, which commits and leaves) or kill it
(SIGKILL). It prints one JSON line per record consumed and one per assignment change, with times."""
import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("group")
    parser.add_argument("topic")
    parser.add_argument("name")
    parser.add_argument("--instance-id")
    args = parser.parse_args()
    settings = {"bootstrap.servers": args.bootstrap, "group.id": args.group, "group.protocol": "consumer",
                "auto.offset.reset": "earliest", "client.id": args.name, "enable.auto.commit": True,
                "auto.commit.interval.ms": 200}
    if args.instance_id:
        settings["group.instance.id"] = args.instance_id
    consumer = Consumer(settings)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    consumer.subscribe([args.topic])

    def emit(event):
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    emit({"e": "started", "t": time.time()})
    assigned = None
    # Everything on this one thread: confluent-kafka's calls on a consumer do not mix across threads.
    while not stopping:
        message = consumer.poll(0.05)
        now = time.time()
        current = sorted(tp.partition for tp in consumer.assignment())
        if current != assigned:
            assigned = current
            emit({"e": "assigned", "partitions": current, "t": now})
        if message is not None and not message.error():
            emit({"e": "record", "p": message.partition(), "o": message.offset(), "v": message.value().decode(),
                  "t": now})
    consumer.close()
    emit({"e": "closed", "t": time.time()})


if __name__ == "__main__":
    main()
