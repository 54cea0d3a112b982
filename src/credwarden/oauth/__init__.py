"""OAuth 2.0: token sets, the token-endpoint client, the flows and the refresh coordinator.

Nothing here is imported by a plain `get`; httpx and authlib load only when a
token must be fetched.
"""
