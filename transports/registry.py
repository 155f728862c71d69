"""Every transport by name: its descriptor (``transports/<name>/descriptor.py``), collected from one list.

::

    async with serve("http", gateway) as url:          # the caller starts/stops the gateway
        async with make_client("http", "alice", url) as client:
            await client.submit([...])

``DESCRIPTOR_MODULES`` is the one place in the project that lists the
transports. Adding one adds its folder (with ``descriptor.py`` defining
``DESCRIPTOR``, a ``transports.core.descriptor.TransportDescriptor``) and one
line here; ``turbo-dex``, ``dex-trader``, ``dex-bench``, the contract suite and
the docs tables pick it up from ``TRANSPORTS``. Descriptor modules import
their transport lazily, so reading the registry never needs the libraries of
any transport. ``inproc`` has no wire: its "URL" names a gateway served in
this process.

``python -m transports.registry --markdown`` prints docs/transports.md and
``--readme-rows`` README.md's rows of the transport folders (a test checks
both are current); ``--extras`` prints the optional-dependency
extras the transports need (the Makefile's ``EXTRAS`` holds them all, a test checks).
"""

from __future__ import annotations

import argparse
import importlib
import posixpath
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from types import MappingProxyType

from transports.core.client import TraderClient
from transports.core.descriptor import ClientFactory, MalformedProbe, ServerFactory, TransportDescriptor
from transports.core.gateway import Gateway

# The transports, in the order the docs and reports show them.
DESCRIPTOR_MODULES = (
    "transports.inproc.descriptor",
    "transports.http.descriptor",
    "transports.grpc.descriptor",
    "transports.zmq.descriptor",
    "transports.amqp.descriptor",
    "transports.nats.descriptor",
    "transports.dht.descriptor",
    "transports.fix.descriptor",
)

Transport = TransportDescriptor  # the name older callers use
__all__ = ["TRANSPORTS", "ClientFactory", "MalformedProbe", "ServerFactory", "Transport", "make_client", "serve", "transport"]


def _load(modules: Sequence[str]) -> Mapping[str, TransportDescriptor]:
    found: dict[str, TransportDescriptor] = {}
    for module_name in modules:
        descriptor = getattr(importlib.import_module(module_name), "DESCRIPTOR", None)
        if not isinstance(descriptor, TransportDescriptor):
            raise TypeError(f"{module_name} defines no DESCRIPTOR (a TransportDescriptor)")
        if descriptor.name in found:
            raise ValueError(f"two transports named {descriptor.name!r}")
        found[descriptor.name] = descriptor
    return MappingProxyType(found)


TRANSPORTS: Mapping[str, TransportDescriptor] = _load(DESCRIPTOR_MODULES)


def transport(name: str) -> TransportDescriptor:
    entry = TRANSPORTS.get(name)
    if entry is None:
        raise ValueError(f"unknown transport {name!r}; known: {', '.join(TRANSPORTS)}")
    return entry


def wired() -> tuple[str, ...]:
    """The transports with a wire (every one but the in-process gateway)."""
    return tuple(name for name, d in TRANSPORTS.items() if d.send_malformed is not None)


def make_client(name: str, trader: str, url: str | None = None) -> TraderClient:
    """A client of transport ``name`` acting for ``trader`` (``url`` None = the transport's default/env)."""
    return transport(name).client(trader, url)


def serve(name: str, gateway: Gateway) -> AbstractAsyncContextManager[str]:
    """Serve ``gateway`` over transport ``name`` in the running event loop, on a free loopback port."""
    return transport(name).serve(gateway)


def authenticating() -> tuple[str, ...]:
    """The transports that authenticate with keys (``TransportDescriptor.auth``), sorted."""
    return tuple(sorted(name for name, d in TRANSPORTS.items() if d.auth is not None))


def extras() -> tuple[str, ...]:
    """The optional-dependency extras of every registered transport, in registry order."""
    return tuple(dict.fromkeys(d.extra for d in TRANSPORTS.values() if d.extra))


# ------------------------------------------------------------------ docs
def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|")


def markdown() -> str:
    """docs/transports.md: one row per registered transport, from its descriptor."""
    lines = [
        "# Transports",
        "",
        "<!-- Generated: `python -m transports.registry --markdown > docs/transports.md` (tests/unit/test_transport_registry.py). -->",
        "",
        "Every transport is a folder `transports/<name>/` whose `descriptor.py` describes it, and one line in",
        "`transports/registry.py`. `turbo-dex --transports`, `dex-trader --transport`, `dex-bench`, the contract",
        "suite and this table read the registry.",
        "",
        "| name | transport | extra | server | broker | in `turbo-dex` | an acknowledgement waits for | zero configuration | "
        "operational parts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for d in TRANSPORTS.values():
        title = f"[{d.title}]({posixpath.relpath(d.docs, 'docs')})" if d.docs else d.title  # the link is read from docs/
        broker = f"{d.broker.name} (`{d.broker.option}`, `${d.broker.env}`)" if d.broker else "-"
        served = "yes" if d.mount else "no"
        server = f"`{d.console_script}`" if d.console_script else "-"
        cells = [f"`{d.name}`", title, d.extra and f"`{d.extra}`", server, broker, served]
        cells += [d.acknowledged_after, d.zero_configuration, d.operational_parts]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## What each one is", ""]
    lines += [f"- **{d.title}** (`{d.name}`): {d.summary}" for d in TRANSPORTS.values()]
    return "\n".join(lines) + "\n"


def readme_rows() -> list[str]:
    """README.md's layout rows of the transport folders that have docs (a test checks README.md holds each)."""
    rows = []
    for d in TRANSPORTS.values():
        if d.docs:
            rows.append(f"| `transports/{d.name}/` | {d.summary.removesuffix('.')} ([{d.docs}]({d.docs})). |")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transports.registry", description="The registered transports.")
    parser.add_argument("--markdown", action="store_true", help="print docs/transports.md")
    parser.add_argument("--extras", action="store_true", help="print the transports' optional-dependency extras, comma-separated")
    parser.add_argument("--readme-rows", action="store_true", help="print README.md's layout rows of the transport folders")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown(), end="")
    elif args.readme_rows:
        print("\n".join(readme_rows()))
    elif args.extras:
        print(",".join(extras()))
    else:
        print("\n".join(TRANSPORTS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
