"""The consumer group protocol of KIP-848 (`group.protocol=consumer`) with confluent-kafka: the broker
assigns, members reconcile with heartbeats. Members share a topic's partitions; a fourth joins without
pausing the partitions that stay put; a clean leave hands over at once, a SIGKILL after the session
timeout; static members get their partitions back; committed offsets resume; every record is
consumed; admin tools see a consumer-protocol group."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from conftest import BrokerProcess, create_topic, free_port, petrel, wait_until


def consumer(bootstrap, name, group="kip848"):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "client.id": name, "enable.auto.commit": True,
                     "auto.commit.interval.ms": 500})


def test_three_members_share_six_partitions_and_consume_everything(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("kip848-orders", 6, 1)])["kip848-orders"].result(30)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for i in range(600):
        producer.produce("kip848-orders", key=f"order-{i}", value=f"order-{i}")
    assert producer.flush(30) == 0

    members = [consumer(broker.bootstrap, f"worker-{i}") for i in range(3)]
    for member in members:
        member.subscribe(["kip848-orders"])
    seen = []
    assignments = {}
    lock = threading.Lock()
    stop = threading.Event()

    # Each member is used by its own thread only (confluent-kafka's calls on one consumer do not mix
    # across threads), which also records what it is assigned.
    def poll(index, member):
        while not stop.is_set():
            message = member.poll(0.2)
            with lock:
                assignments[index] = {tp.partition for tp in member.assignment()}
                if message is not None and not message.error():
                    seen.append(message.value().decode())
    threads = [threading.Thread(target=poll, args=(index, member)) for index, member in enumerate(members)]
    for thread in threads:
        thread.start()
    try:
        def settled():
            with lock:
                current = [assignments.get(index, set()) for index in range(3)]
            return current if sorted(len(a) for a in current) == [2, 2, 2] else None
        settled_assignments = wait_until(settled, timeout=60, interval=0.5, what="three members with two partitions each")
        assert set().union(*settled_assignments) == set(range(6))
        wait_until(lambda: len(set(seen)) == 600, timeout=60, what="every record consumed")
        # The broker describes it as a consumer-protocol group (ConsumerGroupDescribe).
        described = admin.describe_consumer_groups(["kip848"])["kip848"].result(30)
        assert described.type.name == "CONSUMER" and len(described.members) == 3
        assert sorted(len(m.assignment.topic_partitions) for m in described.members) == [2, 2, 2]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for member in members:
            member.close()
    assert set(seen) == {f"order-{i}" for i in range(600)}


# --- Members in their own processes, under a steady stream ----------------------------------------

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kip848_worker.py")
PARTITIONS = 6
# Every worker process a test started, so none outlives a failed test.
STARTED = []


@pytest.fixture(autouse=True)
def no_leftover_workers():
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(10)


class Worker:
    """A kip848_worker.py process and what it reported: records (partition, offset, value, time) and
    assignment changes (time, partitions)."""

    def __init__(self, bootstrap, group, topic, name, instance_id=None):
        args = [sys.executable, WORKER, bootstrap, group, topic, name]
        if instance_id:
            args += ["--instance-id", instance_id]
        self.name = name
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        STARTED.append(self.process)
        self.records = []
        self.assignments = []
        self.closed = None
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            event = json.loads(line)
            with self.lock:
                if event["e"] == "record":
                    self.records.append((event["p"], event["o"], event["v"], event["t"]))
                elif event["e"] == "assigned":
                    self.assignments.append((event["t"], set(event["partitions"])))
                elif event["e"] == "closed":
                    self.closed = event["t"]

    @property
    def assignment(self):
        with self.lock:
            return self.assignments[-1][1] if self.assignments else set()

    def stop(self):
        """SIGTERM: the worker closes its consumer (a final commit, then a leave heartbeat)."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)
        self.reader.join(10)

    def kill(self):
        self.process.kill()
        self.process.wait(10)
        self.reader.join(10)


class SteadyProducer:
    """Produces `rate` records a second, round-robin over the partitions, values "seq"; remembers every
    acknowledged one."""

    def __init__(self, bootstrap, topic, rate=120):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
        self.topic = topic
        self.rate = rate
        self.acked = set()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        seq = 0
        start = time.time()
        while not self.stop_flag.is_set():
            def delivered(error, message, seq=seq):
                if error is None:
                    self.acked.add(str(seq))
            self.producer.produce(self.topic, value=str(seq), partition=seq % PARTITIONS, on_delivery=delivered)
            self.producer.poll(0)
            seq += 1
            pause = start + seq / self.rate - time.time()
            if pause > 0:
                time.sleep(pause)
        assert self.producer.flush(30) == 0

    def stop(self):
        self.stop_flag.set()
        self.thread.join(60)


@pytest.fixture
def fast_broker():
    """A broker whose consumer-protocol members heartbeat every 300 ms, with a 6 s session timeout."""
    metrics_port = free_port()
    with tempfile.TemporaryDirectory(prefix="petrel-kip848-") as tmp:
        process = BrokerProcess(os.path.join(tmp, "data"), ["--group-consumer-session-timeout-ms", "6000",
                                                            "--group-consumer-heartbeat-interval-ms", "300",
                                                            "--metrics", f"127.0.0.1:{metrics_port}"]).start()
        process.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        try:
            yield process
        finally:
            code = process.stop()
            assert code == 0 or code is None, f"broker exited with {code}:\n{process.log()}"


def balanced(workers, shares):
    """The workers' assignments if they cover every partition once with these share sizes, else None."""
    current = [worker.assignment for worker in workers]
    if sorted(len(a) for a in current) != sorted(shares):
        return None
    covered = set().union(*current)
    return current if covered == set(range(PARTITIONS)) and sum(map(len, current)) == PARTITIONS else None


def longest_gap(workers, partitions, start, end):
    """The longest time, in seconds, any of `partitions` went without a record consumed in [start, end]."""
    times = {p: [start] for p in partitions}
    for worker in workers:
        with worker.lock:
            for partition, _, _, at in worker.records:
                if partition in times and start <= at <= end:
                    times[partition].append(at)
    worst = 0.0
    for partition, seen in times.items():
        seen = sorted(seen) + [end]
        worst = max(worst, max(b - a for a, b in zip(seen, seen[1:])))
    return worst


def consumed_values(workers):
    values = []
    for worker in workers:
        with worker.lock:
            values += [value for _, _, value, _ in worker.records]
    return values


def test_fourth_member_joins_without_pausing_the_others_and_a_clean_leave_hands_over_at_once(fast_broker):
    bootstrap = fast_broker.bootstrap
    create_topic(fast_broker, "kip848-stream", PARTITIONS)
    producer = SteadyProducer(bootstrap, "kip848-stream")
    workers = [Worker(bootstrap, "kip848-stream-group", "kip848-stream", f"worker-{i}") for i in range(3)]
    try:
        before = wait_until(lambda: balanced(workers, [2, 2, 2]), timeout=60, interval=0.2,
                            what="three members with two partitions each")
        time.sleep(2)
        # A fourth member: two partitions move to it; the four that stay where they are keep flowing.
        joined_at = time.time()
        workers.append(Worker(bootstrap, "kip848-stream-group", "kip848-stream", "worker-3"))
        after = wait_until(lambda: balanced(workers, [1, 1, 2, 2]), timeout=60, interval=0.2,
                           what="four members sharing six partitions")
        settled_at = time.time()
        time.sleep(2)
        kept = set().union(*(b & a for b, a in zip(before, after[:3])))
        assert kept == set(range(PARTITIONS)) - after[3], f"only what the newcomer needs moves: {before} -> {after}"
        gap = longest_gap(workers, kept, joined_at, time.time())
        # At 20 records/s a partition, a kept partition's records arrive every ~50 ms; a group-wide stop
        # (the classic eager protocol) would stop them for the whole rebalance.
        assert gap < 1.5, f"a kept partition paused {gap:.2f}s while worker-3 joined ({settled_at - joined_at:.1f}s)"

        # A clean leave: the leaver's partitions go to the others at once, not after the session timeout.
        leaver = workers.pop(1)
        given_up = leaver.assignment
        left_at = time.time()
        leaver.stop()
        wait_until(lambda: balanced(workers, [2, 2, 2]), timeout=30, interval=0.1,
                   what="three members with two partitions each after a leave")
        handover = time.time() - left_at
        assert handover < 4, f"the leaver's partitions {given_up} took {handover:.1f}s to move (session is 6s)"
        time.sleep(1)
    finally:
        producer.stop()
    # Every acknowledged record is consumed (at least once: the leaver's last records may be read twice).
    wait_until(lambda: producer.acked <= set(consumed_values(workers + [leaver])), timeout=60, interval=0.5,
               what="every acknowledged record consumed")
    for worker in workers:
        worker.stop()
    # Committed offsets resume correctly: each partition's committed offset is its end (the workers
    # committed what they read when they closed), and a new member starts exactly there.
    check = Consumer({"bootstrap.servers": bootstrap, "group.id": "kip848-stream-group"})
    committed = check.committed([TopicPartition("kip848-stream", p) for p in range(PARTITIONS)], timeout=30)
    ends = [check.get_watermark_offsets(TopicPartition("kip848-stream", p), timeout=30)[1] for p in range(PARTITIONS)]
    check.close()
    assert [tp.offset for tp in committed] == ends
    extra = Producer({"bootstrap.servers": bootstrap})
    for seq in range(100_000, 100_060):
        extra.produce("kip848-stream", value=str(seq), partition=seq % PARTITIONS)
    assert extra.flush(30) == 0
    resumed = Worker(bootstrap, "kip848-stream-group", "kip848-stream", "worker-resumed")
    try:
        wait_until(lambda: len(resumed.records) >= 60, timeout=60, interval=0.2, what="the new records consumed")
        time.sleep(1)
        with resumed.lock:
            firsts = {}
            for partition, offset, _, _ in resumed.records:
                firsts.setdefault(partition, offset)
            values = [value for _, _, value, _ in resumed.records]
        assert sorted(values) == sorted(str(seq) for seq in range(100_000, 100_060)), "nothing old is read again"
        assert firsts == {p: ends[p] for p in range(PARTITIONS)}
    finally:
        resumed.stop()


def test_sigkilled_member_is_replaced_after_the_session_timeout(fast_broker):
    bootstrap = fast_broker.bootstrap
    create_topic(fast_broker, "kip848-kill", PARTITIONS)
    producer = SteadyProducer(bootstrap, "kip848-kill", rate=60)
    workers = [Worker(bootstrap, "kip848-kill-group", "kip848-kill", f"worker-{i}") for i in range(2)]
    try:
        wait_until(lambda: balanced(workers, [3, 3]), timeout=60, interval=0.2, what="two members, three each")
        time.sleep(1)
        victim, survivor = workers
        orphaned = victim.assignment
        killed_at = time.time()
        victim.kill()
        taken = wait_until(lambda: survivor.assignment == set(range(PARTITIONS)) and time.time(), timeout=40,
                           interval=0.1, what="the survivor holding every partition")
        waited = taken - killed_at
        # The broker hands a partition over only once its holder let go or is gone: a SIGKILL'd member
        # lets go of nothing, so its partitions wait for the 6 s session timeout (plus a timer tick).
        assert 5 <= waited < 15, f"{orphaned} moved {waited:.1f}s after the kill"
        time.sleep(1)
    finally:
        producer.stop()
    wait_until(lambda: producer.acked <= set(consumed_values(workers)), timeout=60, interval=0.5,
               what="every acknowledged record consumed, the killed member's share by the survivor")
    survivor.stop()


def test_static_member_restart_gets_its_partitions_back_without_moving_others(fast_broker):
    bootstrap = fast_broker.bootstrap
    create_topic(fast_broker, "kip848-static", PARTITIONS)
    workers = [Worker(bootstrap, "kip848-static-group", "kip848-static", f"worker-{i}", instance_id=f"instance-{i}")
               for i in range(3)]
    try:
        before = wait_until(lambda: balanced(workers, [2, 2, 2]), timeout=60, interval=0.2,
                            what="three static members with two partitions each")
        time.sleep(1)
        others = [workers[0], workers[2]]
        history = [len(worker.assignments) for worker in others]
        workers[1].stop()  # a static member's leave (epoch -2) keeps its partitions for it
        time.sleep(1)
        workers[1] = Worker(bootstrap, "kip848-static-group", "kip848-static", "worker-1-again",
                            instance_id="instance-1")
        wait_until(lambda: workers[1].assignment == before[1], timeout=30, interval=0.1,
                   what="the restarted member getting its partitions back")
        time.sleep(1)
        assert [len(worker.assignments) for worker in others] == history, "the other members' partitions moved"
        assert [worker.assignment for worker in others] == [before[0], before[2]]
    finally:
        for worker in workers:
            worker.stop()


def test_consumer_group_described_by_every_tool(fast_broker):
    """petrel groups describe (ConsumerGroupDescribe: epochs, current and target assignment),
    kafka-python's describe (DescribeGroups in the classic shape), ListGroups' type, and the metrics."""
    bootstrap = fast_broker.bootstrap
    create_topic(fast_broker, "kip848-described", PARTITIONS)
    workers = [Worker(bootstrap, "kip848-described-group", "kip848-described", f"worker-{i}") for i in range(2)]
    try:
        wait_until(lambda: balanced(workers, [3, 3]), timeout=60, interval=0.2, what="two members, three each")
        out = wait_until(lambda: (lambda text: "STATE Stable" in text and text)(
            petrel("groups", "describe", "kip848-described-group", "--bootstrap", bootstrap)),
            timeout=30, interval=0.5, what="a stable group described")
        assert "TYPE consumer" in out and "PROTOCOL uniform" in out and "GROUP-EPOCH 2" in out, out
        assert "ASSIGNMENT-EPOCH 2" in out and "EPOCH" in out and "TARGET" in out, out
        assert out.count("kip848-described:") == 4, out  # each member's assignment and target

        from kafka import KafkaAdminClient
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            described = admin.describe_groups(["kip848-described-group"])["kip848-described-group"]
            assert described["error"] is None and described["group_state"] == "Stable"
            assert described["protocol_type"] == "consumer" and described["protocol_data"] == "uniform"
            partitions = sorted(p for member in described["members"]
                                for topic in member["member_assignment"]["assigned_partitions"]
                                for p in topic["partitions"])
            assert partitions == list(range(PARTITIONS))
            consumers = admin.list_groups(types_filter=["consumer"])
            classics = admin.list_groups(types_filter=["classic"])
            assert "kip848-described-group" in [group["group_id"] for group in consumers]
            assert "kip848-described-group" not in [group["group_id"] for group in classics]
        finally:
            admin.close()

        scrape = urllib.request.urlopen(fast_broker.metrics_url, timeout=10).read().decode()
        labels = 'group="kip848-described-group",protocol="consumer"'
        assert f"petrel_consumer_group_epoch{{{labels}}} 2" in scrape, scrape
        changes = [line for line in scrape.splitlines()
                   if line.startswith(f"petrel_consumer_group_assignment_changes_total{{{labels}}}")]
        assert changes and float(changes[0].split()[-1]) >= 2, changes
        assert f"petrel_consumer_group_rebalances_total{{{labels}}}" in scrape
    finally:
        for worker in workers:
            worker.stop()


def test_new_partitions_and_regex_matches_are_assigned_without_the_members_doing_anything(fast_broker):
    bootstrap = fast_broker.bootstrap
    create_topic(fast_broker, "kip848-grow", 2)
    workers = [Worker(bootstrap, "kip848-grow-group", "kip848-grow", f"worker-{i}") for i in range(2)]
    try:
        wait_until(lambda: sorted(len(w.assignment) for w in workers) == [1, 1], timeout=60, interval=0.2,
                   what="two members, one partition each")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_partitions([NewPartitions("kip848-grow", 4)])["kip848-grow"].result(30)
        wait_until(lambda: sorted(len(w.assignment) for w in workers) == [2, 2]
                   and set().union(*(w.assignment for w in workers)) == {0, 1, 2, 3},
                   timeout=30, interval=0.2, what="the two new partitions assigned")
        producer = Producer({"bootstrap.servers": bootstrap})
        for partition in (2, 3):
            producer.produce("kip848-grow", value=f"new-{partition}", partition=partition)
        assert producer.flush(30) == 0
        wait_until(lambda: {"new-2", "new-3"} <= set(consumed_values(workers)), timeout=30,
                   what="records of the new partitions consumed")
    finally:
        for worker in workers:
            worker.stop()


def test_a_regex_subscription_picks_up_a_new_matching_topic(fast_broker):
    bootstrap = fast_broker.bootstrap
    create_topic(fast_broker, "kip848-re-a", 2)
    worker = Worker(bootstrap, "kip848-regex-group", "^kip848-re-.*", "worker-regex")
    try:
        wait_until(lambda: len(worker.assignment) == 2, timeout=60, interval=0.2, what="the matching topic assigned")
        create_topic(fast_broker, "kip848-re-b", 2)
        create_topic(fast_broker, "kip848-other", 2)
        producer = Producer({"bootstrap.servers": bootstrap})
        for topic in ("kip848-re-b", "kip848-other"):
            producer.produce(topic, value=f"from-{topic}", partition=0)
        assert producer.flush(30) == 0
        wait_until(lambda: "from-kip848-re-b" in consumed_values([worker]), timeout=60, interval=0.2,
                   what="the new matching topic's record consumed")
        time.sleep(1)
        assert "from-kip848-other" not in consumed_values([worker])
    finally:
        worker.stop()
