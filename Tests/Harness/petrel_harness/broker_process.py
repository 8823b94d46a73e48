"""A broker process that a script or test starts itself: on a free loopback port, waited for until it
accepts connections, and stopped by its own pid only.

Shared by the interop tests, the crash and power-loss tests, the fault labs, the soak test and the
benchmark drivers, which differ only in the command they run and in how they report a broker that will
not start.
"""
import os
import signal
import socket
import subprocess
import time


class BrokerStartError(RuntimeError):
    """The broker exited, or never accepted a connection, while starting."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def petrel_command(binary, data, port, *args):
    return [binary, "broker", "--data", data, "--listen", f"127.0.0.1:{port}", *args]


class BrokerProcess:
    """`command` must make the broker listen on 127.0.0.1:`port`; its output goes to `log_path`."""

    def __init__(self, command, port, log_path, env=None):
        self.command = list(command)
        self.env = env
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.log_path = log_path
        self.process = None

    def start(self, timeout=30):
        """Starts the broker and returns once it accepts connections (self, for chaining)."""
        os.makedirs(os.path.dirname(self.log_path) or ".", exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerStartError(f"the broker exited with {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        raise BrokerStartError(f"the broker did not accept connections within {timeout:.0f} s:\n{self.log_tail()}")

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=30):
        """A graceful stop (SIGTERM), as an operator would; SIGKILL if it takes longer than `timeout`.
        Returns the exit code (negative for a signal), None if never started."""
        if self.process is None:
            return None
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self):
        """kill -9: no chance to flush or close anything."""
        if self.running:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def cpu_seconds(self):
        """User + system CPU seconds the broker has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines=20):
        return "\n".join(self.log().splitlines()[-lines:])
