//! Serving sealed files: clips and thumbnails by id, event snapshots, and the seed's
//! `/recordings/{path}` route. Every file is decrypted on the fly from the store's
//! random-access reader, so `Range` requests (the browser seeking in a clip) read only the
//! chunks they need. One range per request (RFC 9110 lets a server ignore multi-range and
//! malformed `Range` headers and send the whole file); an unsatisfiable one gets 416 with
//! `Content-Range: bytes */N`.
//!
//! `/recordings/{path}`: the path arrives percent-decoded once (axum). It is refused (403)
//! if it holds a NUL, a backslash, a `..` component or is absolute; it must end in an
//! allowed extension; the sealed file (`<path>.sntx`) is canonicalised and must still be
//! under recordings_dir (a symlink pointing out is refused, 403). Missing files are 404.

use super::error::AppError;
use crate::store::OpenReader;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Bytes read per step of a response body.
const READ_STEP: u64 = 256 * 1024;
/// Extensions `/recordings/` serves.
pub const ALLOWED_EXTENSIONS: [&str; 5] = ["mp4", "jpg", "jpeg", "png", "webm"];

/// What a `Range` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole file (200).
    Whole,
    /// First and last byte, inclusive (206).
    Part(u64, u64),
    /// Nothing of the file is in the range (416).
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, total: u64) -> RangeRequest {
    match parse_range_inner(header, total) {
        Ok(None) => RangeRequest::Whole,
        Ok(Some((a, b))) => RangeRequest::Part(a, b),
        Err(()) => RangeRequest::Unsatisfiable,
    }
}

fn parse_range_inner(header: Option<&str>, total: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None); // absent or not bytes: ignored
    };
    if spec.contains(',') {
        return Ok(None); // several ranges: send the whole file
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(first), Ok(last)) if a.bytes().all(|c| c.is_ascii_digit()) => {
            if first > last {
                return Ok(None); // malformed
            }
            (first, last.min(total.saturating_sub(1)))
        }
        (Ok(first), Err(_)) if b.is_empty() => (first, total.saturating_sub(1)),
        (Err(_), Ok(n)) if a.is_empty() => {
            if n == 0 {
                return Err(());
            }
            (total.saturating_sub(n), total.saturating_sub(1))
        }
        _ => return Ok(None),
    };
    if range.0 >= total {
        return Err(());
    }
    Ok(Some(range))
}

/// Called with the reason when a file turns out damaged while its body is being sent.
pub type OnDamage = Box<dyn Fn(String) + Send + Sync>;

/// Something `serve` can answer from: a length and any byte range of it (read blocking).
pub trait RandomAccess: Send + Sync + 'static {
    fn total_len(&self) -> u64;
    fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>, String>;
}

impl RandomAccess for OpenReader {
    fn total_len(&self) -> u64 {
        self.plain_len()
    }

    fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>, String> {
        self.read_at(offset, len).map_err(|e| e.to_string())
    }
}

/// The decrypted bytes of `reader`, honouring `Range`. The first piece is read before the
/// status is sent, so a file whose start is damaged gets 410 with the reason, not a 200
/// that breaks; damage found later ends the body and is reported to `on_damage`.
pub async fn serve<R: RandomAccess>(
    reader: R,
    content_type: &'static str,
    request: &HeaderMap,
    download_name: Option<String>,
    on_damage: Option<OnDamage>,
) -> Result<Response, AppError> {
    let total = reader.total_len();
    let range = parse_range(
        request.get(header::RANGE).and_then(|v| v.to_str().ok()),
        total,
    );
    let (start, end_excl, status) = match range {
        RangeRequest::Part(a, b) => (a, b + 1, StatusCode::PARTIAL_CONTENT),
        RangeRequest::Whole => (0, total, StatusCode::OK),
        RangeRequest::Unsatisfiable => return Err(AppError::range_not_satisfiable(total)),
    };
    let reader = Arc::new(reader);
    let first_len = READ_STEP.min(end_excl - start);
    let first = read_piece(reader.clone(), start, first_len)
        .await
        .map_err(|e| AppError::gone(format!("the file cannot be served: {e}")))?;
    let rest = body_after(reader, start + first_len, end_excl, on_damage);
    let body = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    let mut resp = Response::new(Body::from_stream(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end_excl - start));
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{total}", end_excl - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    if let Some(name) = download_name
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn read_piece<R: RandomAccess>(
    reader: Arc<R>,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, String> {
    match tokio::task::spawn_blocking(move || reader.read_range(offset, len)).await {
        Ok(result) => result,
        Err(e) => Err(e.to_string()),
    }
}

/// The body from `from` to `end_excl`, a piece at a time.
fn body_after<R: RandomAccess>(
    reader: Arc<R>,
    from: u64,
    end_excl: u64,
    on_damage: Option<OnDamage>,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> {
    let on_damage = Arc::new(on_damage);
    futures_util::stream::unfold(from, move |offset| {
        let (reader, on_damage) = (reader.clone(), on_damage.clone());
        async move {
            if offset >= end_excl {
                return None;
            }
            let len = READ_STEP.min(end_excl - offset);
            match read_piece(reader, offset, len).await {
                Ok(bytes) => Some((Ok(bytes), offset + len)),
                Err(e) => {
                    if let Some(report) = on_damage.as_ref() {
                        report(e.clone());
                    }
                    Some((Err(std::io::Error::other(e)), end_excl))
                }
            }
        }
    })
}

pub fn content_type(ext: &str) -> &'static str {
    match ext {
        "mp4" => "video/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Resolves a `/recordings/` request path to its sealed file under `root` (canonical).
/// Errors: 403 for anything that tries to leave `root` or is not an allowed type, 404 for
/// a file that is not there.
pub fn resolve_recording(
    root: &Path,
    requested: &str,
) -> Result<(PathBuf, &'static str), AppError> {
    let refuse = || AppError::forbidden("that path is not allowed");
    if requested.is_empty()
        || requested.contains('\0')
        || requested.contains('\\')
        || requested.starts_with('/')
    {
        return Err(refuse());
    }
    let rel = Path::new(requested);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(refuse());
    }
    let ext = rel
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .filter(|e| ALLOWED_EXTENSIONS.contains(&e.as_str()))
        .ok_or_else(refuse)?;
    let sealed = root.join(format!("{requested}.sntx"));
    let canonical = match sealed.canonicalize() {
        Ok(p) => p,
        Err(_) => return Err(AppError::not_found("no such recording")),
    };
    if !canonical.starts_with(root) || !canonical.is_file() {
        return Err(refuse());
    }
    Ok((canonical, content_type(&ext)))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        use super::RangeRequest::{Part, Unsatisfiable, Whole};
        let r = |h: &str| parse_range(Some(h), 1000);
        assert_eq!(parse_range(None, 1000), Whole);
        assert_eq!(r("bytes=0-"), Part(0, 999));
        assert_eq!(r("bytes=100-199"), Part(100, 199));
        assert_eq!(r("bytes=-500"), Part(500, 999));
        assert_eq!(r("bytes=-5000"), Part(0, 999));
        assert_eq!(r("bytes=900-5000"), Part(900, 999));
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(r("bytes=abc"), Whole);
        assert_eq!(r("bytes=5-1"), Whole);
        assert_eq!(r("items=0-1"), Whole);
        assert_eq!(r("bytes=0-1,5-6"), Whole);
    }
}
