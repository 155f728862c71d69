"""The README's slow command lines (tests/integration/readme.py, ``Run.slow``): our RabbitMQ with dex-amqp and the bots, a DHT cluster.

They start brokers and several processes and run for tens of seconds, so
``make test-faults`` runs them, not ``make test``; the listing test in
tests/integration/test_readme_commands.py makes sure every README line is
run by one of the two or listed with its reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import readme


@pytest.mark.slow
@pytest.mark.parametrize("command", readme.top_level(slow=True))
def test_slow_readme_command_works_as_written(command: str, tmp_path: Path) -> None:
    readme.run_command(command, tmp_path)
