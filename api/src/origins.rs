//! Browsers on other origins (`--cors-origin`): CORS for HTTP, and the
//! `Origin` check of a WebSocket upgrade against the same list (a
//! cross-site page must not open a socket in its visitor's name). Without
//! the flag only same-origin pages may call: a browser sends `Origin` with
//! every WebSocket upgrade, and one that names this server (the `Host` the
//! request came to) is always let in.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, Method};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The allowed origins, exactly as a browser spells them
/// (`https://helpdesk.example.com`, no path, no trailing slash).
#[derive(Debug, Clone, Default)]
pub struct Origins(Vec<String>);

impl Origins {
    pub fn new(origins: &[String]) -> Origins {
        Origins(
            origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_string())
                .filter(|o| !o.is_empty())
                .collect(),
        )
    }

    /// The CORS layer for the listed origins: preflights answered, bearer
    /// tokens (no cookies, so no credentials), `Retry-After` readable by the
    /// page. `None` without origins: no CORS headers at all.
    pub fn cors(&self) -> Option<CorsLayer> {
        if self.0.is_empty() {
            return None;
        }
        let allowed: Vec<HeaderValue> = self
            .0
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(allowed))
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
                .expose_headers([header::RETRY_AFTER])
                .max_age(Duration::from_secs(600)),
        )
    }

    /// Whether a WebSocket upgrade with these headers may proceed: no
    /// `Origin` (not a browser), an origin naming the host the request came
    /// to, or a listed one.
    pub fn allows_socket(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        (host.is_some() && authority == host) || self.0.iter().any(|o| o == origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    /// Same-origin and listed origins open sockets; others do not; a client
    /// without `Origin` is not a browser and is not held to it.
    #[test]
    fn sockets_from_this_server_or_listed_origins_only() {
        let origins = Origins::new(&["https://helpdesk.example.com/".into()]);
        let host = "api.example.com:8080";
        assert!(origins.allows_socket(&headers(None, host)));
        assert!(origins.allows_socket(&headers(Some("http://api.example.com:8080"), host)));
        assert!(origins.allows_socket(&headers(Some("https://helpdesk.example.com"), host)));
        assert!(!origins.allows_socket(&headers(Some("https://evil.example"), host)));
        assert!(
            !Origins::default().allows_socket(&headers(Some("https://helpdesk.example.com"), host))
        );
        assert!(Origins::default().cors().is_none());
    }
}
