"""The compose files users run (``compose/``), checked without Docker.

What would break a user's ``docker compose up``, or silently show an empty
dashboard, is checked against the real project: every command is a console
script we ship and every flag in it is one that script accepts (its own
``--help``), every port is published on loopback only, images are pinned, the
NATS servers route to each other with unique names and fsync every write,
Prometheus scrapes the metrics ports the servers are told to open, and every
dashboard query names a metric family the servers really export.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from transports.core.gateway import Gateway
from transports.core.metrics import metrics_registry, render
from transports.instruments import DEFAULT_INSTRUMENTS
from transports.registry import extras

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
FILES = ("nats-cluster.yml", "rabbitmq.yml", "exchange.yml", "monitoring.yml")


def _load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((COMPOSE / name).read_text())
    assert isinstance(data, dict), name
    return data


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    for name in FILES:
        for service, spec in _load(name)["services"].items():
            assert service not in services, f"{service} defined twice"
            services[service] = spec
    return services


def test_the_top_file_includes_every_part_and_each_part_parses() -> None:
    top = _load("docker-compose.yml")
    assert top["include"] == list(FILES)
    for name in FILES:
        assert _load(name)["services"], name


def test_ports_are_published_on_loopback_only_and_images_are_pinned() -> None:
    for service, spec in _services().items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{service} publishes {port} beyond loopback"
        if "build" not in spec:
            image = spec["image"]
            assert ":" in image and not image.endswith(":latest"), f"{service}: pin the image version ({image})"
        for volume in spec.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (COMPOSE / source).exists(), f"{service} mounts missing {source}"


def test_nats_cluster_has_three_uniquely_named_jetstream_servers_routed_to_each_other() -> None:
    nats = _load("nats-cluster.yml")["services"]
    assert len(nats) == 3
    names = [spec["command"][spec["command"].index("--name") + 1] for spec in nats.values()]
    assert sorted(names) == sorted(nats) and len(set(names)) == 3
    conf = (COMPOSE / "nats" / "nats.conf").read_text()
    assert re.search(r"jetstream\s*\{[^}]*sync_interval:\s*always", conf)
    routes = re.findall(r"nats-route://([\w-]+):6222", conf)
    assert sorted(routes) == sorted(nats)
    assert "port: 6222" in conf


def _help_text(script: str) -> str:
    beside = Path(sys.executable).parent / script
    assert beside.exists(), f"{script} is not a console script of this project"
    done = subprocess.run([str(beside), "--help"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_exchange_command_is_a_shipped_script_and_every_flag_exists() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    exchange = _load("exchange.yml")["services"]
    assert {"turbo-dex", "dex-nats", "dex-amqp"} <= set(exchange)
    assert sum(1 for s in exchange if s.startswith("dex-node")) == 3
    helps: dict[str, str] = {}
    for service, spec in exchange.items():
        command = spec["command"]
        script = command[0]
        assert script in scripts, f"{service} runs {script}, which pyproject.toml does not ship"
        text = helps.setdefault(script, _help_text(script))
        for flag in (arg for arg in command[1:] if arg.startswith("--")):
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), f"{service}: {script} has no {flag}"
    turbo = exchange["turbo-dex"]["command"]
    assert turbo[turbo.index("--transports") + 1] == "http,grpc,zmq"


def test_prometheus_scrapes_the_metrics_ports_the_servers_open() -> None:
    exchange = _load("exchange.yml")["services"]
    services = _services()
    config = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job in jobs.values():
        for target in (t for group in job["static_configs"] for t in group["targets"]):
            host, port = target.rsplit(":", 1)
            assert host in services, f"{job['job_name']} scrapes unknown service {host}"
            command = [str(a) for a in exchange.get(host, {}).get("command", [])]
            if "--metrics-port" in command:
                assert command[command.index("--metrics-port") + 1] == port, target
            elif "--api-port" in command:
                assert command[command.index("--api-port") + 1] == port, target
    assert {"turbo-dex", "dex-nats", "dex-amqp"} <= set(jobs)


def _exported_families() -> set[str]:
    async def scrape() -> str:
        gateway = Gateway()
        await gateway.start(DEFAULT_INSTRUMENTS)
        try:
            return render(metrics_registry(gateway)).decode()
        finally:
            await gateway.stop()

    text = asyncio.run(scrape())
    return set(re.findall(r"^# TYPE (\w+) ", text, flags=re.MULTILINE))


def test_every_dashboard_query_names_a_metric_the_servers_export() -> None:
    dashboard = json.loads((COMPOSE / "grafana" / "dashboards" / "dex-exchange.json").read_text())
    datasource = yaml.safe_load((COMPOSE / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    families = _exported_families()
    titles = []
    for panel in dashboard["panels"]:
        titles.append(panel["title"])
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            for metric in re.findall(r"\b(dex_\w+)", target["expr"]):
                family = re.sub(r"_(bucket|count|sum)$", "", metric)  # histogram series; counters are typed with _total
                assert family in families, f"{panel['title']}: {metric} is not exported ({sorted(families)})"
    for wanted in ("Orders/s", "Trades/s", "Rejects", "latency", "queue depth"):
        assert any(wanted in title for title in titles), wanted


@pytest.mark.parametrize("extra", extras())  # every registered transport's (transports/registry.py)
def test_the_image_installs_every_transport_extra(extra: str) -> None:
    dockerfile = (COMPOSE / "Dockerfile").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed = re.search(r"-e '\.\[([\w,]+)\]'", dockerfile)
    assert installed, "the Dockerfile installs the project with extras"
    assert extra in installed.group(1).split(",") and extra in extras
