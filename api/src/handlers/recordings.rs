//! Downloading a call's recording, whole or one byte range.

use super::support::store;
use crate::auth::Allowed;
use crate::errors::ApiError;
use crate::state::ApiState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// What a `Range` header asks of a file (RFC 9110 §14).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// All of it (no range we serve partially: several ranges, another unit).
    Whole,
    /// Bytes `.0` to `.1`, inclusive.
    Part(u64, u64),
    /// Nothing of it can be served (416).
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` against a `len`-byte file.
pub fn parse_range(h: &str, len: u64) -> ByteRange {
    match range_of(h, len) {
        Ok(Some((a, b))) => ByteRange::Part(a, b),
        Ok(None) => ByteRange::Whole,
        Err(()) => ByteRange::Unsatisfiable,
    }
}

fn range_of(h: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.trim().strip_prefix("bytes=") else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let num = |t: &str| t.trim().parse::<u64>().map_err(|_| ());
    let (start, end) = match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => return Err(()),
        (true, false) => {
            let n = num(b)?;
            if n == 0 || len == 0 {
                return Err(());
            }
            (len.saturating_sub(n), len - 1)
        }
        (false, true) => (num(a)?, len.saturating_sub(1)),
        (false, false) => (num(a)?, num(b)?.min(len.saturating_sub(1))),
    };
    if start >= len || start > end {
        return Err(());
    }
    Ok(Some((start, end)))
}

pub async fn recording_download(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Allowed(who): Allowed,
) -> Result<Response, ApiError> {
    use crate::model::RecordingState;
    use axum::http::header;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let rec = store(&st)?.recording(&who.scope(), &id)?;
    let path = match rec {
        Some((RecordingState::Ready, p)) => p,
        Some((RecordingState::Recording, _)) => {
            return Err(ApiError {
                status: StatusCode::CONFLICT,
                code: "recording_not_ready",
                message: "the call is still being recorded".into(),
            })
        }
        _ => return Err(ApiError { status: StatusCode::NOT_FOUND, code: "not_found", message: "no recording".into() }),
    };
    let gone = |e: std::io::Error| ApiError {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!("the recording file is gone ({e})"),
    };
    let mut file = tokio::fs::File::open(&path).await.map_err(gone)?;
    let len = file.metadata().await.map_err(gone)?.len();
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(h) => match parse_range(h, len) {
            ByteRange::Part(a, b) => Some((a, b)),
            ByteRange::Whole => None,
            ByteRange::Unsatisfiable => {
                let mut r = ApiError {
                    status: StatusCode::RANGE_NOT_SATISFIABLE,
                    code: "range_not_satisfiable",
                    message: format!("the recording has {len} bytes"),
                }
                .into_response();
                if let Ok(v) = format!("bytes */{len}").parse() {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(r);
            }
        },
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(gone)?;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file.take(count)));
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, axum::http::HeaderValue::from_static("audio/wav"));
    h.insert(header::ACCEPT_RANGES, axum::http::HeaderValue::from_static("bytes"));
    if let Ok(v) = count.to_string().parse() {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if let Ok(v) = format!("attachment; filename=\"{id}.wav\"").parse() {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if range.is_some() {
        if let Ok(v) = format!("bytes {start}-{end}/{len}").parse() {
            h.insert(header::CONTENT_RANGE, v);
        }
        *r.status_mut() = StatusCode::PARTIAL_CONTENT;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges() {
        use ByteRange::*;
        assert_eq!(parse_range("bytes=0-43", 100), Part(0, 43));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Part(50, 99));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
        for bad in ["bytes=100-", "bytes=5-4", "bytes=-0", "bytes=x-1", "bytes=-", "bytes=7"] {
            assert_eq!(parse_range(bad, 100), Unsatisfiable, "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
    }
}
