//! The GraphiQL page at `GET /graphql` and the assets it loads, embedded in
//! the binary from pinned npm packages (`api/vendor/graphiql/`, with their
//! licences and `update.sh`), so the page works with no network at all: on an
//! air-gapped network, or a laptop on a train.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// Where the assets are served. The folder names the pinned versions, so a
/// browser may cache each file for good.
pub const ASSETS: &str = "/assets/graphiql-3.8.3-react-18.3.1";

/// One embedded file: name under [`ASSETS`], content type, bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! vendored {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../vendor/graphiql/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

static FILES: &[Asset] = &[
    vendored!("react.production.min.js", JS),
    vendored!("react-dom.production.min.js", JS),
    vendored!("graphiql.min.js", JS),
    vendored!("graphiql.min.css", "text/css; charset=utf-8"),
    vendored!("LICENSE-graphiql", TEXT),
    vendored!("LICENSE-react", TEXT),
    vendored!("LICENSE-react-dom", TEXT),
];

/// `GET /graphql` without an upgrade: the page, every script and style from
/// [`ASSETS`] on this server. Subscriptions go over the WebSocket on the same
/// path (graphql-transport-ws).
pub fn page() -> Response {
    let html = format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>tickets · GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{ASSETS}/graphiql.min.css">
<style>body {{ margin: 0; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{ASSETS}/react.production.min.js"></script>
<script src="{ASSETS}/react-dom.production.min.js"></script>
<script src="{ASSETS}/graphiql.min.js"></script>
<script>
  const here = new URL("/graphql", window.location.href);
  const ws = new URL(here);
  ws.protocol = here.protocol.replace("http", "ws");
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher: GraphiQL.createFetcher({{ url: here.href, subscriptionUrl: ws.href }}),
      defaultEditorToolsVisibility: true,
    }})
  );
</script>
</body>
</html>
"#
    );
    Html(html).into_response()
}

/// `GET /assets/graphiql-.../{file}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|f| f.name == name) {
        Some(file) => (
            [
                (header::CONTENT_TYPE, file.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            file.bytes,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, TEXT)],
            "no such file",
        )
            .into_response(),
    }
}
