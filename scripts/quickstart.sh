#!/bin/sh
# `make run`: initialise the embedded default (SQLite + key file) and walk the main job once.
# (Once `credwarden serve` exists, `make run` starts the server instead.)
set -eu
echo "== credwarden home: ${CREDWARDEN_HOME}"
credwarden init
if ! credwarden show dev/demo/api-key >/dev/null 2>&1; then
    # A throw-away demo key: random, never a real credential.
    printf '%s' "demo_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" |
        credwarden add dev/demo/api-key --kind api_key --stdin --field env_var=DEMO_API_KEY \
            --description "quickstart demo key" --owner "$(id -un)" --rotate-every 90d
fi
echo "== stored credentials"
credwarden list
echo "== one credential, secret masked"
credwarden show dev/demo/api-key
echo "== a workflow run with the key injected as DEMO_API_KEY"
credwarden run --env dev --only 'dev/demo/*' -- \
    sh -c 'echo "the workflow got DEMO_API_KEY (${#DEMO_API_KEY} characters)"'
echo "== the last audit events"
credwarden audit --limit 5
credwarden audit verify
