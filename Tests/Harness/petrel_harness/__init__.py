"""Petrel's Python test harness, shared by the interop tests (Tests/Interop), the crash, power-loss
and soak tests (Tests/Crash, Tests/PowerLoss, Tests/Load), the fault labs (examples/faults) and the
benchmark drivers (Benchmarks/Drivers):

  * `petrel_harness.broker_process`: a broker process on a free loopback port, started, waited for and
    stopped by its own pid;
  * `petrel_harness.powerloss`: the power-failure simulator (its preload library is
    Tests/PowerLoss/powerloss.c, built under .build/powerloss/);
  * `petrel_harness.wire`: the Kafka wire format, as far as the soak test and the benchmark's replaying
    broker speak it.

scripts/install-test-deps.sh installs it in editable mode (`python3 -m pip install -e Tests/Harness`).
"""
