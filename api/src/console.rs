//! The web console (issue 17): static pages shipped inside the binary and served at `/`.
//! They use only the public JSON API (with the JWT from the login, kept in the page's
//! session storage, never in a URL), so this module serves files and nothing else.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles and fetches from
//! this origin only, no inline script, no framing), `nosniff` and `no-referrer`.
//! `DIALTONE_CONSOLE_DIR` (a development setting) serves the files from that folder
//! instead, read at each request, so the pages can be edited without a rebuild.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The Content-Security-Policy of every console answer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
media-src 'self' blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The console's files: (name, content type, content).
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../console/app.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("../console/style.css")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../console/api.js")),
    ("live.js", "text/javascript; charset=utf-8", include_str!("../console/live.js")),
    ("calllog.js", "text/javascript; charset=utf-8", include_str!("../console/calllog.js")),
    ("detail.js", "text/javascript; charset=utf-8", include_str!("../console/detail.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("../console/charts.js")),
    ("wave.js", "text/javascript; charset=utf-8", include_str!("../console/wave.js")),
];

/// `/` (the page) and `/console/{file}` (its script and style).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { serve("index.html").await }))
        .route("/console/{file}", get(|Path(file): Path<String>| async move { serve(&file).await }))
}

async fn serve(name: &str) -> Response {
    let Some((kind, body)) = file(name).await else {
        return crate::errors::ApiError {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "no such console file".into(),
        }
        .into_response();
    };
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The file's content type and text: the embedded one, or with `DIALTONE_CONSOLE_DIR` any
/// `.html`/`.js`/`.css` file of that folder (a plain name: no path separators, no dots
/// but the extension's).
async fn file(name: &str) -> Option<(&'static str, String)> {
    if let Some(dir) = std::env::var_os("DIALTONE_CONSOLE_DIR") {
        let (stem, ext) = name.rsplit_once('.')?;
        let kind = FILES.iter().find(|(n, ..)| n.ends_with(&format!(".{ext}"))).map(|(_, k, _)| *k)?;
        if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return None;
        }
        if let Ok(text) = tokio::fs::read_to_string(std::path::Path::new(&dir).join(name)).await {
            return Some((kind, text));
        }
    }
    FILES.iter().find(|(n, ..)| *n == name).map(|(_, kind, text)| (*kind, text.to_string()))
}
