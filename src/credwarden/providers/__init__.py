"""The provider catalog: real services described as data, not code.

catalog.yaml (checked by schema.json) says, per service, how it authenticates:
OAuth endpoints, scopes, PKCE, token quirks, API key formats, a test request,
revocation and a docs link. Users add providers as YAML files in
CREDWARDEN_HOME/providers/ or from OIDC / RFC 8414 discovery metadata.

    catalog = load_catalog()
    github = catalog.get("github")
    key_matches(github, "ghp_...")            # True / False / None (no pattern)
    github.test_request("api_key", secrets={"api_key": key})

Not imported on the `credwarden get` path.
"""

from __future__ import annotations

from .catalog import Catalog, load_catalog, save_user_provider, validate_entry
from .discovery import provider_from_discovery
from .model import (
    AUTH_MODES,
    ApiKeySpec,
    BasicSpec,
    ExtraField,
    HttpRequest,
    OAuth2Spec,
    Provider,
    RefreshPolicy,
    RequestSpec,
    ServiceAccountSpec,
    TemplateVar,
    key_matches,
)

__all__ = [
    "AUTH_MODES",
    "ApiKeySpec",
    "BasicSpec",
    "Catalog",
    "ExtraField",
    "HttpRequest",
    "OAuth2Spec",
    "Provider",
    "RefreshPolicy",
    "RequestSpec",
    "ServiceAccountSpec",
    "TemplateVar",
    "key_matches",
    "load_catalog",
    "provider_from_discovery",
    "save_user_provider",
    "validate_entry",
]
