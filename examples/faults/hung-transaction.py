#!/usr/bin/env python3
"""Lab: a hung transaction. An exactly-once notification worker dies with a transaction open. Until the
broker aborts it, every read_committed reader of the notifications topic stops at the transaction's first
offset (the last stable offset) — even records written after it by other producers wait. The lab finds
the transaction with `petrel transactions` and the metrics, and shows the timeout ending it.

    examples/faults/hung-transaction.py        (starts its own broker: it needs its metrics endpoint)
"""
import re
import time
import urllib.request

from lablib import Lab  # beside this script

ORDERS = 60
CRASH_AFTER = 25
COMMIT_EVERY = 10
LATER = 7  # plain records another producer appends after the hung transaction


def main():
    lab = Lab("A transaction left open by a dead producer holds read_committed readers back.",
              broker_args=["--transaction-timeout-check-interval-ms", "500"])
    if lab.broker is None:
        lab.fail("this lab reads its broker's metrics, so it must start its own: run it without --bootstrap")
    orders, notifications = lab.name("lab-orders"), lab.name("lab-notifications")
    lab.petrel_cli("topics", "create", notifications, "--partitions", "1")
    if lab.example("order-service", "--topic", orders, "--orders", str(ORDERS)).returncode != 0:
        lab.fail("order-service failed")
    group = lab.name("notify")
    crashed = lab.example("notification-worker", "--topic", orders, "--group", group, "--exactly-once", notifications,
                          "--commit-every", str(COMMIT_EVERY), "--crash-after", str(CRASH_AFTER), "--name", "hung",
                          "--exit-when-idle", "5")
    if crashed.returncode != -9:
        lab.fail(f"the worker was meant to die by SIGKILL, it exited with {crashed.returncode}: {crashed.stderr}")
    died = time.time()
    print(f"the worker died with a transaction open after {CRASH_AFTER} notifications "
          f"({CRASH_AFTER // COMMIT_EVERY * COMMIT_EVERY} committed)")
    for i in range(LATER):
        lab.petrel_cli("produce", "--topic", notifications, input_text=f"later-{i}\n")

    def read(isolation):
        return [line for line in lab.petrel_cli("consume", "--topic", notifications, "--from-beginning",
                                                "--timeout-ms", "2000", "--isolation-level", isolation).splitlines()
                if line]

    def metric(name, labels=""):
        """The sum of a metric's series whose labels include `labels`."""
        with urllib.request.urlopen(f"http://{lab.broker.metrics}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if re.match(rf"{name}[{{ ]", line) and labels in line)

    stalled = read("read_committed")
    everything = read("read_uncommitted")
    hung = lab.petrel_cli("transactions", "list", "--state", "Ongoing")
    described = lab.petrel_cli("transactions", "describe", f"{group}-hung")
    open_transactions, lso_lag = metric("petrel_transactions_open"), metric("petrel_last_stable_offset_lag")
    print(f"read_committed sees {len(stalled)} records, read_uncommitted {len(everything)}: "
          f"the {LATER} later records wait behind the open transaction")
    print(f"petrel transactions list --state Ongoing:\n{hung.rstrip()}")
    print(f"petrel transactions describe:\n{described.rstrip()}")
    print(f"metrics: petrel_transactions_open {open_transactions:.0f}, petrel_last_stable_offset_lag {lso_lag:.0f}")

    # The worker's transaction.timeout.ms is 10 s: the broker aborts the transaction then, at a bumped
    # epoch (restarting the worker under the same name would abort it at once).
    deadline = time.time() + 30
    while time.time() < deadline and metric("petrel_transactions_open") > 0:
        time.sleep(0.5)
    print(f"aborted by the broker {time.time() - died:.1f} s after the worker died")
    released = read("read_committed")
    timed_out = metric("petrel_transactions_ended_total", 'result="timeout"')
    print(f"read_committed now sees {len(released)} records; transactions ended by timeout: {timed_out:.0f}")
    committed = CRASH_AFTER // COMMIT_EVERY * COMMIT_EVERY
    passed = (len(stalled) == committed and len(everything) == CRASH_AFTER + LATER and f"{group}-hung" in hung
              and "OPEN FOR" in described and open_transactions == 1 and lso_lag >= CRASH_AFTER - committed
              and len(released) == committed + LATER and all(r.startswith("later") for r in released[committed:])
              and timed_out == 1)
    lab.finish(passed, f"read_committed held at {committed} records until the broker aborted the hung transaction "
                       f"after its timeout, then {len(released)}; found with petrel transactions and the metrics")


if __name__ == "__main__":
    main()
