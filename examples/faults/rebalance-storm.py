#!/usr/bin/env python3
"""Lab: a rebalance storm. A steady order stream (200 orders/s over 6 partitions) and a group of
confluent-kafka workers that is scaled from 1 to 4 workers, one every few seconds, then restarted one
worker at a time (a rolling deploy), under each group protocol in turn: the classic protocol with the
eager `range` assignor, the classic protocol with `cooperative-sticky`, and the consumer protocol
(KIP-848, `group.protocol=consumer`). Every worker reports each record it consumed; the lab measures,
per protocol, how long partitions sat paused with records waiting, the worst single stall, p99
end-to-end latency, duplicates (records consumed twice) and losses (records never consumed: must be 0).

    examples/faults/rebalance-storm.py [--bootstrap HOST:PORT] [--step SECONDS] [--protocols eager,...]
                                       [--commit async|sync|auto] [--static] [--consumer-heartbeat-ms MS]

The workers are this script too, run as `rebalance-storm.py --worker ...` (one process each).
"""
import collections
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

PARTITIONS = 6
RATE = 200            # orders per second, spread evenly over the partitions
WORKERS = 4
STALL_S = 0.5         # a partition counts as paused while its oldest unconsumed record is older than this
COMMIT_EVERY_S = 1.0  # workers commit what they processed once a second (--commit async or sync)
PROCESS_MS = 1.0      # each order's processing time in a worker
DRAIN_S = 30          # after the last restart: how long the group gets to consume everything

# librdkafka refuses classic-only settings (partition.assignment.strategy, session.timeout.ms,
# heartbeat.interval.ms) with group.protocol=consumer: there the broker assigns and sets the intervals.
PROTOCOLS = {
    "eager": {"group.protocol": "classic", "partition.assignment.strategy": "range"},
    "cooperative": {"group.protocol": "classic", "partition.assignment.strategy": "cooperative-sticky"},
    "consumer": {"group.protocol": "consumer"},
}


# ---- the worker process -------------------------------------------------------------------------

def worker(argv):
    """Consumes until SIGTERM, then commits and leaves the group (a clean stop). Writes one line per
    record, `M partition offset sequence produced received`, and one per assignment change,
    `A|R|L time partitions` (assigned, revoked, lost). Everything happens in the poll loop's thread:
    a confluent-kafka Consumer must not be used from two threads."""
    from confluent_kafka import Consumer, KafkaError, KafkaException

    bootstrap, topic, group, protocol, commit_mode, instance, name, out_path = argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out = open(out_path, "a", buffering=1 << 16)

    def note(kind):
        def callback(consumer, partitions):
            out.write(f"{kind} {time.time():.4f} {','.join(str(p.partition) for p in partitions) or '-'}\n")
        return callback

    def committed(error, partitions):
        if error:
            out.write(f"E {time.time():.4f} commit {error.name()}\n")

    # auto: librdkafka commits the offsets of records handed out every 5 s, and on revocation and close.
    config = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": name, "auto.offset.reset": "earliest",
              "enable.auto.commit": commit_mode == "auto", "on_commit": committed, **PROTOCOLS[protocol]}
    if instance != "-":
        config["group.instance.id"] = instance  # static membership: a restart under the same id is no rebalance
    consumer = Consumer(config)
    consumer.subscribe([topic], on_assign=note("A"), on_revoke=note("R"), on_lost=note("L"))
    last_commit = last_flush = time.monotonic()
    uncommitted = False

    def commit(asynchronous):
        nonlocal last_commit, uncommitted
        try:
            consumer.commit(asynchronous=asynchronous)
        except KafkaException as error:
            # During a rebalance a commit can be refused (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
            # STALE_MEMBER_EPOCH...): a real worker logs it and goes on; the records are read again.
            if error.args[0].code() != KafkaError._NO_OFFSET:
                out.write(f"E {time.time():.4f} commit {error.args[0].name()}\n")
        last_commit, uncommitted = time.monotonic(), False

    while not stop.is_set():
        message = consumer.poll(0.1)
        received = time.time()
        if message is not None and message.error():
            out.write(f"E {received:.4f} {message.error().name()}\n")
        elif message is not None:
            sequence, produced = message.value().split(b" ")
            out.write(f"M {message.partition()} {message.offset()} {int(sequence)} {float(produced):.4f} {received:.4f}\n")
            time.sleep(PROCESS_MS / 1000)  # the order's processing
            uncommitted = True
        if message is None or time.monotonic() - last_flush >= 0.2:
            out.flush()
            last_flush = time.monotonic()
        if commit_mode != "auto" and uncommitted and time.monotonic() - last_commit >= COMMIT_EVERY_S:
            commit(commit_mode == "async")
    if commit_mode != "auto" and uncommitted:
        commit(False)
    # Leaves the group: its partitions move at once, no session timeout to wait for. A static member
    # (group.instance.id) does not leave: its partitions wait for its successor under the same id.
    consumer.close()
    out.write(f"X {time.time():.4f} closed\n")
    out.close()


# ---- the lab ------------------------------------------------------------------------------------

class Stream(threading.Thread):
    """Produces `RATE` orders per second, round robin over the partitions, each value
    `sequence produced-time`; remembers every acknowledged (partition, offset)."""

    def __init__(self, bootstrap, topic):
        super().__init__(daemon=True)
        from confluent_kafka import Producer
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all",
                                  "enable.idempotence": True})
        self.topic = topic
        self.stopping = threading.Event()
        self.acked = {}  # (partition, offset) -> produced time
        self.failed = []
        self.sent = 0

    def delivered(self, error, message):
        if error:
            self.failed.append(str(error))
        else:
            self.acked[(message.partition(), message.offset())] = float(message.value().split(b" ")[1])

    def run(self):
        start = time.time()
        while not self.stopping.is_set():
            delay = start + self.sent / RATE - time.time()
            if delay > 0:
                time.sleep(delay)
            self.producer.produce(self.topic, f"{self.sent} {time.time():.4f}".encode(),
                                  partition=self.sent % PARTITIONS, on_delivery=self.delivered)
            self.sent += 1
            self.producer.poll(0)
        self.producer.flush(30)

    def stop(self):
        self.stopping.set()
        self.join(60)


class Worker:
    def __init__(self, lab, topic, group, protocol, name, instance):
        commit_mode = lab.args.commit
        instance = instance if lab.args.static else "-"
        self.name = name
        self.out = lab.path(f"{protocol}-{name}.log")
        self.err = open(lab.path(f"{protocol}-{name}.err"), "w")
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", lab.bootstrap, topic,
                                         group, protocol, commit_mode, instance, name, self.out], stdout=self.err,
                                        stderr=self.err)
        lab.children.append(self.process)

    def stop(self):
        """A clean stop, as a deploy does it: SIGTERM, then wait for the worker to leave."""
        self.terminate()
        return self.wait()

    def terminate(self):
        self.process.send_signal(signal.SIGTERM)

    def wait(self):
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.err.close()
        return self.process.returncode

    def lines(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return [line.split() for line in f.read().split("\n")[:-1]]  # the last may be half written


def wait_for(condition, timeout, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def consumed(workers):
    """(partition, offset) -> the times it was received, over every worker."""
    seen = {}
    for worker_ in workers:
        for fields in worker_.lines():
            if fields[0] == "M":
                seen.setdefault((int(fields[1]), int(fields[2])), []).append(float(fields[5]))
    return seen


def stalls(acked, seen):
    """Per partition, the union of the intervals [produced + STALL_S, first consumed] of the records that
    waited longer than STALL_S: the time the partition sat with a record waiting too long. Returns
    the total (partition-seconds) and the longest stall (from the first late record's production to
    the consumption that ended it)."""
    total, worst = 0.0, 0.0
    for partition in range(PARTITIONS):
        records = sorted((offset, produced, min(seen[(p, offset)]))
                         for (p, offset), produced in acked.items() if p == partition and (p, offset) in seen)
        start = end = None
        first_produced = None
        for _, produced, first in records:
            if first - produced <= STALL_S:
                continue
            if end is not None and produced + STALL_S <= end:
                end = max(end, first)
                continue
            if end is not None:
                total += end - start
                worst = max(worst, end - first_produced)
            start, end, first_produced = produced + STALL_S, first, produced
        if end is not None:
            total += end - start
            worst = max(worst, end - first_produced)
    return total, worst


def group_metric(lab, name, group):
    """A counter of the broker's for this group (summed over its series), or None: no broker of the
    lab's own (--bootstrap), or a broker without that metric."""
    if not lab.broker:
        return None
    with urllib.request.urlopen(f"http://{lab.broker.metrics}/metrics", timeout=5) as response:
        lines = [line for line in response.read().decode().splitlines()
                 if line.startswith(name + "{") and f'group="{group}"' in line]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines) if lines else None


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run(lab, protocol, step):
    """Scale 1 → 4 workers, one every `step` seconds, then restart each (stop, then start a replacement),
    one every `step` seconds; stop the stream and let the group drain. Returns the protocol's numbers."""
    topic, group = lab.name(f"lab-storm-{protocol}"), lab.name(f"storm-{protocol}")
    lab.petrel_cli("topics", "create", topic, "--partitions", str(PARTITIONS))
    began = time.time()
    workers = [Worker(lab, topic, group, protocol, "w1", "w1")]
    if not wait_for(lambda: any(f[0] == "A" and f[2] != "-" for f in workers[0].lines()), 30):
        lab.fail(f"{protocol}: the first worker got no partitions in 30 s:\n{open(workers[0].err.name).read()}")
    stream = Stream(lab.bootstrap, topic)
    stream.start()
    # The measurement starts once the first worker reads every partition steadily: its first fetches
    # are not what this lab is about.
    if not wait_for(lambda: len({k[0] for k in consumed(workers)}) == PARTITIONS, 30):
        lab.fail(f"{protocol}: the first worker did not read every partition in 30 s")
    time.sleep(1)
    measured_from = time.time()
    everyone = list(workers)
    for index in range(2, WORKERS + 1):
        time.sleep(step)
        workers.append(Worker(lab, topic, group, protocol, f"w{index}", f"w{index}"))
        everyone.append(workers[-1])
    time.sleep(step)
    described = lab.petrel_cli("groups", "describe", group, check=False).splitlines()
    exits = []
    for index in range(WORKERS):
        exits.append(workers[index].stop())
        workers[index] = Worker(lab, topic, group, protocol, f"w{index + 1}-new", f"w{index + 1}")
        everyone.append(workers[index])
        time.sleep(step)
    stream.stop()
    if stream.failed or len(stream.acked) != stream.sent:
        lab.fail(f"{protocol}: the producer failed: {len(stream.acked)} of {stream.sent} acknowledged, {stream.failed[:3]}")
    drained = wait_for(lambda: set(stream.acked) <= set(consumed(everyone)), DRAIN_S, 0.5)
    for w in workers:
        w.terminate()
    exits += [w.wait() for w in workers]
    elapsed = time.time() - began

    seen = consumed(everyone)
    lost = len(set(stream.acked) - set(seen))
    duplicates = sum(len(times) - 1 for times in seen.values())
    measured = {key: produced for key, produced in stream.acked.items() if produced >= measured_from}
    latencies = [min(seen[key]) - produced for key, produced in measured.items() if key in seen]
    paused, worst = stalls(measured, seen)
    events = [f for w in everyone for f in w.lines() if f[0] in "ARL"]
    revoked = sum(len(f[2].split(",")) for f in events if f[0] in "RL" and f[2] != "-")
    errors = collections.Counter(" ".join(f[2:]) for w in everyone for f in w.lines() if f[0] == "E")
    crashes = []
    for w in everyone:
        if w.process.returncode != 0:
            with open(w.err.name) as f:
                crashes.append(f"{w.name} exited with {w.process.returncode}: {f.read()[-2000:]}")
    return {"protocol": protocol, "records": len(stream.acked), "paused": paused, "worst": worst,
            "p50": percentile(latencies, 0.50), "p99": percentile(latencies, 0.99), "duplicates": duplicates,
            "lost": lost, "revoked": revoked, "drained": drained, "exits": exits, "errors": errors, "crashes": crashes,
            "described": described[:1], "seconds": elapsed,
            "rebalances": group_metric(lab, "petrel_consumer_group_rebalances_total", group)}


def options(parser):
    parser.add_argument("--step", type=float, default=5.0,
                        help="seconds between one scaling or restart step and the next (default 5)")
    parser.add_argument("--commit", choices=["async", "sync", "auto"], default="async",
                        help="workers commit what they processed once a second, asynchronously (the default) or "
                             "synchronously; or leave it to librdkafka (enable.auto.commit)")
    parser.add_argument("--static", action="store_true",
                        help="static membership: each replacement takes its predecessor's group.instance.id")
    parser.add_argument("--consumer-heartbeat-ms", type=int,
                        help="the broker's heartbeat interval for consumer-protocol members (default: the broker's, "
                             "5000 as in Kafka); needs a broker with --group-consumer-heartbeat-interval-ms")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help=f"which runs, comma-separated (default {','.join(PROTOCOLS)})")


def broker_args(petrel, args):
    """Only with --consumer-heartbeat-ms, and only if this broker has the flag: the lab needs none."""
    if args.consumer_heartbeat_ms is None:
        return []
    if args.bootstrap:
        sys.exit("VERDICT: FAIL --consumer-heartbeat-ms sets a flag of the lab's own broker: leave out --bootstrap")
    flag = "--group-consumer-heartbeat-interval-ms"
    if flag not in subprocess.run([petrel, "broker", "--help"], capture_output=True, text=True).stdout:
        sys.exit(f"VERDICT: FAIL --consumer-heartbeat-ms needs a broker with {flag}; this one has none")
    return [flag, str(args.consumer_heartbeat_ms)]


def main():
    from lablib import Lab  # beside this script

    lab = Lab("Rebalance storm: scale a group out and roll-restart it under each group protocol.",
              broker_args=broker_args, options=options, examples=False)
    protocols = [p for p in lab.args.protocols.split(",") if p]
    unknown = [p for p in protocols if p not in PROTOCOLS]
    if unknown:
        lab.fail(f"unknown protocol {unknown}: choose from {', '.join(PROTOCOLS)}")
    print(f"{RATE} orders/s over {PARTITIONS} partitions; per protocol: 1 → {WORKERS} workers, one every "
          f"{lab.args.step:g} s, then {WORKERS} rolling restarts, one every {lab.args.step:g} s")
    results = []
    for protocol in protocols:
        result = run(lab, protocol, lab.args.step)
        results.append(result)
        print(f"{protocol}: {result['records']} orders in {result['seconds']:.0f} s; group while {WORKERS} ran: "
              f"{' '.join(result['described']).strip() or '?'}")
        if result["errors"]:
            print("   errors the workers saw: " + ", ".join(f"{text} ×{n}" for text, n in result["errors"].most_common()))
        for line in result["crashes"]:
            print(f"   {line}")

    print()
    print(f"{'protocol':<12} {'paused partition-s':>18} {'worst stall s':>13} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'duplicates':>10} {'lost':>5} {'revocations':>11} {'rebalances':>10}")
    for r in results:
        rebalances = "-" if r["rebalances"] is None else f"{r['rebalances']:.0f}"
        print(f"{r['protocol']:<12} {r['paused']:>18.1f} {r['worst']:>13.1f} {r['p50'] * 1000:>7.0f} "
              f"{r['p99'] * 1000:>7.0f} {r['duplicates']:>10} {r['lost']:>5} {r['revoked']:>11} {rebalances:>10}")
    print()

    by = {r["protocol"]: r for r in results}
    lost = sum(r["lost"] for r in results)
    bad_exits = {r["protocol"]: r["exits"] for r in results if any(code != 0 for code in r["exits"])}
    passed = lost == 0 and all(r["drained"] for r in results) and not bad_exits
    if "consumer" in by and len(by) > 1:
        others = " and ".join(f"{by[p]['paused']:.1f} ({p})" for p in by if p != "consumer")
        head = f"consumer protocol paused {by['consumer']['paused']:.1f} partition-s vs {others}"
    else:
        head = "; ".join(f"{r['protocol']} paused {r['paused']:.1f} partition-s" for r in results)
    worst = ", ".join(f"{r['worst']:.1f} s" for r in results)
    duplicates = "/".join(str(r["duplicates"]) for r in results)
    tail = (f"nothing lost ({sum(r['records'] for r in results)} orders)" if lost == 0
            else f"{lost} order{'s' if lost != 1 else ''} LOST (never consumed)")
    if bad_exits:
        tail += f"; workers exited uncleanly: {bad_exits}"
    lab.finish(passed, f"{head}; worst stall {worst}; duplicates {duplicates} ({'/'.join(by)}); {tail}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
