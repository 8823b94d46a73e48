"""Static checks of docker/: there is no Docker engine here, so the files are checked for what would
break a `docker compose up` — syntax, files that must exist, ports and names that must agree, flags
the services must accept, metric names the broker must export — and the alert rules with promtool."""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import urllib.request

import yaml
from confluent_kafka import Consumer, Producer

from conftest import PETREL, ROOT, BrokerProcess, create_topic, free_port, wait_until

DOCKER = os.path.join(ROOT, "docker")
BIN = os.path.dirname(PETREL)


def load_yaml(*parts):
    with open(os.path.join(DOCKER, *parts)) as f:
        return yaml.safe_load(f)


def dockerfile():
    """Dockerfile instructions as (keyword, argument text), continuation lines joined."""
    text = open(os.path.join(DOCKER, "Dockerfile")).read().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_env():
    env = {}
    for keyword, rest in dockerfile():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def built_products():
    for keyword, rest in dockerfile():
        if keyword == "RUN" and "for product in" in rest:
            return re.search(r"for product in ([^;]+);", rest).group(1).split()
    raise AssertionError("the Dockerfile builds no products")


def compose():
    return load_yaml("docker-compose.yml")


def test_every_file_parses():
    for path in ["docker-compose.yml", "prometheus/prometheus.yml", "prometheus/alerts.yml", "prometheus/alerts.test.yml",
                 "grafana/provisioning/datasources/prometheus.yml", "grafana/provisioning/dashboards/petrel.yml"]:
        assert isinstance(load_yaml(*path.split("/")), dict), path
    dashboard = json.load(open(os.path.join(DOCKER, "grafana", "dashboards", "petrel.json")))
    assert dashboard["uid"] == "petrel" and dashboard["panels"]


def test_dockerfile_is_multi_stage_non_root_with_healthcheck_and_existing_sources():
    instructions = dockerfile()
    stages = [rest.split()[-1] for keyword, rest in instructions if keyword == "FROM" and " AS " in rest.upper()]
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(froms) >= 2 and froms[0].startswith("swift:6"), froms
    assert "slim" in froms[-1], "the runtime stage is a slim image"
    for keyword, rest in instructions:
        if keyword == "COPY":
            parts = rest.split()
            if parts[0].startswith("--from="):
                assert parts[0].split("=", 1)[1] in stages, rest
            else:
                for source in parts[:-1]:
                    assert os.path.exists(os.path.join(ROOT, source)), f"COPY {source}: no such file in the build context"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the broker runs as a non-root user"
    health = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    env = dockerfile_env()
    metrics_port = env["PETREL_METRICS"].rsplit(":", 1)[1]
    assert health and f"127.0.0.1:{metrics_port}/ready" in health[0], health
    exposed = {port for keyword, rest in instructions if keyword == "EXPOSE" for port in rest.split()}
    assert {env["PETREL_LISTEN"].rsplit(":", 1)[1], metrics_port} <= exposed, exposed
    entrypoint = json.loads([rest for keyword, rest in instructions if keyword == "ENTRYPOINT"][-1])
    assert entrypoint == ["petrel", "broker"], "exec form, so the broker receives SIGTERM itself"
    assert set(built_products()) >= {"petrel", "order-service", "notification-worker", "payment-worker"}
    ignore = open(os.path.join(DOCKER, "Dockerfile.dockerignore")).read().split()
    assert ".build" in ignore, "the build context leaves out .build"


def test_broker_accepts_the_environment_the_image_and_compose_give_it():
    env = dict(dockerfile_env())
    env.update(compose()["services"]["petrel"]["environment"])
    names = [name for name in env if name.startswith("PETREL_")]
    result = subprocess.run([PETREL, "broker", "--print-settings"], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    sources = {line.split()[0]: line.split()[-1] for line in result.stdout.splitlines()[1:] if line.strip()}
    for name in names:
        setting = name[len("PETREL_"):].lower().replace("_", "-")
        assert sources.get(setting) == name, f"{name} is not a broker setting (or was not used): {result.stdout}"


def test_compose_references_existing_files_services_and_ports():
    spec = compose()
    services = spec["services"]
    assert {"petrel", "order-service", "notification-worker", "payment-worker", "prometheus", "grafana"} <= set(services)
    volumes = set(spec.get("volumes") or {})
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = os.path.normpath(os.path.join(DOCKER, build["context"]))
            assert os.path.isdir(context), name
            assert os.path.isfile(os.path.join(context, build["dockerfile"])), name
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert os.path.exists(os.path.join(DOCKER, source)), f"{name}: {source} does not exist"
            else:
                assert source in volumes, f"{name}: volume {source} is not declared"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        entrypoint = service.get("entrypoint")
        if entrypoint:
            assert entrypoint[0] in built_products(), f"{name} runs {entrypoint[0]}, which the image does not contain"

    petrel_env = services["petrel"]["environment"]
    metrics_port = petrel_env["PETREL_METRICS"].rsplit(":", 1)[1]
    listen_port = dockerfile_env()["PETREL_LISTEN"].rsplit(":", 1)[1]
    published = {mapping.split(":")[-1] for mapping in services["petrel"]["ports"]}
    assert {metrics_port, listen_port} <= published
    assert petrel_env["PETREL_ADVERTISE"] == f"petrel:{listen_port}", "in-network clients reach the broker by service name"
    for name in ["order-service", "notification-worker", "payment-worker"]:
        entrypoint = services[name]["entrypoint"]
        assert entrypoint[entrypoint.index("--bootstrap") + 1] == f"petrel:{listen_port}", name

    # Prometheus scrapes the broker's metrics port and loads the rules mounted next to its config.
    prometheus = load_yaml("prometheus", "prometheus.yml")
    targets = [t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"petrel:{metrics_port}"]
    mounts = dict(m.split(":")[:2] for m in services["prometheus"]["volumes"])
    config_dir = os.path.dirname(mounts["./prometheus/prometheus.yml"])
    for rule_file in prometheus["rule_files"]:
        assert os.path.join(config_dir, rule_file) in mounts.values(), rule_file

    # Grafana reads Prometheus at its service port, and the dashboards where they are mounted.
    datasource = load_yaml("grafana", "provisioning", "datasources", "prometheus.yml")["datasources"][0]
    prometheus_port = services["prometheus"]["ports"][0].split(":")[-1]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    grafana_mounts = dict(m.split(":")[:2] for m in services["grafana"]["volumes"])
    provider = load_yaml("grafana", "provisioning", "dashboards", "petrel.yml")["providers"][0]
    assert grafana_mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert os.path.isfile(os.path.join(DOCKER, "grafana", "dashboards", os.path.basename(home)))
    dashboard = json.load(open(os.path.join(DOCKER, "grafana", "dashboards", "petrel.json")))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_example_services_accept_the_flags_compose_gives_them():
    for name in ["order-service", "notification-worker", "payment-worker"]:
        binary = os.path.join(BIN, name)
        assert os.access(binary, os.X_OK), f"{binary} is not built (scripts/test.sh builds it)"
        help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30).stdout
        for argument in compose()["services"][name]["entrypoint"][1:]:
            if argument.startswith("--"):
                assert argument in help_text, f"{name} has no {argument}"


def test_alert_rules_pass_promtool():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/install-test-deps.sh installs Debian's prometheus"
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run([promtool, *args], cwd=os.path.join(DOCKER, "prometheus"), capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def test_alerts_and_dashboard_use_only_metrics_the_broker_exports():
    alerts = load_yaml("prometheus", "alerts.yml")
    expressions = [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    dashboard = json.load(open(os.path.join(DOCKER, "grafana", "dashboards", "petrel.json")))
    expressions += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {name for expr in expressions for name in re.findall(r"\bpetrel_[a-z_]+", expr)}
    assert used

    with tempfile.TemporaryDirectory(prefix="petrel-docker-check-") as tmp:
        port = free_port()
        broker = BrokerProcess(os.path.join(tmp, "data"), ["--metrics", f"127.0.0.1:{port}", "--flush", "always"]).start()
        try:
            # Enough traffic for every series to exist: produce (with fsyncs), consume, commit, and a
            # compacted topic for the cleaner's per-partition dirty ratio.
            create_topic(broker, "orders", 1)
            from confluent_kafka.admin import AdminClient, NewTopic
            admin = AdminClient({"bootstrap.servers": broker.bootstrap})
            admin.create_topics([NewTopic("order-status", 1, 1, config={"cleanup.policy": "compact"})])[
                "order-status"].result(30)
            producer = Producer({"bootstrap.servers": broker.bootstrap})
            producer.produce("order-status", key="o1", value="paid")
            for i in range(10):
                producer.produce("orders", value=f"o{i}")
            assert producer.flush(30) == 0
            consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "checkers",
                                 "auto.offset.reset": "earliest", "enable.auto.commit": False})
            consumer.subscribe(["orders"])
            wait_until(lambda: (m := consumer.poll(0.5)) is not None and m.error() is None, what="a record")
            consumer.commit(asynchronous=False)
            consumer.close()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                exposition = response.read().decode()
        finally:
            assert broker.stop() == 0, broker.log()
    exported = set()
    for line in exposition.splitlines():
        if line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
            exported.add(name)
            exported.add(re.sub(r"_(bucket|count|sum)$", "", name))
    missing = used - exported
    assert not missing, f"alerts or dashboard use metrics the broker does not export: {sorted(missing)}"
