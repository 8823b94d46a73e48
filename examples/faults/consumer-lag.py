#!/usr/bin/env python3
"""Lab: consumer lag. One slow notification worker cannot keep up; `petrel groups describe` and the
broker's `petrel_consumer_group_lag` metric show the lag grow. Two more workers join the group, it
rebalances, and the lag drains to zero.

    examples/faults/consumer-lag.py [--bootstrap HOST:PORT]
"""
import time

from lablib import Lab  # beside this script

EVENTS = 600
PARTITIONS = 3


def total_lag(lab, group):
    members, rows = lab.lag(group)
    return members, sum(row[2] for row in rows.values()), len(rows)


def main():
    lab = Lab("Consumer lag: a slow worker, then more workers.")
    topic, group = lab.name("lab-lag"), lab.name("lag-workers")
    lab.petrel_cli("topics", "create", topic, "--partitions", str(PARTITIONS))
    published = lab.example("order-service", "--topic", topic, "--orders", str(EVENTS))
    if published.returncode != 0:
        lab.fail(f"order-service failed: {published.stderr}")
    print(f"published {EVENTS} events to {topic} ({PARTITIONS} partitions)")

    worker = ["--topic", topic, "--group", group, "--commit-every", "5", "--exit-when-idle", "4"]
    lab.example("notification-worker", *worker, "--out", lab.path("slow.log"), "--name", "slow", "--delay-ms", "40", wait=False)
    samples = []
    deadline = time.time() + 60
    while time.time() < deadline:
        members, lag, partitions = total_lag(lab, group)
        if partitions and members:
            samples.append(lag)
            if len(samples) >= 4:
                break
        time.sleep(1)
    print("lag with one slow worker (every second): " + ", ".join(map(str, samples)))
    if not samples or min(samples) <= 0:
        lab.fail(f"the slow worker was expected to build lag, saw {samples}")
    metric = lab.metrics_lag(group)
    if metric is not None:
        print(f"the broker's metric agrees: petrel_consumer_group_lag{{group=\"{group}\"}} sums to {sum(metric.values())} "
              f"over partitions {sorted(metric)}")
        if sum(metric.values()) <= 0:
            lab.fail(f"the lag metric should show the backlog, saw {metric}")

    for name in ("fast-1", "fast-2"):
        lab.example("notification-worker", *worker, "--out", lab.path(f"{name}.log"), "--name", name, wait=False)
    most_members, drained_at, started = 1, None, time.time()
    while time.time() - started < 120:
        members, lag, _ = total_lag(lab, group)
        most_members = max(most_members, members)
        if lag == 0:
            drained_at = time.time() - started
            break
        time.sleep(0.5)
    print(f"after adding two workers: the group grew to {most_members} members; "
          + (f"lag 0 after {drained_at:.1f} s" if drained_at is not None else "lag did not drain"))
    metric = lab.metrics_lag(group)
    if metric is not None:
        print(f"and the metric: petrel_consumer_group_lag sums to {sum(metric.values())}")
    passed = samples[-1] > 0 and most_members == 3 and drained_at is not None and (metric is None or sum(metric.values()) == 0)
    lab.finish(passed, f"lag reached {max(samples)} with one slow worker, drained to 0 after {most_members} members joined")


if __name__ == "__main__":
    main()
