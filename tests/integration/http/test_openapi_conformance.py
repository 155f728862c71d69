"""Schemathesis against the server's own OpenAPI document: no 5xx, every response as documented.

Runs against a live uvicorn server (one per operation, so each starts from the
same state), with Hypothesis bounded to keep the whole file well under 90 s.
(``schemathesis.pytest.from_fixture`` would load the document from the live
server, but its lazy loader breaks on pytest 9: it writes ``node._nodeid``.)
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.http.conftest import LiveServer
from transports.core.gateway import Gateway
from transports.http.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance, response_headers_conformance]


def test_schemathesis_is_4x() -> None:
    assert schemathesis.__version__.split(".")[0] == "4"


# The document is the app's own (built without a running gateway: it does not
# depend on one); the requests go to a live server.
schema = schemathesis.openapi.from_dict(create_app(Gateway()).openapi())


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case[Any], server: LiveServer) -> None:
    case.call_and_validate(base_url=server.url, checks=CHECKS)
