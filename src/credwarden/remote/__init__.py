"""Remote mode: the facade over `credwarden serve`'s REST API (CREDWARDEN_URL, CREDWARDEN_TOKEN).

`client.py` holds the operations (one route of `routes.py` each), `transport.py` the HTTP.
Neither imports the local facade: `Warden.open()` chooses between the two.
"""

from __future__ import annotations

from .client import RemoteWarden
from .transport import shown_url

__all__ = ["RemoteWarden", "shown_url"]
