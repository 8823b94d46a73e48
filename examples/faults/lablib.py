"""Shared plumbing for the fault labs: find (or build) the binaries, run a broker on a free loopback
port with a temporary data directory, run the CLI, print the verdict."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from petrel_harness.broker_process import BrokerProcess, BrokerStartError, free_port, petrel_command

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = ["order-service", "notification-worker", "payment-worker"]


def binaries(examples=True):
    """The petrel binary (PETREL if set, else the release build) and the example services, building
    what is needed (an up-to-date build takes seconds). A lab that runs no example service passes
    examples=False: then only petrel is built."""
    given = os.environ.get("PETREL")
    folder = os.path.join(ROOT, ".build", "release")
    needed = EXAMPLES if examples else []
    products = ([] if given else ["petrel"]) + needed
    missing_examples = not all(os.access(os.path.join(folder, name), os.X_OK) for name in needed)
    if not given or missing_examples:
        print("building the release binaries...", flush=True)
        for product in products:
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)
    petrel = given or os.path.join(folder, "petrel")
    return petrel, {name: os.path.join(folder, name) for name in needed}


class Broker(BrokerProcess):
    """A broker this lab starts and stops itself (by its own pid only), with its metrics endpoint on a
    port of its own."""

    def __init__(self, petrel, workdir, *extra):
        port = free_port()
        self.metrics = f"127.0.0.1:{free_port()}"
        args = ["--group-initial-rebalance-delay-ms", "200", "--group-min-session-timeout-ms", "1000",
                "--metrics", self.metrics, *extra]
        super().__init__(petrel_command(petrel, os.path.join(workdir, "data"), port, *args), port,
                         os.path.join(workdir, "broker.log"))

    def start(self, timeout=30):
        try:
            return super().start(timeout)
        except BrokerStartError as failure:
            sys.exit(f"VERDICT: FAIL {failure}")


class Lab:
    """Arguments, a work folder, a broker (unless --bootstrap), and cleanup."""

    def __init__(self, description, broker_args=(), options=None, examples=True):
        """`options`, if given, adds the lab's own arguments to the parser; `broker_args` may also be a
        function of (petrel binary, parsed arguments) giving the list; `examples=False` for a lab that
        runs none of the example services."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--bootstrap", help="use this broker instead of starting one (HOST:PORT)")
        if options:
            options(parser)
        self.args = parser.parse_args()
        self.petrel, self.bin = binaries(examples)
        if callable(broker_args):
            broker_args = broker_args(self.petrel, self.args)
        self.workdir = tempfile.mkdtemp(prefix="petrel-lab-")
        self.broker = None
        if self.args.bootstrap:
            self.bootstrap = self.args.bootstrap
        else:
            self.broker = Broker(self.petrel, self.workdir, *broker_args).start()
            self.bootstrap = self.broker.bootstrap
        self.children = []
        self.run_id = str(int(time.time() * 1000))[-8:]

    def name(self, base):
        """Topic and group names unique to this run (so --bootstrap can point at a shared broker)."""
        return f"{base}-{self.run_id}"

    def path(self, name):
        return os.path.join(self.workdir, name)

    def petrel_cli(self, *args, check=True, input_text=None):
        result = subprocess.run([self.petrel, *args, "--bootstrap", self.bootstrap], capture_output=True, text=True,
                                timeout=120, input=input_text)
        if check and result.returncode != 0:
            self.fail(f"petrel {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def example(self, name, *args, wait=True, timeout=180):
        command = [self.bin[name], "--bootstrap", self.bootstrap, *args]
        if not wait:
            process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
            self.children.append(process)
            return process
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        return result

    def lag(self, group):
        """Per partition (committed, log end, lag) and the member count, from `petrel groups describe`."""
        out = self.petrel_cli("groups", "describe", group, check=False)
        members = 0
        rows = {}
        in_table = False
        for line in out.splitlines():
            if line.startswith("GROUP "):
                members = int(line.split("MEMBERS")[1].strip())
            elif line.startswith("TOPIC"):
                in_table = True
            elif in_table and line.strip():
                topic, partition, committed, end, lag = line.split()
                rows[int(partition)] = (committed, int(end), 0 if lag == "-" else int(lag))
        return members, rows

    def metrics_lag(self, group):
        """Per partition lag as the broker's Prometheus endpoint reports it, or None without a broker
        of the lab's own (--bootstrap)."""
        if not self.broker:
            return None
        with urllib.request.urlopen(f"http://{self.broker.metrics}/metrics", timeout=5) as response:
            text = response.read().decode()
        lag = {}
        for line in text.splitlines():
            if line.startswith("petrel_consumer_group_lag{") and f'group="{group}"' in line:
                partition = int(line.split('partition="')[1].split('"')[0])
                lag[partition] = int(float(line.rsplit(" ", 1)[1]))
        return lag

    def finish(self, passed, summary):
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
        if self.broker:
            self.broker.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
        print(f"VERDICT: {'PASS' if passed else 'FAIL'} {summary}")
        sys.exit(0 if passed else 1)

    def fail(self, reason):
        self.finish(False, reason)


class AppendOnly:
    @staticmethod
    def lines(path):
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line for line in f.read().splitlines() if line]
