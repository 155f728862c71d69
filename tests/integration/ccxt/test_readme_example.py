"""The README's ccxt example, read from README.md and run as written against a live ``turbo-dex --auth keys``
(only its URL, key id and secret swapped for the test server's and a key ``create_key`` made there)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from tests.integration.ccxt.conftest import KeyedExchange

README = Path(__file__).resolve().parents[3] / "README.md"
URL, KEY_ID, SECRET = "http://127.0.0.1:8080", "alice-1a2b3c4d5e6f", "ALICE_SECRET"  # the README's placeholders


def example() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Web screen and ccxt\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    return str(code)


def test_the_readme_ccxt_example_runs_as_written(keyed: KeyedExchange) -> None:
    code = example()
    assert code.startswith("from traders.turbodex_ccxt import turbodex\n") and len([line for line in code.splitlines() if line]) == 5
    assert all(placeholder in code for placeholder in (URL, KEY_ID, SECRET))
    swapped = code.replace(URL, keyed.url).replace(KEY_ID, keyed.alice.key_id).replace(SECRET, keyed.alice.private_key)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(swapped, "README.md", "exec"), {})
    first, second = printed.getvalue().splitlines()
    assert first == "[] []"  # an empty book and no candles yet
    assert second == "True canceled"
