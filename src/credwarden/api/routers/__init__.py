"""One router per resource of the REST API; `app.create_app` composes them.

credentials  list, add, describe/show, update, remove, value, versions, rollback, import, env vars
use          access tokens, auth headers, live tests
connections  OAuth through the server: start, status, and the browser's /oauth/callback
access       whoami, principals, API tokens, grants
environments environments and their protection
reports      expiring, rotation, unused, the least-privilege review
audit        the audit log, its verification, key rotation
health       /healthz and /metrics (no token)
"""
