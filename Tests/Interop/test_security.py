"""TLS and SASL on the client listener, with confluent-kafka and kcat (both librdkafka) and raw frames:
the right password gets in, a wrong one or none stays out, over TLS and without."""
import os
import socket
import struct
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import PETREL, BrokerProcess, petrel

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def material():
    """A self-signed certificate for 127.0.0.1 and a data directory with two users."""
    with tempfile.TemporaryDirectory(prefix="petrel-security-") as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        users = os.path.join(tmp, "users.json")
        # The password on standard input, as an operator would type or pipe it.
        added = subprocess.run([PETREL, "users", "add", "alice", "--users-file", users], input=PASSWORD + "\n",
                               capture_output=True, text=True, timeout=30)
        assert added.returncode == 0, added.stderr
        petrel("users", "add", "bob", "--users-file", users, "--password", "bob's password")
        yield {"cert": cert, "key": key, "users": users, "tmp": tmp}


def start(material, protocol):
    data = os.path.join(material["tmp"], f"data-{protocol}-{uuid.uuid4().hex[:6]}")
    args = ["--security-protocol", protocol, "--users-file", material["users"]]
    if "SSL" in protocol:
        args += ["--tls-cert", material["cert"], "--tls-key", material["key"]]
    return BrokerProcess(data, args).start()


@pytest.fixture(scope="module")
def sasl_plaintext(material):
    broker = start(material, "SASL_PLAINTEXT")
    yield broker
    assert broker.stop() == 0, broker.log()


@pytest.fixture(scope="module")
def sasl_ssl(material):
    broker = start(material, "SASL_SSL")
    yield broker
    assert broker.stop() == 0, broker.log()


def client_config(broker, material, protocol, mechanism=None, user="alice", password=PASSWORD):
    config = {"bootstrap.servers": broker.bootstrap, "security.protocol": protocol, "log_level": 0}
    if mechanism:
        config.update({"sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password})
    if "SSL" in protocol:
        config["ssl.ca.location"] = material["cert"]
    return config


def round_trip(config, topic, count=200):
    """Produces `count` records and reads them back through a consumer group: every API a client uses."""
    errors = []
    producer = Producer({**config, "error_cb": errors.append})
    for i in range(count):
        producer.produce(topic, key=b"k%d" % (i % 5), value=b"secure-%d" % i)
    assert producer.flush(30) == 0, errors
    consumer = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest", "error_cb": errors.append})
    consumer.subscribe([topic])
    seen = set()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen.add(message.value())
            if len(seen) == count:
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    missing = {b"secure-%d" % i for i in range(count)} - seen
    assert not missing, f"{len(missing)} of {count} records not consumed, e.g. {sorted(missing)[:5]}; errors: {errors[:5]}"


def refused(config):
    """The client's error when it cannot get in: list_topics fails, and librdkafka reports why."""
    errors = []
    admin = AdminClient({**config, "error_cb": errors.append})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=4)
    for _ in range(20):  # error callbacks are served by poll
        if errors:
            break
        admin.poll(0.1)
    return errors


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_right_password_gets_in_without_tls(sasl_plaintext, material, mechanism):
    round_trip(client_config(sasl_plaintext, material, "SASL_PLAINTEXT", mechanism), f"plain-{mechanism.lower()}")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_right_password_gets_in_over_tls(sasl_ssl, material, mechanism):
    round_trip(client_config(sasl_ssl, material, "SASL_SSL", mechanism), f"tls-{mechanism.lower()}")


@pytest.mark.parametrize("protocol,fixture", [("SASL_PLAINTEXT", "sasl_plaintext"), ("SASL_SSL", "sasl_ssl")])
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_wrong_password_and_unknown_user_stay_out(request, material, protocol, fixture, mechanism):
    broker = request.getfixturevalue(fixture)
    for user, password in (("alice", "wrong"), ("mallory", PASSWORD), ("bob", PASSWORD)):
        errors = refused(client_config(broker, material, protocol, mechanism, user, password))
        assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert "authentication failed" in broker.log()


@pytest.mark.parametrize("protocol,fixture", [("SASL_PLAINTEXT", "sasl_plaintext"), ("SASL_SSL", "sasl_ssl")])
def test_no_credentials_stay_out(request, material, protocol, fixture):
    broker = request.getfixturevalue(fixture)
    # A client that does not authenticate at all (TLS only, or nothing) is disconnected.
    refused(client_config(broker, material, "SSL" if "SSL" in protocol else "PLAINTEXT"))
    assert "before authenticating" in broker.log()


def frame(api_key, version, correlation, body, header_version=1):
    header = struct.pack(">hhih", api_key, version, correlation, 4) + b"test"
    if header_version == 2:
        header += b"\x00"
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def exchange(sock, request):
    sock.sendall(request)
    size = struct.unpack(">i", recv_exactly(sock, 4))[0]
    return recv_exactly(sock, size)


def recv_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data


def closed_by_peer(sock):
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_error_codes_on_the_wire(sasl_plaintext):
    """The Kafka error codes themselves: 33 for an unknown mechanism, 58 for a wrong password (then the
    connection closes), and a request before authenticating closes the connection."""
    with socket.create_connection(("127.0.0.1", sasl_plaintext.port), 5) as s:
        s.settimeout(10)
        mechanism = b"SCRAM-SHA-512"
        body = exchange(s, frame(17, 1, 1, struct.pack(">h", len(mechanism)) + mechanism))
        correlation, error = struct.unpack(">ih", body[:6])
        assert (correlation, error) == (1, 33)  # UNSUPPORTED_SASL_MECHANISM, with the enabled ones listed
        assert b"SCRAM-SHA-256" in body and b"PLAIN" in body
    with socket.create_connection(("127.0.0.1", sasl_plaintext.port), 5) as s:
        s.settimeout(10)
        body = exchange(s, frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
        assert struct.unpack(">ih", body[:6]) == (1, 0)
        token = b"\x00alice\x00not the password"
        body = exchange(s, frame(36, 0, 2, struct.pack(">i", len(token)) + token))
        assert struct.unpack(">ih", body[:6]) == (2, 58)  # SASL_AUTHENTICATION_FAILED
        assert closed_by_peer(s)
    with socket.create_connection(("127.0.0.1", sasl_plaintext.port), 5) as s:
        s.settimeout(10)
        s.sendall(frame(3, 0, 1, struct.pack(">i", 0)))  # Metadata v0, all topics, unauthenticated
        assert closed_by_peer(s)


def test_users_removed_while_running_are_refused(material, sasl_plaintext):
    users = material["users"]
    petrel("users", "add", "carol", "--users-file", users, "--password", "carol-pass")
    assert "carol" in petrel("users", "list", "--users-file", users).split()
    config = client_config(sasl_plaintext, material, "SASL_PLAINTEXT", "SCRAM-SHA-256", "carol", "carol-pass")
    AdminClient(config).list_topics(timeout=10)
    petrel("users", "remove", "carol", "--users-file", users)
    assert "carol" not in petrel("users", "list", "--users-file", users).split()
    errors = refused(config)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    missing = subprocess.run([PETREL, "users", "remove", "carol", "--users-file", users], capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and missing.stderr.startswith("petrel: there is no user carol")


def test_users_file_holds_no_passwords(material):
    with open(material["users"]) as f:
        text = f.read()
    assert PASSWORD not in text and "bob's password" not in text
    assert oct(os.stat(material["users"]).st_mode & 0o777) == "0o600"


def test_tls_without_sasl_serves_fetches_from_files(material):
    """SSL: fetched records cannot use sendfile through TLS; they are read and encrypted instead."""
    broker = start(material, "SSL")
    try:
        round_trip(client_config(broker, material, "SSL"), "tls-only", count=2000)
        # A plaintext client on the TLS port gets nowhere.
        refused(client_config(broker, material, "PLAINTEXT"))
    finally:
        assert broker.stop() == 0, broker.log()


def kcat(*args, input=None):
    return subprocess.run(["kcat", *args], input=input, capture_output=True, timeout=60)


def test_kcat_over_sasl_ssl(sasl_ssl, material):
    secure = ["-b", sasl_ssl.bootstrap, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-256",
              "-X", "sasl.username=alice", "-X", f"sasl.password={PASSWORD}", "-X", f"ssl.ca.location={material['cert']}"]
    produced = kcat(*secure, "-P", "-t", "kcat-secure", input=b"".join(b"line-%d\n" % i for i in range(100)))
    assert produced.returncode == 0, produced.stderr.decode()
    consumed = kcat(*secure, "-C", "-t", "kcat-secure", "-o", "beginning", "-e", "-q")
    assert consumed.returncode == 0, consumed.stderr.decode()
    assert consumed.stdout.decode().split() == [f"line-{i}" for i in range(100)]
    wrong = [arg.replace(PASSWORD, "guess") for arg in secure]
    listing = kcat(*wrong, "-L", "-m", "5")
    assert listing.returncode != 0
    assert b"Authentication failed" in listing.stderr or b"SASL authentication error" in listing.stderr, listing.stderr


def test_petrel_cli_over_sasl_ssl(sasl_ssl, material):
    """The petrel CLI logs in too: the password from PETREL_SASL_PASSWORD, never the command line."""
    secure = ["--bootstrap", sasl_ssl.bootstrap, "--security-protocol", "SASL_SSL", "--sasl-user", "alice",
              "--tls-ca", material["cert"]]
    env = {**os.environ, "PETREL_SASL_PASSWORD": PASSWORD}
    produced = subprocess.run([PETREL, "produce", *secure, "--topic", "cli-secure"], input="one\ntwo\nthree\n",
                              capture_output=True, text=True, timeout=60, env=env)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run([PETREL, "consume", *secure, "--topic", "cli-secure", "--from-beginning", "--max-messages", "3"],
                              capture_output=True, text=True, timeout=60, env=env)
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == ["one", "two", "three"]
    wrong = subprocess.run([PETREL, "topics", "list", *secure], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PETREL_SASL_PASSWORD": "guess"})
    assert wrong.returncode != 0
    assert "authentication failed" in wrong.stderr, wrong.stderr
    missing = subprocess.run([PETREL, "topics", "list", *secure], capture_output=True, text=True, timeout=60,
                             env={k: v for k, v in os.environ.items() if k != "PETREL_SASL_PASSWORD"})
    assert missing.returncode != 0 and "PETREL_SASL_PASSWORD" in missing.stderr, missing.stderr


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc")


def test_tls_fetch_memory_is_bounded_whatever_the_client_asks_for(material):
    """Through TLS a fetch response is read into memory. A consumer asking for 2 GiB across 150
    partitions holding 135 MB gets at most --fetch-max-bytes per response: the broker's peak memory
    stays far below what the request asked for, and every record arrives."""
    data = os.path.join(material["tmp"], f"data-fetch-cap-{uuid.uuid4().hex[:6]}")
    broker = BrokerProcess(data, ["--security-protocol", "SSL", "--tls-cert", material["cert"],
                                  "--tls-key", material["key"], "--fetch-max-bytes", "4194304"]).start()
    try:
        config = client_config(broker, material, "SSL")
        admin = AdminClient(config)
        admin.create_topics([NewTopic("big-fetch", 150, 1)])["big-fetch"].result(30)
        producer = Producer({**config, "linger.ms": 20, "message.max.bytes": 1_000_000})
        for partition in range(150):
            producer.produce("big-fetch", value=os.urandom(900_000), partition=partition)
        assert producer.flush(120) == 0
        before = peak_rss_mib(broker.process.pid)
        consumer = Consumer({**config, "group.id": "big-fetch", "auto.offset.reset": "earliest",
                             "fetch.max.bytes": 2_147_483_135, "max.partition.fetch.bytes": 100_000_000,
                             "receive.message.max.bytes": 2_147_483_647, "enable.auto.commit": False})
        consumer.subscribe(["big-fetch"])
        seen = 0
        deadline = time.time() + 120
        while seen < 150 and time.time() < deadline:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                seen += 1
        consumer.close()
        assert seen == 150
        grew = peak_rss_mib(broker.process.pid) - before
        assert grew < 64, f"the broker's peak memory grew {grew:.0f} MiB serving a 2 GiB fetch of 135 MB"
    finally:
        assert broker.stop() == 0, broker.log()
