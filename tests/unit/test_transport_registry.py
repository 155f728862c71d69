"""The registry is the one list of transports: what reads it stays in step with it.

The docs table is generated from the descriptors, the Makefile installs every
transport's extra, pyproject.toml declares each extra and keeps every transport
folder independent of the others, and reading the registry imports no
transport's own library.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from transports.registry import DESCRIPTOR_MODULES, TRANSPORTS, extras, markdown, readme_rows

ROOT = Path(__file__).resolve().parents[2]


def test_docs_transports_table_is_generated_from_the_registry() -> None:
    current = (ROOT / "docs" / "transports.md").read_text(encoding="utf-8")
    assert current == markdown(), "regenerate: python -m transports.registry --markdown > docs/transports.md"
    for name in TRANSPORTS:
        assert f"| `{name}` |" in current


def test_readme_layout_rows_of_the_transport_folders_are_generated_from_the_registry() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = "\n".join(readme_rows())
    assert block in readme, "regenerate: python -m transports.registry --readme-rows (README.md's layout table)"
    folder_rows = [line for line in readme.splitlines() if re.match(r"\| `transports/\w+/` \|", line)]
    described = {f"transports/{name}/" for name, d in TRANSPORTS.items() if d.docs}
    other_folders = {"transports/codec/", "transports/core/", "transports/sharding/"}  # shared code, not transports
    assert {line.split("`")[1] for line in folder_rows} - other_folders == described


def test_makefile_installs_every_transports_extra_and_pyproject_declares_it() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^EXTRAS\s*:=\s*(\S+)", makefile, re.MULTILINE)
    assert match is not None
    installed = set(match.group(1).split(","))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    for extra in extras():
        assert extra in installed, f"Makefile EXTRAS lacks {extra!r}"
        assert extra in declared, f"pyproject.toml declares no extra {extra!r}"


def test_every_registered_transport_folder_is_in_the_import_contracts() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    independent = next(set(c["modules"]) for c in contracts if c["type"] == "independence")
    kept_from_pricefeed = next(set(c["forbidden_modules"]) for c in contracts if c.get("source_modules") == ["pricefeed"])
    folders = {module.rsplit(".", 1)[0] for module in DESCRIPTOR_MODULES}
    assert folders <= independent
    assert folders <= kept_from_pricefeed


def test_descriptors_name_what_the_rest_of_the_project_reads() -> None:
    from transports.amqp.settings import URL_ENV as AMQP_ENV
    from transports.nats.settings import URL_ENV as NATS_ENV

    brokers = {name: d.broker.env for name, d in TRANSPORTS.items() if d.broker is not None}
    assert brokers == {"nats": NATS_ENV, "amqp": AMQP_ENV}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    for descriptor in TRANSPORTS.values():
        if descriptor.console_script:
            assert scripts[descriptor.console_script].startswith(f"{descriptor.server_module}:"), descriptor.name
        if descriptor.docs:
            assert (ROOT / descriptor.docs).exists(), descriptor.docs
        if descriptor.send_malformed is not None:  # every wire can be started and benchmarked on this machine
            assert descriptor.local_server is not None and descriptor.bench is not None, descriptor.name


def test_reading_the_registry_imports_no_transport_library() -> None:
    probe = (
        "import sys, transports.registry as r; "
        "print(sorted(m for m in ('zmq', 'grpc', 'nats', 'aio_pika', 'fastapi', 'pysyncobj', 'kademlia', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_every_echo_wire_a_descriptor_names_has_a_library_echo() -> None:
    from bench.wire_ceiling import WIRES

    named = {d.echo_wire for d in TRANSPORTS.values() if d.echo_wire}
    assert named <= set(WIRES)
