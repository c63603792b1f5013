//! The live dashboard served by `eventfold serve` at `/`: one self-contained page (HTML, CSS
//! and vanilla JS embedded in the binary, no CDN, no build step) that reads the JSON routes
//! of the query API whenever the progress stream (server-sent events) says new events were
//! folded — polling every 2 s while the stream is not connected — and draws KPIs, events
//! per minute by type, top items, the purchase funnel, play-time percentiles and
//! per-partition freshness.
//!
//! The page uses relative URLs only (it also works behind a reverse proxy under a path
//! prefix), and its Content-Security-Policy forbids loading anything from another origin.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const HTML: &str = include_str!("dashboard.html");
const CSS: &str = include_str!("dashboard.css");
const JS: &str = include_str!("dashboard.js");

/// Same origin only: the page, its script and style, and the API it reads and streams from.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; form-action 'none'";

const NOSNIFF: HeaderName = HeaderName::from_static("x-content-type-options");

/// The dashboard's routes: `/` (the page), `/dashboard.css` and `/dashboard.js`. Stateless,
/// so they merge into any router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route(
            "/dashboard.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
}

async fn page() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
            (NOSNIFF, "nosniff"),
            (CONTENT_SECURITY_POLICY, CSP),
        ],
        HTML,
    )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (NOSNIFF, "nosniff"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> (StatusCode, String, String, String) {
        let response = routes::<()>()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (content_type, cache) = (header(CONTENT_TYPE), header(CACHE_CONTROL));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            cache,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn serves_the_page_with_every_test_id() {
        let (status, content_type, cache, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(content_type.starts_with("text/html"), "{content_type}");
        assert_eq!(cache, "no-cache");
        assert!(body.contains("eventfold"));
        for id in [
            "kpi-events-last-minute",
            "kpi-unique-users",
            "kpi-revenue-hour",
            "kpi-active-sessions",
            "top-items",
            "freshness-table",
            "status",
        ] {
            assert!(
                body.contains(&format!("data-testid=\"{id}\"")),
                "missing data-testid {id}"
            );
        }
        // The list items are created by the script.
        let (_, _, _, js) = get("/dashboard.js").await;
        assert!(js.contains("data-testid=\"top-item\""));
    }

    #[tokio::test]
    async fn serves_the_script_and_style() {
        for (path, kind) in [
            ("/dashboard.js", "text/javascript"),
            ("/dashboard.css", "text/css"),
        ] {
            let (status, content_type, cache, body) = get(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(content_type.starts_with(kind), "{path}: {content_type}");
            assert_eq!(cache, "no-cache", "{path}");
            assert!(!body.is_empty(), "{path}");
        }
    }

    #[tokio::test]
    async fn references_no_external_host() {
        for path in ["/", "/dashboard.js", "/dashboard.css"] {
            let (_, _, _, body) = get(path).await;
            let lower = body.to_ascii_lowercase();
            for needle in [
                "http://",
                "https://",
                "src=\"//",
                "href=\"//",
                "url(//",
                "@import",
            ] {
                assert!(!lower.contains(needle), "{path} references {needle}");
            }
        }
        let (_, _, _, html) = get("/").await;
        assert!(html.contains("src=\"dashboard.js\""));
        assert!(html.contains("href=\"dashboard.css\""));
    }

    #[tokio::test]
    async fn the_page_may_load_nothing_from_another_origin() {
        let response = routes::<()>()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let csp = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'self'"));
        assert!(csp.contains("connect-src 'self'"));
    }
}
