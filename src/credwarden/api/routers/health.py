"""Liveness and metrics, outside /v1 and without a token (no credential data in either)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from .. import metrics

router = APIRouter(redirect_slashes=False, tags=["health"])


@router.get("/healthz", summary="Liveness and the store's reachability")
def healthz(request: Request) -> dict[str, Any]:
    return {"status": "ok", **request.app.state.warden.health()}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prom() -> Response:
    return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")
