"""The contract suites run once per transport registered in ``transports.registry``."""

from __future__ import annotations

import pytest

from transports.registry import TRANSPORTS


@pytest.fixture(params=sorted(TRANSPORTS))
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)
