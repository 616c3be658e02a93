#!/usr/bin/env bash
# Refreshes the reference web client's copy of the graphql-ws client library
# (its ES module build, which browsers load as it is, with no bundler) from
# the npm registry at the version pinned below, with its licence. The
# `tickets` binary embeds these files (api/src/web.rs). Run it by hand after
# changing the version, then update the file names in web.rs if the shared
# chunk's name changed; nothing runs it during a build.
set -euo pipefail
cd "$(dirname "$0")"
GRAPHQL_WS=6.4.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "graphql-ws@$GRAPHQL_WS" >/dev/null && tar xzf "graphql-ws-$GRAPHQL_WS.tgz")
rm -f common-*.js
cp "$work/package/dist/client.js" "$work"/package/dist/common-*.js .
cp "$work/package/LICENSE.md" LICENSE
(cd "$work" && sha256sum ./*.tgz) | sed 's| \./| |' > VERSIONS
