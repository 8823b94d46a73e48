#!/usr/bin/env python3
"""Lab: a poison record. One malformed order in the topic crashes the notification worker every time it
reaches it; restarted in a loop, the worker never gets past it: nothing is committed beyond it, the lag
stays, and every order behind it waits. `petrel groups describe` and the lag metric show where it is
stuck. Two fixes: skip the record (delete the records below the next offset, so the group resumes after
it), and a dead-letter topic in the worker, which sets malformed records aside and goes on.

    examples/faults/poison-record.py [--bootstrap HOST:PORT]
"""
import json
import subprocess

from lablib import AppendOnly, Lab  # beside this script

BEFORE, AFTER = 20, 20
RESTARTS = 3


def orders(lab, topic, count, start):
    """`count` well-formed order-created events, through the petrel CLI (partition 0)."""
    lines = []
    for index in range(start, start + count):
        lines.append(json.dumps({"key": f"order-{index}", "value": json.dumps({
            "eventID": f"evt-{index}", "orderID": f"order-{index}", "kind": "OrderCreated", "sequence": 1,
            "customer": "lab", "totalCents": 100})}))
    produce(lab, topic, "\n".join(lines) + "\n", "--format", "json")


def produce(lab, topic, text, *args):
    result = subprocess.run([lab.petrel, "produce", "--topic", topic, "--partition", "0", *args,
                             "--bootstrap", lab.bootstrap], input=text, text=True, capture_output=True, timeout=60)
    if result.returncode != 0:
        lab.fail(f"petrel produce failed: {result.stderr.strip()}")


def worker(lab, topic, group, out, *extra):
    return lab.example("notification-worker", "--topic", topic, "--group", group, "--out", out,
                       "--commit-every", "1", "--exit-when-idle", "3", *extra, timeout=120)


def main():
    lab = Lab("Poison record: a malformed order stops a worker; skip it, or set it aside.")
    topic, group, dead = lab.name("lab-poison"), lab.name("poison-workers"), lab.name("lab-poison-dlq")
    lab.petrel_cli("topics", "create", topic, "--partitions", "1")
    orders(lab, topic, BEFORE, 0)
    produce(lab, topic, "{this is not an order\n")
    orders(lab, topic, AFTER, BEFORE + 1)
    print(f"published {BEFORE} orders, one malformed record at offset {BEFORE}, then {AFTER} more orders")

    notified = lab.path("notifications.log")
    crashes = 0
    for attempt in range(1, RESTARTS + 1):
        run = worker(lab, topic, group, notified, "--strict", "--name", f"strict-{attempt}")
        crashes += run.returncode == 70
        _, rows = lab.lag(group)
        committed, end, lag = rows.get(0, ("-", 0, 0))
        print(f"run {attempt}: exit {run.returncode}; committed {committed}, log end {end}, lag {lag}; "
              f"{len(AppendOnly.lines(notified))} notified so far")
    _, rows = lab.lag(group)
    committed, end, lag = rows.get(0, ("-", 0, 0))
    stuck = crashes == RESTARTS and committed == str(BEFORE) and lag == AFTER + 1
    metric = lab.metrics_lag(group)
    if metric is not None:
        print(f"the broker's metric agrees: petrel_consumer_group_lag{{group=\"{group}\"}} = {metric}")
        stuck = stuck and metric.get(0) == AFTER + 1
    if not stuck or len(AppendOnly.lines(notified)) != BEFORE:
        lab.fail(f"expected {RESTARTS} crashes stuck at offset {BEFORE} with lag {AFTER + 1}, saw {crashes} crashes, "
                 f"committed {committed}, lag {lag}")
    print(f"stuck: {RESTARTS} restarts, each crashed on offset {BEFORE}; the {AFTER} orders behind it wait")

    # Fix 1: skip it. Everything below the next offset goes; the group's committed offset is now below the
    # log start, so the worker resumes from there (auto.offset.reset=earliest).
    print(lab.petrel_cli("topics", "delete-records", topic, "--partition", "0", "--before", str(BEFORE + 1)).strip())
    run = worker(lab, topic, group, notified, "--strict", "--name", "after-skip")
    _, rows = lab.lag(group)
    skipped_ok = run.returncode == 0 and len(AppendOnly.lines(notified)) == BEFORE + AFTER and rows[0][2] == 0
    print(f"after skipping: exit {run.returncode}, {len(AppendOnly.lines(notified))} orders notified, lag {rows[0][2]}")
    if not skipped_ok:
        lab.fail("the worker should have gone past the skipped record and caught up")

    # Fix 2: a dead-letter topic. Another malformed record arrives; this worker sets it aside and goes on.
    produce(lab, topic, "{another broken order\n")
    orders(lab, topic, 5, BEFORE + AFTER + 1)
    lab.petrel_cli("topics", "create", dead, "--partitions", "1")
    run = worker(lab, topic, group, notified, "--strict", "--dead-letter-topic", dead, "--name", "with-dlq")
    _, rows = lab.lag(group)
    kept = lab.petrel_cli("consume", "--topic", dead, "--partition", "0", "--offset", "0", "--max-messages", "1")
    dlq_ok = (run.returncode == 0 and rows[0][2] == 0 and len(AppendOnly.lines(notified)) == BEFORE + AFTER + 5
              and "another broken order" in kept)
    print(f"with a dead-letter topic: exit {run.returncode}, lag {rows[0][2]}, "
          f"{len(AppendOnly.lines(notified))} orders notified, dead-lettered: {kept.strip()}")
    lab.finish(dlq_ok, f"stuck at offset {BEFORE} through {RESTARTS} crashes (lag {AFTER + 1}); skipping it with "
                       f"delete-records let the worker catch up (lag 0); the dead-letter topic kept the next malformed "
                       f"record and the worker went on (lag 0)")


if __name__ == "__main__":
    main()
