"""django-oauth-toolkit as a real, second OAuth 2 provider on loopback (started by ``dot.py``).

    python dot_server.py CONFIG.json

CONFIG: ``{"port": 0, "db_path": ".../dot.sqlite3", "access_ttl": 60, "refresh_ttl": null,
"rotate_refresh_token": true, "pkce_required": true, "users": [{"username", "password"}],
"apps": [{"name", "client_id", "client_secret", "client_type", "grant_type",
"redirect_uris"}]}``.

Runs Django's own threaded development server (what ``runserver --noreload`` runs) with this
module as ``ROOT_URLCONF``: DOT under ``/o/``, Django's login views under ``/accounts/``.
stdout gets one JSON line per event: ``{"event": "ready", "port": N}`` first, then
``{"event": "token", "grant_type", "status", "client_id"}`` per ``/o/token/`` request.
``GET /__control`` returns ``{"token_requests_by_grant": {...}}``. The server exits when its
stdin closes (the test process is gone) or on SIGTERM.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import django
from django.conf import settings

CFG: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text()) if __name__ == "__main__" else {}

LOGIN_TEMPLATE = """<!DOCTYPE html>
<html><head><title>Sign in</title></head><body>
<form method="post" action="{% url 'login' %}" id="login">
{% csrf_token %}
{{ form.username }} {{ form.password }}
<input type="hidden" name="next" value="{{ next }}">
<input type="submit" value="Sign in">
</form></body></html>
"""

_counts: dict[str, int] = {}
_counts_lock = threading.Lock()
_out_lock = threading.Lock()


def emit(event: dict[str, Any]) -> None:
    line = json.dumps({**event, "ts": time.time()})
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _basic_client_id(request: Any) -> str | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("basic "):
        try:
            return base64.b64decode(header[6:]).decode().split(":", 1)[0] or None
        except (ValueError, UnicodeDecodeError):
            return None
    return None


class TokenLogMiddleware:
    """One JSON line per ``/o/token/`` request, after the view answered."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        if request.path != "/o/token/" or request.method != "POST":
            return self.get_response(request)
        # Read the form before DOT does (the body is cached on the request).
        form = parse_qs(request.body.decode("utf-8", "replace"))
        grant_type = (form.get("grant_type") or [None])[0]
        client_id = (form.get("client_id") or [None])[0] or _basic_client_id(request)
        response = self.get_response(request)
        with _counts_lock:
            key = grant_type or "unknown"
            _counts[key] = _counts.get(key, 0) + 1
        event: dict[str, Any] = {
            "event": "token",
            "grant_type": grant_type,
            "status": response.status_code,
            "client_id": client_id,
        }
        if response.status_code >= 400:
            with contextlib.suppress(ValueError):
                event["error"] = json.loads(response.content).get("error")
        emit(event)
        return response


def control_view(request: Any) -> Any:
    from django.http import JsonResponse

    if request.META.get("REMOTE_ADDR") not in ("127.0.0.1", "::1"):
        return JsonResponse({"error": "loopback only"}, status=403)
    with _counts_lock:
        return JsonResponse({"token_requests_by_grant": dict(_counts)})


def configure(cfg: dict[str, Any]) -> None:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "[::1]"],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "oauth2_provider",
        ],
        MIDDLEWARE=[
            f"{__name__}.TokenLogMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": cfg["db_path"],
                "OPTIONS": {"timeout": 20},
            }
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                    ],
                    "loaders": [
                        (
                            "django.template.loaders.locmem.Loader",
                            {"registration/login.html": LOGIN_TEMPLATE},
                        ),
                        "django.template.loaders.app_directories.Loader",
                    ],
                },
            }
        ],
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        LOGIN_URL="/accounts/login/",
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        LOGGING={
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": sys.stderr}},
            "root": {"handlers": ["stderr"], "level": "WARNING"},
            "loggers": {"django.server": {"handlers": ["stderr"], "level": "INFO"}},
        },
        OAUTH2_PROVIDER={
            "PKCE_REQUIRED": cfg.get("pkce_required", True),
            "ROTATE_REFRESH_TOKEN": cfg.get("rotate_refresh_token", True),
            "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
            "REFRESH_TOKEN_REUSE_PROTECTION": True,
            "ACCESS_TOKEN_EXPIRE_SECONDS": cfg.get("access_ttl", 60),
            "REFRESH_TOKEN_EXPIRE_SECONDS": cfg.get("refresh_ttl"),
            "ALLOW_LOCALHOST_LOOPBACK": True,
            "SCOPES": {
                "read": "Read",
                "write": "Write",
                "api:read": "Read the API",
                "api:write": "Write the API",
                "offline_access": "Stay signed in",
                "introspection": "Introspect tokens",
            },
            "DEFAULT_SCOPES": ["read"],
        },
    )


urlpatterns: list[Any] = []


def build_urls() -> None:
    from django.urls import include, path

    urlpatterns.extend(
        [
            path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
            path("accounts/", include("django.contrib.auth.urls")),
            path("__control", control_view),
        ]
    )


def populate(cfg: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model
    from oauth2_provider.models import get_application_model

    user_model = get_user_model()
    for user in cfg.get("users", [{"username": "alice", "password": "x"}]):
        user_model.objects.create_user(username=user["username"], password=user["password"])
    application = get_application_model()
    for app in cfg.get("apps", []):
        application.objects.create(
            name=app["name"],
            client_id=app["client_id"],
            client_secret=app["client_secret"],  # hashed on save (MD5 hasher: fast)
            client_type=app.get("client_type", "confidential"),
            authorization_grant_type=app["grant_type"],
            redirect_uris=" ".join(app.get("redirect_uris", [])),
            skip_authorization=False,
            algorithm="",
        )


def _exit_when_stdin_closes(server: Any) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    threading.Thread(target=server.shutdown, daemon=True).start()


def main() -> None:
    cfg = CFG
    configure(cfg)
    django.setup()
    build_urls()

    from django.core.management import call_command
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    populate(cfg)

    server = ThreadedWSGIServer(("127.0.0.1", int(cfg.get("port", 0))), WSGIRequestHandler)
    server.daemon_threads = True
    server.set_app(get_wsgi_application())
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    if cfg.get("exit_on_stdin_close"):
        threading.Thread(target=_exit_when_stdin_closes, args=(server,), daemon=True).start()
    emit({"event": "ready", "port": server.server_address[1], "pid": os.getpid()})
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
