"""Running the API: uvicorn (uvloop + httptools where installed) and the background scheduler."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from typing import Any

from ..warden import Warden
from .app import create_app


def build(warden: Warden, *, public_url: str | None = None) -> Any:
    """The ASGI application `serve` runs (the API behind its hot-path front)."""
    from .fast import FastReads

    return FastReads(create_app(warden, public_url=public_url), warden)


_SCHEDULER_ENV = "CREDWARDEN_SERVE_SCHEDULER"
_PUBLIC_URL_ENV = "CREDWARDEN_SERVE_PUBLIC_URL"


def default_public_url(host: str, port: int) -> str:
    """http://HOST:PORT: right when browsers reach the server directly (not behind a proxy)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - not a bind
    if shown == "::":
        shown = "::1"
    return f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}"


def worker_app() -> Any:
    """One worker process of `serve --workers N`: its own facade, opened from the environment
    (the parent checked that the key loads without a prompt)."""
    import atexit

    warden = Warden.open_local(source="serve")
    sched = None
    if os.environ.get(_SCHEDULER_ENV, "1") == "1":
        from ..lifecycle.scheduler import Scheduler, default_jobs

        sched = Scheduler(warden, default_jobs())
        sched.start()

    def finish() -> None:
        if sched is not None:
            sched.stop(timeout=30)
        try:
            warden.flush_token_use()
        except Exception:
            logging.getLogger("credwarden.api").warning("could not record token use at exit")

    atexit.register(finish)
    return build(warden, public_url=os.environ.get(_PUBLIC_URL_ENV) or None)


def serve(
    warden: Warden,
    *,
    host: str = "127.0.0.1",
    port: int = 8470,
    scheduler: bool = True,
    log_level: str = "warning",
    on_ready: Callable[[str], None] | None = None,
    workers: int = 1,
    public_url: str | None = None,
    trusted_proxies: str | None = None,
) -> None:
    """Serve until interrupted; the scheduler's jobs run meanwhile (once per interval across
    every node of a shared PostgreSQL store). With `workers` > 1, that many processes share
    the port, each with its own facade over the same store (and its own scheduler: the
    leases make each job run once). `public_url` (default http://HOST:PORT) is where browsers
    reach the server: OAuth redirects come to `<public_url>/oauth/callback`. Behind a reverse
    proxy, `trusted_proxies` (its addresses, comma-separated) makes the client address (audit,
    failed-authentication brake) come from its X-Forwarded-For header."""
    import uvicorn

    from .app import check_public_url

    public_url = check_public_url(public_url or default_public_url(host, port))

    has = importlib.util.find_spec
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop" if has("uvloop") else "asyncio",
        "http": "httptools" if has("httptools") else "h11",
        "access_log": False,
        "log_level": log_level,
        "server_header": False,
        # X-Forwarded-For only from proxies named as trusted: anyone else could forge it.
        "proxy_headers": bool(trusted_proxies),
        "forwarded_allow_ips": trusted_proxies or "",
        "timeout_keep_alive": 15,
        "lifespan": "off",
    }
    if workers > 1:
        os.environ[_SCHEDULER_ENV] = "1" if scheduler else "0"
        os.environ[_PUBLIC_URL_ENV] = public_url
        if on_ready is not None:
            on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{port}")
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **options)
        return
    config = uvicorn.Config(build(warden, public_url=public_url), **options)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started and on_ready is not None:
                on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{port}")

    server = _Server(config)
    sched = None
    if scheduler:
        from ..lifecycle.scheduler import Scheduler, default_jobs

        sched = Scheduler(warden, default_jobs())
        sched.start()
    try:
        server.run()
    finally:
        if sched is not None:
            sched.stop(timeout=30)
        try:
            warden.flush_token_use()
        except Exception:
            logging.getLogger("credwarden.api").warning("could not record token use at exit")
