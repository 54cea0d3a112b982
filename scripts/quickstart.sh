#!/bin/sh
# `make run`: initialise the embedded default (SQLite + key file), walk the main job once,
# then serve the REST API on 127.0.0.1 (Ctrl-C stops it).
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
echo "== serving the REST API (Ctrl-C to stop)"
echo "   a workflow token:  credwarden principal add my-flow --type workflow"
echo "                      credwarden grant my-flow 'dev/demo/*' --actions read"
echo "                      credwarden principal token my-flow --expires 90d"
echo "   then:              CREDWARDEN_URL=http://127.0.0.1:${CREDWARDEN_PORT:-8470} CREDWARDEN_TOKEN=... credwarden get dev/demo/api-key"
exec credwarden serve --host 127.0.0.1 --port "${CREDWARDEN_PORT:-8470}"
