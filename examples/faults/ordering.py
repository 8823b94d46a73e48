#!/usr/bin/env python3
"""Lab: ordering. An order's events (created, paid, shipped) published without a key spread over the
partitions, and a consumer sees some of them out of order. Keyed by order id, all of an order's events
share a partition, and they always arrive in order.

    examples/faults/ordering.py [--bootstrap HOST:PORT]
"""
import json

from lablib import Lab  # beside this script

ORDERS = 60
PARTITIONS = 4


def out_of_order(lab, topic):
    """Orders whose events were consumed with a sequence number lower than one already seen."""
    out = lab.petrel_cli("consume", "--topic", topic, "--from-beginning", "--max-messages", str(ORDERS * 3), "--format", "json")
    last = {}
    broken = set()
    for line in out.splitlines():
        event = json.loads(json.loads(line)["value"])
        order, sequence = event["orderID"], event["sequence"]
        if sequence < last.get(order, 0):
            broken.add(order)
        last[order] = max(sequence, last.get(order, 0))
    if len(last) != ORDERS:
        lab.fail(f"expected {ORDERS} orders in {topic}, read {len(last)}")
    return len(broken)


def run(lab, keyed):
    topic = lab.name("lab-keyed" if keyed else "lab-unkeyed")
    lab.petrel_cli("topics", "create", topic, "--partitions", str(PARTITIONS))
    # A steady rate, so batches stay small and unkeyed events really do move between partitions.
    flags = ["--topic", topic, "--orders", str(ORDERS), "--events-per-order", "3", "--rate", "400"] + ([] if keyed else ["--unkeyed"])
    published = lab.example("order-service", *flags)
    if published.returncode != 0:
        lab.fail(f"order-service failed: {published.stderr}")
    broken = out_of_order(lab, topic)
    print(f"{'keyed by order id' if keyed else 'without keys'}: {broken} of {ORDERS} orders seen out of order")
    return broken


def main():
    lab = Lab("Ordering: per-order sequence with and without keys.")
    unkeyed = run(lab, keyed=False)
    keyed = run(lab, keyed=True)
    lab.finish(unkeyed > 0 and keyed == 0, f"{unkeyed} orders out of order without keys, {keyed} with keys")


if __name__ == "__main__":
    main()
