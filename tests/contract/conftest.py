"""The contract suites run once per transport registered in ``transports.registry``, and again with keys.

The ``transport`` parameter is a ``Wire``: the transport's name, and whether
its venue runs with ``--auth keys`` (id ``<name>-keys``). Every transport runs
without keys; each one that authenticates (``transports.registry.authenticating``)
runs with keys as well.
"""

from __future__ import annotations

import pytest

from tests.contract.test_contract import Wire
from transports.registry import TRANSPORTS, authenticating


def _wires() -> list[object]:
    keyed = set(authenticating())
    params: list[object] = []
    for name in sorted(TRANSPORTS):
        params.append(pytest.param(Wire(name), id=name))
        if name in keyed:
            params.append(pytest.param(Wire(name, keys=True), id=f"{name}-keys"))
    return params


@pytest.fixture(params=_wires())
def transport(request: pytest.FixtureRequest) -> str:
    wire = request.param
    assert isinstance(wire, Wire)
    return wire
