"""docs/limits.md is the table ``transports.core.limits`` prints: regenerate it when a limit changes."""

from __future__ import annotations

from pathlib import Path

from transports.core.limits import markdown

ROOT = Path(__file__).resolve().parents[2]


def test_docs_limits_md_is_generated_from_the_code() -> None:
    written = (ROOT / "docs" / "limits.md").read_text()
    assert written == markdown(), "docs/limits.md is stale: python -m transports.core.limits --markdown > docs/limits.md"


def test_the_readme_and_the_docs_link_the_table() -> None:
    assert "docs/limits.md" in (ROOT / "README.md").read_text()
    for doc in ("http.md", "grpc.md", "zmq.md", "nats.md", "amqp.md", "dht.md"):
        assert "limits.md" in (ROOT / "docs" / doc).read_text(), doc
