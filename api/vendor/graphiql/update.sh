#!/usr/bin/env bash
# Refreshes the GraphiQL page's assets from the npm registry at the versions
# pinned below, with their licences. The `tickets` binary embeds these files
# (api/src/http/assets.rs), so GraphiQL works with no network at run time.
# Run it by hand after changing a version, then update VERSIONS and the paths
# in assets.rs; nothing runs it during a build.
set -euo pipefail
cd "$(dirname "$0")"
GRAPHIQL=3.8.3
REACT=18.3.1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$work/$pkg" && tar xzf "$work/$pkg.tgz" -C "$work/$pkg"
done
cp "$work/graphiql-$GRAPHIQL/package/graphiql.min.js" "$work/graphiql-$GRAPHIQL/package/graphiql.min.css" .
cp "$work/graphiql-$GRAPHIQL/package/LICENSE" LICENSE-graphiql
cp "$work/react-$REACT/package/umd/react.production.min.js" .
cp "$work/react-$REACT/package/LICENSE" LICENSE-react
cp "$work/react-dom-$REACT/package/umd/react-dom.production.min.js" .
cp "$work/react-dom-$REACT/package/LICENSE" LICENSE-react-dom
(cd "$work" && sha256sum ./*.tgz) | sed 's| \./| |' > VERSIONS
