#!/usr/bin/env python3
"""Captures the request frames real Kafka clients send, as byte fixtures for the protocol tests.

Runs a broker behind the wiretap proxy of the development tools (../shared/tools/kwiretap.py), drives
kcat, confluent-kafka (librdkafka), kafka-python and aiokafka through it, and keeps the first request
of each API and version per client under Tests/PetrelProtocolTests/Fixtures/<client>/.

    python3 scripts/capture-fixtures.py [--wiretap ../shared/tools/kwiretap.py]
"""
import argparse
import asyncio
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from petrel_harness.broker_process import BrokerProcess, petrel_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROKER_PORT, PROXY_PORT = 19194, 19193
BOOTSTRAP = f"127.0.0.1:{PROXY_PORT}"
TOPIC = "fixture-orders"


def wait_for_port(port, timeout=20):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on port {port}")


def drive_kcat():
    subprocess.run(["kcat", "-b", BOOTSTRAP, "-L"], check=True, capture_output=True, timeout=30)
    lines = "".join(f"order-{i}:created-{i}\n" for i in range(3))
    subprocess.run(["kcat", "-b", BOOTSTRAP, "-P", "-t", TOPIC, "-K:", "-H", "source=kcat"],
                   input=lines.encode(), check=True, timeout=30)
    subprocess.run(["kcat", "-b", BOOTSTRAP, "-C", "-t", TOPIC, "-e", "-o", "beginning"],
                   check=True, capture_output=True, timeout=30)


def drive_confluent():
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic("fixture-librdkafka", num_partitions=2, replication_factor=1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "enable.idempotence": True, "client.id": "fixture-producer"})
    for i in range(3):
        producer.produce(TOPIC, key=f"order-{i}", value=f"created-{i}", headers=[("source", b"librdkafka")])
    producer.flush(10)
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": "fixture", "client.id": "fixture-consumer"})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    consumer.consume(3, timeout=5)
    consumer.close()
    for future in admin.delete_topics(["fixture-librdkafka"]).values():
        future.result()


def drive_kafka_python():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import KafkaAdminClient, NewTopic
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP, client_id="fixture-admin")
    admin.create_topics([NewTopic("fixture-kafka-python", 2, 1)])
    producer = KafkaProducer(bootstrap_servers=BOOTSTRAP, client_id="fixture-producer")
    for i in range(3):
        producer.send(TOPIC, key=f"order-{i}".encode(), value=f"created-{i}".encode(), headers=[("source", b"kafka-python")])
    producer.flush()
    consumer = KafkaConsumer(bootstrap_servers=BOOTSTRAP, client_id="fixture-consumer", consumer_timeout_ms=2000)
    consumer.assign([TopicPartition(TOPIC, 0)])
    consumer.seek_to_beginning()
    list(consumer)
    consumer.offsets_for_times({TopicPartition(TOPIC, 0): 0})
    admin.delete_topics(["fixture-kafka-python"])
    producer.close()
    consumer.close()
    admin.close()


def drive_aiokafka():
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, client_id="fixture-producer")
        await producer.start()
        for i in range(3):
            await producer.send_and_wait(TOPIC, key=f"order-{i}".encode(), value=f"created-{i}".encode())
        await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, client_id="fixture-consumer")
        await consumer.start()
        consumer.assign([TopicPartition(TOPIC, 0)])
        await consumer.seek_to_beginning()
        await consumer.getmany(timeout_ms=2000)
        await consumer.stop()

    asyncio.run(run())


CLIENTS = {"kcat": drive_kcat, "librdkafka": drive_confluent, "kafka-python": drive_kafka_python, "aiokafka": drive_aiokafka}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--wiretap", default=os.path.join(ROOT, "..", "shared", "tools", "kwiretap.py"))
    parser.add_argument("--petrel", default=os.path.join(ROOT, ".build", "debug", "petrel"))
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="petrel-fixtures-")
    broker = BrokerProcess(petrel_command(args.petrel, os.path.join(work, "data"), BROKER_PORT, "--advertise", BOOTSTRAP),
                           BROKER_PORT, os.path.join(work, "broker.log"))
    try:
        broker.start()
        for client, drive in CLIENTS.items():
            frames = os.path.join(work, client)
            tap = subprocess.Popen([sys.executable, args.wiretap, "--listen", BOOTSTRAP,
                                    "--upstream", f"127.0.0.1:{BROKER_PORT}", "--out", os.path.join(work, client + ".json"),
                                    "--dump-keys", "0,1,2,3,18,19,20,22", "--dump-dir", frames, "--duration", "120"],
                                   stdout=subprocess.DEVNULL)
            try:
                wait_for_port(PROXY_PORT)
                drive()
            finally:
                tap.send_signal(signal.SIGTERM)
                tap.wait(10)
            keep(client, frames)
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


def keep(client, frames):
    """Keeps the first request of each API and version."""
    target = os.path.join(ROOT, "Tests", "PetrelProtocolTests", "Fixtures", client)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target)
    kept = {}
    for path in sorted(glob.glob(os.path.join(frames, "*-req-*.bin"))):
        name = os.path.basename(path)  # c0001-Metadata-req-v4-corr2.bin
        _, api, _, version, _ = name.split("-")
        kept.setdefault(f"{api}-{version}", path)
    for label, path in sorted(kept.items()):
        shutil.copy(path, os.path.join(target, label + ".bin"))
    print(f"{client}: {', '.join(sorted(kept))}")


if __name__ == "__main__":
    main()
