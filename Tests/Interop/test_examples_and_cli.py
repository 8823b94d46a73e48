"""The example order flow end to end, and the petrel CLI's topic and group commands."""
import os
import subprocess

from conftest import PETREL, petrel

BIN = os.path.dirname(PETREL)


def example(name, broker, *args):
    result = subprocess.run([os.path.join(BIN, name), "--bootstrap", broker.bootstrap, *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{name}: {result.stderr}"
    return result


def lag_rows(broker, group):
    out = petrel("groups", "describe", group, "--bootstrap", broker.bootstrap)
    table = out[out.index("TOPIC"):].splitlines()[1:]
    return {int(row.split()[1]): row.split()[2:] for row in table if row.strip()}


def test_order_flow_end_to_end(broker, tmp_path):
    petrel("topics", "create", "orders", "--partitions", "3", "--bootstrap", broker.bootstrap)
    example("order-service", broker, "--orders", "120", "--events-per-order", "2")
    notifications, payments = tmp_path / "notifications.log", tmp_path / "payments.log"
    # Two notification workers share the work; the payment worker is a second group reading everything.
    workers = [subprocess.Popen([os.path.join(BIN, "notification-worker"), "--bootstrap", broker.bootstrap, "--out",
                                 str(notifications), "--name", f"w{i}", "--exit-when-idle", "3"], stderr=subprocess.PIPE)
               for i in (1, 2)]
    example("payment-worker", broker, "--out", str(payments), "--exit-when-idle", "3")
    for worker in workers:
        assert worker.wait(120) == 0
    lines = notifications.read_text().splitlines()
    events = [line.split()[1] for line in lines]
    assert len(events) == 240 and len(set(events)) == 240, "N orders in, N notifications out, none twice"
    assert len(payments.read_text().splitlines()) == 120, "the second group saw every OrderCreated too"
    for group in ("notification-workers", "payment-workers"):
        rows = lag_rows(broker, group)
        assert len(rows) == 3 and all(row[2] == "0" for row in rows.values()), f"{group} lag: {rows}"


def test_topics_and_group_offsets_through_the_cli(broker):
    b = ["--bootstrap", broker.bootstrap]
    assert "created topic inventory" in petrel("topics", "create", "inventory", "--partitions", "2", "--config", "retention.ms=3600000", *b)
    assert "inventory" in petrel("topics", "list", *b)
    subprocess.run([PETREL, "produce", "--topic", "inventory", "--partition", "1", *b], input="a\nb\nc\n", text=True, check=True,
                   capture_output=True)
    described = petrel("topics", "describe", "inventory", *b)
    assert "PARTITIONS 2" in described
    assert [line.split()[2:] for line in described.splitlines() if line.startswith("1 ")] == [["0", "3", "3"]]
    out = subprocess.run([PETREL, "consume", "--topic", "inventory", "--group", "stock", "--from-beginning", "--max-messages", "3", *b],
                         capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines() == ["a", "b", "c"]
    assert lag_rows(broker, "stock")[1] == ["3", "3", "0"]
    plan = petrel("groups", "reset-offsets", "stock", "--topic", "inventory", "--to-earliest", *b)
    assert "a plan only" in plan and lag_rows(broker, "stock")[1] == ["3", "3", "0"]
    petrel("groups", "reset-offsets", "stock", "--topic", "inventory", "--to-earliest", "--execute", *b)
    assert lag_rows(broker, "stock")[1] == ["0", "3", "3"]
    again = subprocess.run([PETREL, "consume", "--topic", "inventory", "--group", "stock", "--max-messages", "3", *b],
                           capture_output=True, text=True, timeout=60, check=True)
    assert again.stdout.splitlines() == ["a", "b", "c"], "the group re-reads from the reset offset"
    assert "deleted topic inventory" in petrel("topics", "delete", "inventory", *b)
    gone = subprocess.run([PETREL, "topics", "describe", "inventory", *b], capture_output=True, text=True)
    assert gone.returncode != 0 and gone.stderr.startswith("petrel: cannot describe topic inventory")
