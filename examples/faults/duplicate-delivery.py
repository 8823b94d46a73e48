#!/usr/bin/env python3
"""Lab: duplicate delivery. A notification worker is killed after notifying but before committing; the
worker that takes over gets those events again. Without de-duplication the customers are notified twice;
with it (by event id) they are not. A third run writes the notifications as records, in transactions
with the consumed offsets (exactly once): the worker is killed mid-transaction, restarted with the same
transactional id, and a read_committed reader of the notifications topic sees each event exactly once.

    examples/faults/duplicate-delivery.py [--bootstrap HOST:PORT]
"""
import collections

from lablib import AppendOnly, Lab  # beside this script

ORDERS = 100
CRASH_AFTER = 35   # events notified before the crash
COMMIT_EVERY = 10  # so the last 5 notified events were never committed


def run(lab, topic, dedupe):
    group = lab.name("notify-dedupe" if dedupe else "notify")
    out = lab.path(f"notifications-{'dedupe' if dedupe else 'plain'}.log")
    flags = ["--topic", topic, "--group", group, "--out", out, "--commit-every", str(COMMIT_EVERY)] + (["--dedupe"] if dedupe else [])
    crashed = lab.example("notification-worker", *flags, "--name", "first", "--crash-after", str(CRASH_AFTER), "--exit-when-idle", "5")
    if crashed.returncode != -9:
        lab.fail(f"the first worker was meant to die by SIGKILL, it exited with {crashed.returncode}: {crashed.stderr}")
    survivor = lab.example("notification-worker", *flags, "--name", "second", "--exit-when-idle", "3")
    if survivor.returncode != 0:
        lab.fail(f"the second worker failed: {survivor.stderr}")
    events = [line.split()[1] for line in AppendOnly.lines(out)]
    counts = collections.Counter(events)
    duplicates = sum(count - 1 for count in counts.values())
    members, rows = lab.lag(group)
    lag = sum(row[2] for row in rows.values())
    print(f"{'with' if dedupe else 'without'} de-duplication: {len(events)} notifications for {len(counts)} events, "
          f"{duplicates} duplicates, lag {lag}")
    return len(counts), duplicates, lag


def run_exactly_once(lab, topic):
    group = lab.name("notify-exactly-once")
    out = lab.name("lab-notifications")
    lab.petrel_cli("topics", "create", out, "--partitions", "2")
    flags = ["--topic", topic, "--group", group, "--exactly-once", out, "--commit-every", str(COMMIT_EVERY),
             "--name", "notifier"]
    crashed = lab.example("notification-worker", *flags, "--crash-after", str(CRASH_AFTER), "--exit-when-idle", "5")
    if crashed.returncode != -9:
        lab.fail(f"the exactly-once worker was meant to die by SIGKILL, it exited with {crashed.returncode}: "
                 f"{crashed.stderr}")
    # Restarted under the same name, hence the same transactional id: it fences the dead instance and
    # aborts the transaction it left open, then carries on from the last committed offsets.
    survivor = lab.example("notification-worker", *flags, "--exit-when-idle", "3")
    if survivor.returncode != 0:
        lab.fail(f"the restarted exactly-once worker failed: {survivor.stderr}")

    def read(isolation):
        return lab.petrel_cli("consume", "--topic", out, "--from-beginning", "--timeout-ms", "3000",
                              "--isolation-level", isolation).splitlines()
    committed = [line.split()[1] for line in read("read_committed") if line]
    everything = [line.split()[1] for line in read("read_uncommitted") if line]
    counts = collections.Counter(committed)
    duplicates = sum(count - 1 for count in counts.values())
    _, rows = lab.lag(group)
    lag = sum(row[2] for row in rows.values())
    print(f"exactly once: read_committed sees {len(committed)} notifications for {len(counts)} events, "
          f"{duplicates} duplicates, lag {lag} (read_uncommitted sees {len(everything)}: the aborted "
          f"transaction's {len(everything) - len(committed)} too)")
    return len(counts), duplicates, lag, len(everything) - len(committed)


def main():
    lab = Lab("Duplicate delivery after a crash between processing and committing.")
    topic = lab.name("lab-orders")
    published = lab.example("order-service", "--topic", topic, "--orders", str(ORDERS))
    if published.returncode != 0:
        lab.fail(f"order-service failed: {published.stderr}")
    print(f"published {ORDERS} OrderCreated events to {topic}")
    plain_events, plain_duplicates, plain_lag = run(lab, topic, dedupe=False)
    dedupe_events, dedupe_duplicates, dedupe_lag = run(lab, topic, dedupe=True)
    once_events, once_duplicates, once_lag, aborted = run_exactly_once(lab, topic)
    passed = (plain_events == dedupe_events == once_events == ORDERS and plain_duplicates > 0
              and dedupe_duplicates == 0 and once_duplicates == 0 and aborted > 0
              and plain_lag == dedupe_lag == once_lag == 0)
    lab.finish(passed, f"{plain_duplicates} duplicate notifications without de-duplication, "
                       f"{dedupe_duplicates} with it, {once_duplicates} with transactions ({aborted} aborted "
                       f"notifications never seen by read_committed); every one of {ORDERS} orders notified; lag 0")


if __name__ == "__main__":
    main()
