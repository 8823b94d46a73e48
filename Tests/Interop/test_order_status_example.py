"""The order-status example end to end: order-service publishes order events, order-status-service keeps each
order's latest status on the compacted topic order-status, and a restarted service restores the table from
that topic: the same table before and after the cleaner has compacted the topic to fewer records than were
published."""
import os
import re
import subprocess
import tempfile

import pytest
from conftest import PETREL, BrokerProcess, petrel, wait_until

BIN = os.path.dirname(PETREL)
# The cleaner looks for dirty logs every 100 ms; the status topic rolls a segment every kilobyte and is
# cleaned as soon as anything in it is superseded, so compaction shows within seconds.
CLEANER_ARGS = ["--log-cleaner-backoff-ms", "100"]
STATUS_TOPIC_CONFIGS = ["--topic-config", "segment.bytes=1024", "--topic-config", "min.cleanable.dirty.ratio=0.01"]
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def cleaning_broker():
    with tempfile.TemporaryDirectory(prefix="petrel-order-status-") as tmp:
        process = BrokerProcess(os.path.join(tmp, "data"), CLEANER_ARGS).start()
        try:
            yield process
        finally:
            assert process.stop() == 0, process.log_tail()


def run(name, broker, *args):
    result = subprocess.run([os.path.join(BIN, name), "--bootstrap", broker.bootstrap, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{name}: {result.stderr}"
    return result.stdout


def parse(output):
    """The service's printout: (orders restored, records read, count per status, table rows by order id)."""
    lines = output.splitlines()
    heading = re.fullmatch(r"restored (\d+) orders from (\d+) records of order-status", lines[0])
    assert heading, output
    counts = {status: int(count) for status, count in (line.split() for line in lines[1:4])}
    assert list(counts) == ["created", "paid", "shipped"], output
    rows = {}
    for line in lines[4:]:
        if line.startswith("order-"):
            order, status, updated_at = line.split()
            assert ISO_TIME.fullmatch(updated_at), line
            rows[order] = status
    return int(heading[1]), int(heading[2]), counts, rows


def restored(broker):
    return parse(run("order-status-service", broker, "--restore-only", "--print-table"))


def end_offset(topic, broker):
    described = petrel("topics", "describe", topic, "--bootstrap", broker.bootstrap)
    return sum(int(line.split()[3]) for line in described.splitlines() if re.match(r"\d+ ", line))


def statuses(first, count, status):
    return {f"order-{n}": status for n in range(first, first + count)}


def test_order_status_table_is_restored_from_the_compacted_topic(cleaning_broker):
    broker = cleaning_broker
    b = ["--bootstrap", broker.bootstrap]
    petrel("topics", "create", "orders", "--partitions", "3", *b)
    # 30 orders shipped, 30 paid, 30 created: 180 events, each moving an order forward.
    run("order-service", broker, "--orders", "30", "--events-per-order", "3")
    run("order-service", broker, "--orders", "30", "--first-order", "31", "--events-per-order", "2")
    run("order-service", broker, "--orders", "30", "--first-order", "61", "--events-per-order", "1")

    # The first run creates the compacted topic, starts from an empty table and publishes 180 updates.
    first = run("order-status-service", broker, *STATUS_TOPIC_CONFIGS, "--exit-when-idle", "3")
    assert first.startswith("restored 0 orders from 0 records of order-status\n"), first
    assert "90 orders in the table after the order events\n  created 30\n  paid 30\n  shipped 30" in first
    configs = petrel("configs", "describe", "--topic", "order-status", *b)
    assert re.search(r"^cleanup\.policy\s+compact\s", configs, re.MULTILINE), configs
    assert end_offset("order-status", broker) == 180
    expected = statuses(1, 30, "shipped") | statuses(31, 30, "paid") | statuses(61, 30, "created")
    orders, _, counts, rows = restored(broker)
    assert (orders, counts, rows) == (90, {"created": 30, "paid": 30, "shipped": 30}, expected)

    # Orders 31 to 40 ship, and this run deletes shipped orders. A restarted service restores the table
    # first, so the events it sees again change nothing: created and paid are no news for orders already
    # paid, and only the ten shipments are published, as tombstones.
    run("order-service", broker, "--orders", "10", "--first-order", "31", "--events-per-order", "3")
    second = run("order-status-service", broker, "--delete-shipped", "--exit-when-idle", "3")
    assert re.match(r"restored 90 orders from \d+ records of order-status\n", second), second
    assert "80 orders in the table after the order events\n  created 30\n  paid 20\n  shipped 30" in second
    published = end_offset("order-status", broker)
    assert published == 190
    for n in range(31, 41):
        del expected[f"order-{n}"]
    lag = petrel("groups", "describe", "order-status-service", *b)
    rows_of_lag = [line.split() for line in lag[lag.index("TOPIC"):].splitlines()[1:] if line.strip()]
    assert len(rows_of_lag) == 3 and all(row[4] == "0" for row in rows_of_lag), lag

    # Restarted once more, the service restores the same table whatever the cleaner has done so far;
    # once it has cleaned, from fewer records than were published, the superseded updates gone.
    def compacted():
        orders, records, counts, rows = restored(broker)
        assert (orders, counts, rows) == (80, {"created": 30, "paid": 20, "shipped": 30}, expected)
        return records if records < published else None
    records = wait_until(compacted, timeout=60, interval=0.5, what="the cleaner to compact order-status")
    assert records >= 80
    assert end_offset("order-status", broker) == published, "compaction keeps the offsets and the end"
