#!/usr/bin/env python3
"""Lab: broker crash. The broker is killed with SIGKILL in the middle of a stream of orders and
restarted. With the idempotent producer (retries that the broker recognises) and flush=always (fsync
before acknowledging), no acknowledged order is lost and none is stored twice.

    examples/faults/broker-crash.py        (starts its own broker: it has to kill it)
"""
import collections
import json
import time

from lablib import AppendOnly, Lab  # beside this script

ORDERS = 3000


def main():
    lab = Lab("Broker crash mid-stream: idempotent producer, flush=always.", broker_args=["--flush", "always"])
    if lab.broker is None:
        lab.fail("this lab kills its broker, so it must start its own: run it without --bootstrap")
    topic = lab.name("lab-crash")
    lab.petrel_cli("topics", "create", topic, "--partitions", "2")
    acked_log = lab.path("acked.log")
    service = lab.example("order-service", "--topic", topic, "--orders", str(ORDERS), "--rate", "1500",
                          "--acked-log", acked_log, wait=False)
    time.sleep(1.0)
    before = len(AppendOnly.lines(acked_log))
    lab.broker.kill()
    print(f"killed the broker (SIGKILL) with {before} orders acknowledged")
    time.sleep(1.0)
    lab.broker.start()
    print("restarted it on the same data directory")
    service.wait(180)
    if service.returncode != 0:
        lab.fail(f"order-service ended with {service.returncode}")

    acked = {}
    for line in AppendOnly.lines(acked_log):
        event, partition, offset = line.split()
        acked[event] = (int(partition), int(offset))
    out = lab.petrel_cli("consume", "--topic", topic, "--from-beginning", "--max-messages", str(ORDERS), "--format", "json")
    stored = collections.Counter()
    where = {}
    for line in out.splitlines():
        record = json.loads(line)
        event = record["headers"]["event-id"]
        stored[event] += 1
        where[event] = (record["partition"], record["offset"])
    lost = [event for event in acked if event not in stored]
    moved = [event for event, place in acked.items() if event in where and where[event] != place]
    duplicates = sum(count - 1 for count in stored.values())
    print(f"{len(acked)} orders acknowledged, {len(stored)} distinct orders stored, {lost and len(lost) or 0} lost, "
          f"{duplicates} stored twice, {len(moved)} not at their acknowledged offset")
    passed = len(acked) == ORDERS and not lost and duplicates == 0 and not moved and before < ORDERS
    lab.finish(passed, f"{len(acked)} acknowledged orders across a kill -9: 0 lost, 0 duplicated"
               if passed else f"{len(lost)} lost, {duplicates} duplicated, {len(moved)} moved of {len(acked)}")


if __name__ == "__main__":
    main()
