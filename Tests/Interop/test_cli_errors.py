"""How the petrel command fails: one data directory per broker, a producer that says it is waiting,
and every failure one `petrel: ...` sentence with its documented exit status (1, or 64 for usage)."""
import hashlib
import os
import subprocess
import tempfile
import time

import pytest

from conftest import PETREL, BrokerProcess, free_port, petrel

USAGE = 64


def snapshot(directory):
    """Every file and folder under `directory`, with a digest of each file's content."""
    found = {}
    for root, folders, files in os.walk(directory):
        for name in folders:
            found[os.path.relpath(os.path.join(root, name), directory) + "/"] = None
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found


def run(*args, **kwargs):
    return subprocess.run([PETREL, *args], capture_output=True, text=True, timeout=60, **kwargs)


def one_sentence(stderr):
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("petrel: ") and lines[0].endswith("."), f"not one sentence: {stderr!r}"
    return lines[0]


def test_a_second_broker_on_a_directory_in_use_exits_and_changes_nothing(tmp_path):
    data = str(tmp_path / "data")
    first = BrokerProcess(data).start()
    try:
        petrel("topics", "create", "shared", "--partitions", "1", "--bootstrap", first.bootstrap)
        run("produce", "--topic", "shared", "--bootstrap", first.bootstrap, input="first\n", check=True)
        before = snapshot(data)
        started = time.monotonic()
        second = run("broker", "--data", data, "--listen", f"127.0.0.1:{free_port()}", "--metrics", "off")
        assert time.monotonic() - started < 10, "the second broker exits at once"
        assert second.returncode == 1
        assert one_sentence(second.stderr) == \
            f"petrel: the data directory {data} is in use by another broker (pid {first.process.pid})."
        assert snapshot(data) == before, "the second broker changed the directory"

        # kill -9 leaves no stale lock: a new broker starts on the same directory at once and has the data.
        first.kill()
        restarted = BrokerProcess(data).start(timeout=30)
        try:
            out = run("consume", "--topic", "shared", "--partition", "0", "--offset", "0", "--max-messages", "1",
                      "--bootstrap", restarted.bootstrap, check=True)
            assert out.stdout.splitlines() == ["first"]
        finally:
            assert restarted.stop() == 0
    finally:
        first.kill()


def test_produce_with_no_broker_says_it_is_waiting_and_fails_after_max_block():
    port = free_port()  # bound and released: nothing listens there
    started = time.monotonic()
    producer = subprocess.Popen([PETREL, "produce", "--topic", "orders", "--bootstrap", f"127.0.0.1:{port}",
                                 "--max-block-ms", "3000"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer.stdin.write("one\n")
    producer.stdin.close()
    first_line = producer.stderr.readline()
    waited = time.monotonic() - started
    assert first_line == f"petrel: waiting for 127.0.0.1:{port}: connection refused; retrying for up to 3 s\n"
    assert waited < 1, f"the waiting line took {waited:.2f} s"
    rest = producer.stderr.read()
    assert producer.wait(30) == 1
    elapsed = time.monotonic() - started
    assert 3 <= elapsed < 15, f"failed after {elapsed:.1f} s, max block is 3 s"
    assert one_sentence(rest) == f"petrel: cannot connect to 127.0.0.1:{port}: connection refused."


def test_a_group_consumer_with_no_broker_says_it_is_waiting():
    # A group member retries for as long as it runs, as Kafka's consumers do: it says so, and stops on SIGTERM.
    port = free_port()
    started = time.monotonic()
    consumer = subprocess.Popen([PETREL, "consume", "--topic", "x", "--group", "g", "--bootstrap", f"127.0.0.1:{port}"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = consumer.stderr.readline()
        assert time.monotonic() - started < 1, "the waiting line comes at once"
        assert line == f"petrel: waiting for 127.0.0.1:{port}: connection refused; retrying until stopped\n"
        consumer.terminate()
        assert consumer.wait(30) == 0
    finally:
        consumer.kill()


def test_produce_waits_for_a_broker_that_starts_late(tmp_path):
    port = free_port()
    producer = subprocess.Popen([PETREL, "produce", "--topic", "late", "--bootstrap", f"127.0.0.1:{port}"],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    producer.stdin.write("made it\n")
    producer.stdin.close()
    assert producer.stderr.readline().startswith(f"petrel: waiting for 127.0.0.1:{port}: connection refused")
    broker = BrokerProcess(str(tmp_path / "data"))
    broker.port, broker.bootstrap = port, f"127.0.0.1:{port}"
    broker.command[broker.command.index("--listen") + 1] = broker.bootstrap
    broker.start()
    try:
        assert producer.wait(60) == 0, producer.stderr.read()
        out = run("consume", "--topic", "late", "--partition", "0", "--offset", "0", "--max-messages", "1",
                  "--bootstrap", broker.bootstrap, check=True)
        assert out.stdout.splitlines() == ["made it"]
    finally:
        producer.kill()
        assert broker.stop() == 0


def broker_failure(data, as_user=None):
    command = [PETREL, "broker", "--data", data, "--listen", f"127.0.0.1:{free_port()}", "--metrics", "off"]
    if as_user is not None:
        command = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    return one_sentence(result.stderr)


def test_data_directory_errors_read_as_the_operating_system_reason(tmp_path):
    missing = str(tmp_path / "missing" / "data")
    assert broker_failure(missing) == f"petrel: cannot create the data directory {missing}: No such file or directory."
    assert not os.path.exists(tmp_path / "missing"), "a missing parent is not created"

    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    assert broker_failure(str(a_file)) == f"petrel: cannot use the data directory {a_file}: Not a directory."
    assert a_file.read_text() == "not a directory"


def test_a_read_only_data_directory_is_refused_in_words():
    # Root writes anywhere, so as root the broker runs as nobody: the permission check is the kernel's.
    user = 65534 if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="petrel-readonly-") as tmp:
        os.chmod(tmp, 0o755)
        read_only = os.path.join(tmp, "data")
        os.mkdir(read_only, 0o555)
        os.chmod(read_only, 0o555)
        assert broker_failure(read_only, as_user=user) == \
            f"petrel: cannot write to the data directory {read_only}: Permission denied."
        assert os.listdir(read_only) == []


@pytest.mark.parametrize("args, expected", [
    (["produce", "--topic", "x", "--bogus"], "petrel: unknown option '--bogus'; see 'petrel produce --help'."),
    (["produce", "--topic", "x", "--count", "ten"],
     "petrel: the value 'ten' is invalid for '--count <count>'; see 'petrel produce --help'."),
    (["produce", "--topic", "x", "--count", "0"], "petrel: --count must be at least 1; see 'petrel produce --help'."),
    (["topics", "create"], "petrel: missing expected argument '<topic>'; see 'petrel topics create --help'."),
    (["nope"], "petrel: unexpected argument 'nope'; see 'petrel --help'."),
])
def test_usage_errors_are_one_sentence_with_status_64(args, expected):
    result = run(*args)
    assert result.returncode == USAGE
    assert one_sentence(result.stderr) == expected


def test_failures_are_one_sentence_with_status_1():
    port = free_port()
    for args in (["topics", "list"], ["groups", "list"], ["consume", "--topic", "x"]):
        result = run(*args, "--bootstrap", f"127.0.0.1:{port}")
        assert result.returncode == 1, args
        assert "connection refused" in one_sentence(result.stderr), args


def test_help_is_not_a_failure():
    result = run("--help")
    assert result.returncode == 0 and "Exit status: 0 on success, 1 when a command fails, 64 for a usage error" \
        in " ".join(result.stdout.split())
