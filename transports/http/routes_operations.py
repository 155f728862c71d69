"""Operations over HTTP: gateway counters, liveness and Prometheus metrics (no trader, no side effects)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from transports.core.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from transports.core.metrics import metrics_registry, render
from transports.http import openapi as doc
from transports.http.context import HttpContext, json_response


def operations_router(ctx: HttpContext) -> APIRouter:
    """``/stats``, ``/health`` and ``/metrics``."""
    router = APIRouter()
    gateway, json = ctx.gateway, json_response
    registry = metrics_registry(gateway)

    @router.get("/stats", summary="Gateway counters", responses=doc.responses(doc.ref("Stats"), {}), tags=["operations"])
    async def get_stats() -> Response:
        return json(gateway.stats_dict())

    @router.get("/health", summary="Liveness", responses=doc.responses(doc.ref("Health"), {}), tags=["operations"])
    async def get_health() -> Response:
        return json({"status": "ok", "engine_seq": gateway.engine.seq, "queue_depth": gateway.queue_depth})

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses=doc.responses({"type": "string"}, {}, ok_media="text/plain"),
        tags=["operations"],
    )
    async def get_metrics() -> Response:
        return Response(render(registry), media_type=METRICS_CONTENT_TYPE)

    return router
