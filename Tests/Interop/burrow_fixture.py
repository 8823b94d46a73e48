"""Burrow 1.2 (Debian's `burrow` package) and the ZooKeeper it needs, for the tests of `__consumer_offsets`
(test_consumer_offsets_topic.py): Burrow reads a broker's `__consumer_offsets` like any Kafka monitoring
tool, so what it reports shows that the broker writes Kafka's records there.

Burrow 1.x coordinates through a ZooKeeper even when the cluster it watches has none: a throwaway one
(Debian's `zookeeper` package, run with `java`) is started next to it. Both listen on loopback, on free
ports, keep their files in a directory the caller gives (a temporary one), and are stopped by their own
pids only: SIGTERM, then SIGKILL after a bounded wait. Every wait here is bounded. A missing `Burrow`,
`java` or ZooKeeper jar fails loudly: scripts/install-test-deps.sh installs them.

    with burrow_and_zookeeper(workdir, broker.bootstrap) as burrow:
        burrow.lag("billing")   # /v3/kafka/petrel/consumer/billing/lag, or None while Burrow has no such group

What Burrow 1.2.1 needs from the broker (its source, core/internal/cluster/kafka_cluster.go and
core/internal/consumer/kafka_client.go; the versions as kwiretap saw sarama 1.22 send them with
kafka-version 2.0.0): Metadata v5, ListOffsets v0 and v1, Fetch v4. It reads every partition of `__consumer_offsets` from the oldest offset;
partitions are counted once, when it starts. It decodes offset commit keys of version 0 or 1 with values
of version 0, 1 or 3 (a version 2 value is skipped with a warning); group metadata values only in versions
0 and 1 (it logs a warning for the version 3 Kafka writes, which costs only the owner columns); and it
ignores tombstones. It drops a commit for a partition whose log end it has not fetched yet, so commits
are worth making only once `topic_offsets` answers for the topic.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

from petrel_harness.broker_process import free_port

BURROW = shutil.which("Burrow") or shutil.which("burrow")
JAVA = shutil.which("java")
ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"  # its manifest's Class-Path names the jars it needs
# Optional: with these, ZooKeeper's own log goes to its log file instead of slf4j's no-op logger.
ZOOKEEPER_LOGGING_JARS = ["/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"]
INSTALL_HINT = "scripts/install-test-deps.sh installs Debian's burrow and zookeeper packages"


def require_tools():
    """Fails loudly, naming what is missing, unless Burrow, java and ZooKeeper's jar are all installed."""
    missing = [name for name, found in (("Burrow", BURROW), ("java", JAVA), (ZOOKEEPER_JAR, os.path.exists(ZOOKEEPER_JAR)))
               if not found]
    if missing:
        raise RuntimeError(f"cannot run Burrow and ZooKeeper: {', '.join(missing)} not found ({INSTALL_HINT})")


def _wait(predicate, timeout, what, process, log_path):
    """Waits for `predicate`; fails at once with the log if `process` exits, after `timeout` s otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}:\n{_tail(log_path)}")
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {timeout} s:\n{_tail(log_path)}")


def _tail(path, lines=30):
    try:
        with open(path, errors="replace") as f:
            return "\n".join(f.read().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process, timeout=20):
    """SIGTERM, then SIGKILL: only the process this module started. Returns its exit code."""
    if process is None:
        return None
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


class ZooKeeperServer:
    """A standalone ZooKeeper on 127.0.0.1, its data and log under `workdir`."""

    def __init__(self, workdir):
        require_tools()
        self.workdir = os.path.join(workdir, "zookeeper")
        os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.workdir, "zookeeper.log")
        self.process = None

    def start(self, timeout=60):
        config = os.path.join(self.workdir, "zoo.cfg")
        with open(config, "w") as f:
            f.write(f"tickTime=2000\ndataDir={os.path.join(self.workdir, 'data')}\nclientPort={self.port}\n"
                    "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=srvr\n")
        jars = [ZOOKEEPER_JAR] + [jar for jar in ZOOKEEPER_LOGGING_JARS if os.path.exists(jar)]
        classpath = ":".join(["/etc/zookeeper/conf"] + jars)  # the folder holds ZooKeeper's log4j.properties
        command = [JAVA, "-Xmx128m", "-Dzookeeper.root.logger=INFO,CONSOLE", f"-Dzookeeper.log.dir={self.workdir}",
                   "-cp", classpath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", config]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            cwd=self.workdir)
        _wait(self._serving, timeout, f"ZooKeeper on {self.address}", self.process, self.log_path)
        return self

    def _serving(self):
        """ZooKeeper's `srvr` four-letter command answers once it serves clients."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1) as s:
                s.settimeout(2)
                s.sendall(b"srvr")
                answer = b""
                while chunk := s.recv(4096):
                    answer += chunk
            return b"Mode: standalone" in answer
        except OSError:
            return False

    def stop(self):
        return _stop(self.process)


class BurrowServer:
    """Burrow watching one broker as cluster `cluster`; its HTTP API on a free loopback port.

    The settings keep its evaluation fast: broker offsets and topics fetched every second, `intervals`
    offset commits per partition in a window, every commit kept (`min_distance` 0 s), evaluations cached
    for a second."""

    def __init__(self, workdir, bootstrap, zookeeper, cluster="petrel", intervals=3, min_distance=0,
                 offset_refresh=1, topic_refresh=1, kafka_version="2.0.0", log_level="info"):
        require_tools()
        self.workdir = os.path.join(workdir, "burrow")
        os.makedirs(self.workdir, exist_ok=True)
        self.cluster = cluster
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.workdir, "burrow.log")
        self.process = None
        with open(os.path.join(self.workdir, "burrow.toml"), "w") as f:
            f.write(f"""\
[general]
pidfile="{os.path.join(self.workdir, 'burrow.pid')}"

[logging]
level="{log_level}"

[zookeeper]
servers=["{zookeeper.address}"]
timeout=6
root-path="/burrow"

[client-profile.petrel]
client-id="burrow-test"
kafka-version="{kafka_version}"

[cluster.{cluster}]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="petrel"
topic-refresh={topic_refresh}
offset-refresh={offset_refresh}

[consumer.{cluster}]
class-name="kafka"
cluster="{cluster}"
servers=["{bootstrap}"]
client-profile="petrel"
offsets-topic="__consumer_offsets"
start-latest=false

[httpserver.default]
address="127.0.0.1:{self.port}"

[storage.default]
class-name="inmemory"
workers=4
intervals={intervals}
expire-group=604800
min-distance={min_distance}

[evaluator.default]
class-name="caching"
expire-cache=1
""")

    def start(self, timeout=30):
        # Burrow reads BURROW_* variables over its configuration: none of the caller's leak in.
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BURROW_")}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([BURROW, "--config-dir", self.workdir], stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, cwd=self.workdir, env=env)
        _wait(lambda: self.cluster in (self._get("/v3/kafka") or {}).get("clusters", []), timeout,
              f"Burrow's HTTP API on {self.url}", self.process, self.log_path)
        return self

    def _get(self, path):
        """The JSON answer to GET `path`; None for a 404 (Burrow's answer for what it does not know) or while
        the server is not up."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        except (urllib.error.URLError, ConnectionError, socket.timeout):
            return None

    def topics(self):
        """The topics Burrow's cluster module has seen in Metadata."""
        return (self._get(f"/v3/kafka/{self.cluster}/topic") or {}).get("topics", [])

    def topic_offsets(self, topic):
        """The latest log end offset Burrow fetched for each partition of `topic` (ListOffsets), or None."""
        answer = self._get(f"/v3/kafka/{self.cluster}/topic/{topic}")
        return answer["offsets"] if answer else None

    def consumers(self):
        """The groups Burrow has read commits of from `__consumer_offsets`."""
        return (self._get(f"/v3/kafka/{self.cluster}/consumer") or {}).get("consumers", [])

    def lag(self, group):
        """Burrow's evaluation of `group` (the `status` object of /lag: `status`, `complete`, `totallag`
        and `partitions`, each with `topic`, `partition`, `status`, `current_lag`, `start`, `end`), or None
        while Burrow knows no such group."""
        answer = self._get(f"/v3/kafka/{self.cluster}/consumer/{group}/lag")
        return answer["status"] if answer else None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def offsets_partitions_read(self):
        """How many partitions of `__consumer_offsets` Burrow's consumer module started reading (its log's
        "starting consumers" entry), or None before it has."""
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "starting consumers" and entry.get("coordinator") == "consumer":
                return entry.get("count")
        return None

    def problems(self, lines=30):
        """Burrow's warnings and errors (its log is JSON lines), for failure messages."""
        found = [line for line in self.log().splitlines() if '"level":"warn"' in line or '"level":"error"' in line]
        return "\n".join(found[-lines:]) or "(no warnings or errors in Burrow's log)"

    def stop(self):
        return _stop(self.process)


@contextmanager
def burrow_and_zookeeper(workdir, bootstrap, **settings):
    """A ZooKeeper, then a Burrow watching `bootstrap` (BurrowServer's `settings`); both stopped on exit,
    whatever happened."""
    require_tools()
    zookeeper = burrow = None
    try:
        zookeeper = ZooKeeperServer(workdir).start()
        burrow = BurrowServer(workdir, bootstrap, zookeeper, **settings).start()
        yield burrow
    finally:
        if burrow is not None:
            burrow.stop()
        if zookeeper is not None:
            zookeeper.stop()
