"""The README's ccxt example, read from README.md and run as written against a live turbo-dex (only its URL swapped)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tests.integration.ccxt.conftest import LiveServer

README = Path(__file__).resolve().parents[3] / "README.md"


def example() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Web screen and ccxt\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return str(code)


def test_the_readme_ccxt_example_runs_as_written(server: LiveServer) -> None:
    code = example()
    assert code.startswith("from traders.turbodex_ccxt import turbodex\n") and len([line for line in code.splitlines() if line]) == 5
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace("http://127.0.0.1:8080", server.url), "README.md", "exec"), {})
    first, second = printed.getvalue().splitlines()
    assert first == "[] []"  # an empty book and no candles yet
    assert second == "True canceled"
