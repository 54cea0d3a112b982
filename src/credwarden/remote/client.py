"""The facade over REST: with CREDWARDEN_URL set, every command talks to `credwarden serve`.

`RemoteWarden` implements the `Facade` protocol on its own (it shares no code with the local
`Warden` and imports nothing of it); each operation is a call of a route in `routes.py`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ..access.grants import Grant
from ..access.records import PrincipalRecord
from ..address import parse_address, parse_ref
from ..audit.chain import AuditEvent, VerifyReport
from ..errors import CredentialInvalid, StoreError, UsageError
from ..model import Credential, CredentialInfo, VersionInfo
from ..operation import Principal
from ..routes import LOCAL_ONLY
from ..secret import Secret
from ..settings import VERSION, Settings
from .transport import DEFAULT_TIMEOUT, Transport

if TYPE_CHECKING:
    from ..facade import Facade
    from ..lifecycle.livetest import Outcome

_list = list  # `list` is shadowed by a method name below

POLL_S = 0.5
"""How often `connect` asks the server whether the authorization has arrived."""
_NOT_REMOTE_HINT = (
    "run it on the server's host against the store (unset CREDWARDEN_URL and CREDWARDEN_TOKEN)"
)
Rows = _list[dict[str, Any]]


def _info(d: Mapping[str, Any]) -> CredentialInfo:
    """A CredentialInfo from its `to_dict` (secret fields back to None)."""
    secret = set(d.get("secret_fields") or ())
    fields = {k: (None if k in secret else v) for k, v in dict(d["fields"]).items()}
    values: dict[str, Any] = {k: d.get(k) for k in CredentialInfo._fields}
    values["fields"] = fields
    return CredentialInfo(**values)


def _cred(address: str) -> tuple[str, dict[str, str]]:
    """The normalised address and the `{env}/{service}/{name}` of its routes."""
    a = parse_address(address)
    return str(a), {"env": a.env, "service": a.service, "name": a.name}


class RemoteWarden:
    """The facade against a server: `Warden.open()` returns one when CREDWARDEN_URL is set.

    Operations are REST calls instead of store transactions: the server authorizes and audits
    them as the token's principal. They return the same types as the local facade, and the
    server's errors come back as the same exception classes (so the CLI exits with the same
    codes). Operations that need the store or the master key on this machine (the route
    table's LOCAL_ONLY) raise UsageError.
    """

    def __init__(
        self,
        url: str,
        token: str | Secret,
        *,
        source: str = "sdk",
        timeout: float = DEFAULT_TIMEOUT,
        settings: Settings | None = None,
    ) -> None:
        self._http = Transport(
            url, token, timeout=timeout, agent=f"credwarden-cli/{VERSION} ({source})"
        )
        self._whoami: Principal | None = None
        self._envs: _list[str] | None = None
        self.settings = settings or Settings.from_env()
        self.key_source = "held by the server"

    @classmethod
    def from_env(
        cls, *, source: str = "sdk", environ: Mapping[str, str] | None = None
    ) -> RemoteWarden:
        """The server named by CREDWARDEN_URL, with CREDWARDEN_TOKEN (and CREDWARDEN_TIMEOUT)."""
        env = os.environ if environ is None else environ
        url = env.get("CREDWARDEN_URL", "").strip()
        if not url:
            raise UsageError("CREDWARDEN_URL is not set", hint="e.g. https://credwarden.internal")
        token = env.get("CREDWARDEN_TOKEN", "").strip()
        if not token:
            raise UsageError(
                "CREDWARDEN_URL is set but CREDWARDEN_TOKEN is not",
                hint="get a token: credwarden principal token NAME (on the server)",
            )
        raw = env.get("CREDWARDEN_TIMEOUT", "").strip()
        try:
            timeout = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise UsageError(
                f"CREDWARDEN_TIMEOUT is not a number of seconds ({raw[:20]!r})",
                hint="e.g. CREDWARDEN_TIMEOUT=30",
            ) from None
        return cls(url, token, source=source, timeout=timeout, settings=Settings.from_env(env))

    @classmethod
    def open(cls, *, source: str = "sdk", **local: Any) -> RemoteWarden:
        """The server named by the environment (a home or database URL is a local store's)."""
        if local.get("home") is not None or local.get("database_url") is not None:
            raise UsageError(
                "a RemoteWarden opens the server named by CREDWARDEN_URL, not a home or database",
                hint="use Warden.open(home=...) for a local store",
            )
        return cls.from_env(source=source)

    @classmethod
    def init(cls, **_: Any) -> NoReturn:
        _unavailable("init")

    def __repr__(self) -> str:
        who = f", principal={self._whoami.name!r}" if self._whoami is not None else ""
        return f"RemoteWarden(url={self._http.url_shown!r}{who})"

    if not TYPE_CHECKING:  # hidden from mypy, which must see exactly the Facade's operations

        def __getattr__(self, name: str) -> Any:
            """The local facade's store-side operations (the route table's LOCAL_ONLY) refuse
            clearly here instead of failing on a missing attribute."""
            if name in LOCAL_ONLY:
                _unavailable(name)
            raise AttributeError(f"'RemoteWarden' object has no attribute {name!r}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteWarden:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who and where -------------------------------------------------------------------

    @property
    def principal(self) -> Principal:
        """The token's principal (asked of the server once)."""
        if self._whoami is None:
            d = self.whoami()
            self._whoami = Principal(str(d["name"]), str(d.get("type") or "user"))
        return self._whoami

    @property
    def source(self) -> str:
        return "remote"

    @property
    def url(self) -> str:
        """The server's URL, without anything secret."""
        return self._http.url_shown

    @property
    def environments(self) -> _list[str]:
        if self._envs is None:
            self._load_environments()
            assert self._envs is not None
        return self._envs

    @property
    def store_id(self) -> str:
        _unavailable("store_id")

    def _load_environments(self) -> dict[str, _list[str]]:
        d = self._http.route("environments.list")
        self._envs = _list(d["environments"])
        return {"environments": self._envs, "protected": _list(d.get("protected") or [])}

    def health(self) -> dict[str, Any]:
        """The server's /healthz answer (outside the route table: no token needed)."""
        return dict(self._http.call("GET", "/healthz"))

    def whoami(self) -> dict[str, Any]:
        return dict(self._http.route("whoami"))

    # -- reads ---------------------------------------------------------------------------

    def get(self, ref: str) -> Secret:
        """The value of one field (`addr#field`), or of the kind's main field: one request,
        one audited read of that field."""
        address, wanted = parse_ref(ref)
        _addr, at = _cred(str(address))
        query = [("field", wanted)] if wanted is not None else [("main", "true")]
        values = dict(self._http.route("credentials.value", at, query=query))
        if len(values) != 1:
            raise StoreError(f"the server at {self.url} answered an unexpected value")
        return Secret(str(next(iter(values.values()))))

    def read(self, address: str) -> Credential:
        """Every field of the current version (secrets wrapped), with the metadata."""
        addr, at = _cred(address)
        values = {
            str(k): str(v) for k, v in dict(self._http.route("credentials.value", at)).items()
        }
        info = self.describe(addr)
        out: dict[str, Secret | str] = {
            k: (v if info.fields.get(k) is not None else Secret(v)) for k, v in values.items()
        }
        return Credential(info, dict(sorted(out.items())))

    def headers(self, address: str) -> dict[str, Secret]:
        out = self._http.route("credentials.headers", _cred(address)[1])
        return {str(k): Secret(str(v)) for k, v in dict(out).items()}

    def describe(self, address: str) -> CredentialInfo:
        return _info(self._http.route("credentials.describe", _cred(address)[1]))

    def show(self, address: str) -> tuple[CredentialInfo, _list[VersionInfo]]:
        """`describe` with the versions: one request, one audited operation."""
        d = dict(
            self._http.route(
                "credentials.describe", _cred(address)[1], query=[("versions", "true")]
            )
        )
        versions = [VersionInfo(**v) for v in d.pop("versions", [])]
        return _info(d), versions

    def list(
        self,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        health: str | None = None,
    ) -> _list[CredentialInfo]:
        query = [("env", env), ("service", service), ("kind", kind), ("health", health)]
        return [_info(d) for d in self._http.route("credentials.list", query=query)]

    def history(self, address: str) -> _list[VersionInfo]:
        return [
            VersionInfo(**d) for d in self._http.route("credentials.history", _cred(address)[1])
        ]

    def env_vars(self, *, env: str, only: Sequence[str] = ()) -> dict[str, Secret]:
        query = [("env", env), *(("only", p) for p in only)]
        out = self._http.route("env_vars", query=query)
        return {str(k): Secret(str(v)) for k, v in dict(out).items()}

    # -- writes --------------------------------------------------------------------------

    def add(
        self,
        address: str,
        kind: str,
        fields: Mapping[str, str | Secret],
        *,
        provider: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: Sequence[str] | None = None,
        expires_at: str | None = None,
        rotate_every: int | None = None,
    ) -> CredentialInfo:
        body = {
            "address": str(parse_address(address)),
            "kind": kind,
            "fields": _reveal(fields),
            "provider": provider,
            "description": description,
            "owner": owner,
            "tags": dict(tags or {}),
            "links": _list(links or []),
            "expires_at": expires_at,
            "rotate_every": rotate_every,
        }
        return _info(self._http.route("credentials.add", body=body))

    def update(
        self,
        address: str,
        *,
        fields: Mapping[str, str | Secret] | None = None,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        note: str = "updated",
        main: str | Secret | None = None,
        **metadata: Any,
    ) -> CredentialInfo:
        body: dict[str, Any] = {
            "fields": _reveal(fields or {}),
            "unset": _list(unset),
            "expected_version": expected_version,
            "note": note,
            "main": main.reveal() if isinstance(main, Secret) else main,
        }
        clear = []
        for key, value in metadata.items():
            if value is None:
                clear.append(key)
            elif key in ("tags", "add_tags"):
                body[key] = dict(value)
            elif key in ("links", "add_links"):
                body[key] = _list(value)
            else:
                body[key] = value
        if clear:
            body["clear"] = clear
        return _info(self._http.route("credentials.update", _cred(address)[1], body=body))

    def rollback(
        self, address: str, to_version: int, *, expected_version: int | None = None
    ) -> CredentialInfo:
        body = {"to_version": to_version, "expected_version": expected_version}
        return _info(self._http.route("credentials.rollback", _cred(address)[1], body=body))

    def remove(
        self, address: str, *, expected_version: int | None = None, revoke: bool = True
    ) -> str | None:
        query = [("expected_version", expected_version), ("revoke", "true" if revoke else "false")]
        out = self._http.route("credentials.remove", _cred(address)[1], query=query)
        revoked = out.get("revocation")
        return str(revoked) if revoked is not None else None

    def import_entries(
        self,
        entries: Sequence[tuple[str, str]],
        *,
        env: str,
        service: str,
        overwrite: bool = False,
    ) -> _list[CredentialInfo]:
        body = {
            "entries": [[str(k), str(v)] for k, v in entries],
            "env": env,
            "service": service,
            "overwrite": overwrite,
        }
        return [_info(d) for d in self._http.route("import", body=body)]

    # -- environments --------------------------------------------------------------------

    def add_environment(self, name: str) -> _list[str]:
        out = self._http.route("environments.add", body={"name": name})
        self._envs = _list(out["environments"])
        return _list(self._envs)

    def protected_environments(self) -> _list[str]:
        return sorted(self._load_environments()["protected"])

    def protect_environment(self, env: str, protected: bool = True) -> _list[str]:
        out = self._http.route(
            "environments.protect", {"env": env}, body={"protected": bool(protected)}
        )
        return _list(out["protected"])

    # -- use: tokens, live checks ----------------------------------------------------------

    def access_token(
        self,
        address: str,
        *,
        scopes: Sequence[str] = (),
        subject: str | None = None,
        leeway: int = 60,
        rejected: Secret | None = None,
    ) -> Secret:
        at = _cred(address)[1]
        if rejected is not None:
            body = {
                "scopes": _list(scopes),
                "subject": subject,
                "min_ttl": leeway,
                "rejected": rejected.reveal() if isinstance(rejected, Secret) else rejected,
            }
            out = self._http.route("credentials.token_rejected", at, body=body)
        else:
            query = [*(("scope", s) for s in scopes), ("subject", subject), ("min_ttl", leeway)]
            out = self._http.route("credentials.token", at, query=query)
        return Secret(str(out["access_token"]))

    def connect(
        self,
        address: str,
        *,
        provider: str,
        client: str,
        scopes: Sequence[str] = (),
        grant: str = "authorization_code",
        port: int = 0,
        open_url: Callable[[str], None] | None = None,
        show_device: Callable[[dict[str, Any]], None] | None = None,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> CredentialInfo:
        """Connect through the server: it builds the authorization URL, the redirect goes to
        its public URL (/oauth/callback), and this polls until the connection is stored.
        `port` is unused (there is no local listener)."""
        if grant != "authorization_code":
            raise UsageError(
                f"the {grant} grant runs locally, not through a server",
                hint="connect through the server with the browser flow (authorization_code),"
                " or run it on the server's host against the store (unset CREDWARDEN_URL)",
            )
        if not (0 < timeout <= 3600):
            raise UsageError("the timeout must be between 0 and 3600 seconds")
        body = {
            "provider": provider,
            "client": str(parse_address(client)),
            "scopes": _list(scopes),
            "vars": dict(template_vars or {}),
        }
        start = self._start_flow(address, body)
        url, flow = str(start["authorize_url"]), str(start["flow"])
        (open_url or _print_url)(url)
        deadline = time.monotonic() + timeout
        while True:
            state = self.connect_status(flow)
            status = state.get("status")
            if status == "done":
                return self.describe(address)
            if status != "pending":
                raise _flow_ended(state)
            if time.monotonic() >= deadline:
                raise CredentialInvalid(
                    f"no authorization arrived within {timeout:g} s",
                    hint="open the URL, approve, and make sure the redirect reaches the server"
                    f" ({start.get('redirect_uri') or 'its /oauth/callback'})",
                )
            time.sleep(POLL_S)

    def _start_flow(self, address: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Begin a flow on the server: {"authorize_url", "flow", "expires_at", "redirect_uri"}."""
        return dict(self._http.route("connect.start", _cred(address)[1], body=dict(body)))

    def connect_status(self, flow: str) -> dict[str, Any]:
        return dict(self._http.route("connect.status", {"flow": flow}))

    def auth(self, address: str) -> Any:
        """An `httpx.Auth` sending the connection's token (refreshed once on a 401)."""
        from ..oauth.httpx_auth import WardenAuth

        return WardenAuth(self, address)

    def test(
        self,
        address: str,
        *,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Outcome:
        """The server checks it live; returns a livetest.Outcome."""
        from ..lifecycle.livetest import Outcome

        body = {"vars": dict(template_vars or {}), "timeout": timeout}
        out = self._http.route(
            "credentials.test", _cred(address)[1], body=body, timeout=timeout + 15
        )
        return Outcome(**{k: v for k, v in dict(out).items() if k in Outcome._fields})

    # -- principals, API tokens, grants --------------------------------------------------

    def add_principal(
        self,
        name: str,
        *,
        type: str = "workflow",
        owner: str | None = None,
        description: str | None = None,
        role: str | None = None,
        pattern: str = "*",
    ) -> PrincipalRecord:
        body = {
            "name": name,
            "type": type,
            "owner": owner,
            "description": description,
            "role": role,
            "pattern": pattern,
        }
        return PrincipalRecord(**self._http.route("principals.add", body=body))

    def principals(self) -> _list[PrincipalRecord]:
        return [PrincipalRecord(**d) for d in self._http.route("principals.list")]

    def principal_info(self, name: str) -> dict[str, Any]:
        return dict(self._http.route("principals.show", {"name": name}))

    def remove_principal(self, name: str) -> dict[str, int]:
        return dict(self._http.route("principals.remove", {"name": name}))

    def issue_token(
        self, name: str, *, expires_in: int | None = None, description: str | None = None
    ) -> tuple[dict[str, Any], Secret]:
        body = {"expires_in": expires_in, "description": description}
        out = dict(self._http.route("tokens.issue", {"name": name}, body=body))
        token = Secret(str(out.pop("token")))
        return out, token

    def tokens(self, name: str | None = None) -> Rows:
        return [dict(t) for t in self._http.route("tokens.list", query=[("principal", name)])]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return dict(self._http.route("tokens.revoke", {"token_id": token_id}))

    def grant(
        self,
        name: str,
        pattern: str,
        *,
        actions: str | Sequence[str] | None = None,
        role: str | None = None,
    ) -> Grant:
        body = {"principal": name, "pattern": pattern, "actions": _actions(actions), "role": role}
        return Grant.from_dict(self._http.route("grants.add", body=body))

    def revoke_grant(self, name: str, pattern: str, *, actions: str | None = None) -> Grant | None:
        body = {"principal": name, "pattern": pattern, "actions": _actions(actions)}
        left = self._http.route("grants.revoke", body=body).get("left")
        return Grant.from_dict(left) if left else None

    def grants(self, name: str | None = None) -> _list[Grant]:
        found = self._http.route("grants.list", query=[("principal", name)])
        return [Grant.from_dict(d) for d in found]

    # -- reports -------------------------------------------------------------------------

    def report_expiring(self, *, within: int) -> Rows:
        return _rows(self._http.route("reports.expiring", query=[("within", within)]))

    def report_rotation(self) -> Rows:
        return _rows(self._http.route("reports.rotation"))

    def report_unused(self, *, days: int) -> Rows:
        return _rows(self._http.route("reports.unused", query=[("days", days)]))

    def review_permissions(
        self, *, days: int = 90, principal: str | None = None, flagged: bool = False
    ) -> Rows:
        query = [("days", days), ("principal", principal), ("flagged", "true" if flagged else None)]
        return _rows(self._http.route("reports.permissions", query=query))

    # -- audit and keys ------------------------------------------------------------------

    def audit_events(
        self,
        *,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> _list[AuditEvent]:
        if address is not None:
            address = str(parse_address(address))
        query = [("address", address), ("principal", principal), ("since", since), ("limit", limit)]
        return [AuditEvent(**d) for d in self._http.route("audit.list", query=query)]

    def verify_audit(self) -> VerifyReport:
        return VerifyReport(**self._http.route("audit.verify", timeout=600))

    def rotate_key(
        self, *, progress: Callable[[int, int], None] | None = None, batch: int = 200
    ) -> dict[str, int]:
        """The server rotates; `progress` is called once, when it is done."""
        answer = self._http.route("keys.rotate", timeout=600)
        out = {str(k): int(v) for k, v in dict(answer).items()}
        if progress is not None:
            done = out.get("rewrapped", 0)
            progress(done, done)
        return out


def _flow_ended(state: Mapping[str, Any]) -> CredentialInvalid:
    status = state.get("status")
    if status == "failed":
        return CredentialInvalid(
            str(state.get("message") or "the connection failed")[:500],
            hint="see the server's audit log (connect.finish) for the details",
        )
    if status == "expired":
        return CredentialInvalid(
            "the authorization did not arrive within the flow's 10 minutes",
            hint="run connect again and approve sooner",
        )
    return CredentialInvalid(
        "the server no longer knows this connect flow", hint="run connect again"
    )


def _rows(answer: Any) -> Rows:
    return [dict(r) for r in answer]


def _print_url(url: str) -> None:
    print(url, flush=True)


def _reveal(fields: Mapping[str, str | Secret]) -> dict[str, str]:
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in fields.items()}


def _actions(actions: str | Sequence[str] | None) -> _list[str] | None:
    if actions is None:
        return None
    if isinstance(actions, str):
        return [a.strip() for a in actions.split(",") if a.strip()]
    return [str(a) for a in actions]


def _unavailable(name: str) -> NoReturn:
    raise UsageError(
        f"{name} is not available against a server (CREDWARDEN_URL is set)",
        hint=_NOT_REMOTE_HINT,
    )


if TYPE_CHECKING:

    def _is_a_facade(r: RemoteWarden) -> Facade:
        return r  # mypy: the client implements every operation of the protocol


__all__ = ["RemoteWarden"]
