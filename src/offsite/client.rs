//! The bucket: an S3 client (`object_store`'s, over our own rustls `reqwest` client) whose
//! request bodies pass through an upload bandwidth cap, and the object names of this box.
//!
//! The cap paces the body itself, 64 KiB at a time, so a part of 8 MiB leaves at the
//! capped rate instead of in a burst followed by a pause; the signature covers the
//! payload's hash, not its timing, so pacing changes nothing the server checks.

use crate::config::offsite::Offsite;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

/// Size of each part of a multipart upload (S3's minimum is 5 MiB).
pub const PART_BYTES: usize = 8 << 20;

/// Bytes of a body released at a time under the cap.
const PACE_SLICE_BYTES: usize = 64 * 1024;
/// A request that has not answered in this long failed (a part of 8 MiB at 1 Mbit/s takes
/// about 70 s, so the cap stretches this: see `request_timeout`).
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// An upload bandwidth cap shared by every request of one bucket.
#[derive(Debug)]
pub struct Throttle {
    /// 0: no cap.
    bytes_per_s: f64,
    /// When the next byte may leave.
    next_free: Mutex<Instant>,
    /// Body bytes sent, for metrics and the bench.
    pub sent_bytes: AtomicU64,
}

impl Throttle {
    pub fn new(max_kbps: u32) -> Self {
        Self {
            bytes_per_s: max_kbps as f64 * 1000.0 / 8.0,
            next_free: Mutex::new(Instant::now()),
            sent_bytes: AtomicU64::new(0),
        }
    }

    /// Books `n` bytes; returns how long to wait before sending them. No credit builds
    /// up while idle, so the cap holds from the first byte.
    fn reserve(&self, n: usize) -> Duration {
        self.sent_bytes.fetch_add(n as u64, Ordering::Relaxed);
        if self.bytes_per_s <= 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut next = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let start = (*next).max(now);
        *next = start + Duration::from_secs_f64(n as f64 / self.bytes_per_s);
        start - now
    }
}

/// A request body released at the throttle's pace, its length still known up front.
struct PacedBody {
    inner: HttpRequestBody,
    throttle: Arc<Throttle>,
    /// Taken from `inner`, not yet released.
    pending: Bytes,
    /// Booked, released when `wait` ends.
    ready: Option<Bytes>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = self.get_mut();
        loop {
            if let Some(wait) = this.wait.as_mut() {
                ready!(wait.as_mut().poll(cx));
                this.wait = None;
            }
            if let Some(slice) = this.ready.take() {
                return Poll::Ready(Some(Ok(Frame::data(slice))));
            }
            if this.pending.is_empty() {
                match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                    None => return Poll::Ready(None),
                    Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => this.pending = data,
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    },
                }
            }
            let n = this.pending.len().min(PACE_SLICE_BYTES);
            let slice = this.pending.split_to(n);
            let delay = this.throttle.reserve(n);
            this.ready = Some(slice);
            if !delay.is_zero() {
                this.wait = Some(Box::pin(tokio::time::sleep(delay)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_none() && self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let held = self.pending.len() + self.ready.as_ref().map_or(0, |b| b.len());
        let rest = self.inner.size_hint().exact().unwrap_or(0);
        SizeHint::with_exact(rest + held as u64)
    }
}

/// object_store's HTTP service: our reqwest client, bodies paced by the throttle.
#[derive(Debug, Clone)]
struct PacedService {
    client: reqwest::Client,
    throttle: Arc<Throttle>,
}

#[async_trait::async_trait]
impl HttpService for PacedService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Request, e))?;
        let mut out = reqwest::Request::new(parts.method, url);
        *out.headers_mut() = parts.headers;
        let len = body.content_length();
        if len > 0 {
            out.headers_mut()
                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
            *out.body_mut() = Some(reqwest::Body::wrap(PacedBody {
                inner: body,
                throttle: self.throttle.clone(),
                pending: Bytes::new(),
                ready: None,
                wait: None,
            }));
        }
        let answer = self.client.execute(out).await.map_err(http_error)?;
        let answer: http::Response<reqwest::Body> = answer.into();
        let (parts, body) = answer.into_parts();
        let body = HttpResponseBody::new(body.map_err(http_error));
        Ok(HttpResponse::from_parts(parts, body))
    }
}

fn http_error(e: reqwest::Error) -> HttpError {
    let kind = if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_body() || e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Request
    };
    HttpError::new(kind, e)
}

#[derive(Debug)]
struct PacedConnector(PacedService);

impl HttpConnector for PacedConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}

/// How long one request may take: long enough for a whole part at the capped rate.
fn request_timeout(max_kbps: u32) -> Duration {
    if max_kbps == 0 {
        return MIN_REQUEST_TIMEOUT;
    }
    let part_s = PART_BYTES as f64 * 8.0 / (max_kbps as f64 * 1000.0);
    MIN_REQUEST_TIMEOUT.max(Duration::from_secs_f64(part_s * 2.0))
}

/// One box's view of the bucket.
#[derive(Clone)]
pub struct Bucket {
    pub s3: Arc<AmazonS3>,
    /// This box's folder in the bucket.
    pub prefix: String,
    pub throttle: Arc<Throttle>,
    /// For messages: "bucket at endpoint".
    pub name: String,
    /// The bucket's name alone, for `s3://` object names in messages.
    pub bucket: String,
}

impl Bucket {
    /// Connects to `cfg`'s bucket under `prefix` (the credentials are read now).
    pub fn open(cfg: &Offsite, prefix: &str) -> Result<Self, String> {
        let key_id = cfg
            .access_key_id
            .reveal()
            .map_err(|e| format!("storage.offsite.access_key_id: {e}"))?;
        let secret = cfg
            .secret_access_key
            .reveal()
            .map_err(|e| format!("storage.offsite.secret_access_key: {e}"))?;
        let throttle = Arc::new(Throttle::new(cfg.max_kbps));
        let client = crate::tls::client_builder(cfg.ca_file.as_deref())?
            .timeout(request_timeout(cfg.max_kbps))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let connector = PacedConnector(PacedService {
            client,
            throttle: throttle.clone(),
        });
        // Few quick retries here: the upload queue has its own backoff, so an outage
        // shows as a failed clip in seconds, not after object_store's 3 minutes.
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 2,
            retry_timeout: Duration::from_secs(20),
        };
        let s3 = AmazonS3Builder::new()
            .with_endpoint(cfg.endpoint.trim_end_matches('/'))
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_access_key_id(key_id)
            .with_secret_access_key(secret)
            .with_virtual_hosted_style_request(!cfg.path_style)
            .with_allow_http(cfg.endpoint.starts_with("http://"))
            .with_retry(retry)
            .with_http_connector(connector)
            .build()
            .map_err(|e| format!("storage.offsite: {e}"))?;
        Ok(Self {
            s3: Arc::new(s3),
            prefix: prefix.to_string(),
            throttle,
            name: format!("bucket {} at {}", cfg.bucket, cfg.endpoint),
            bucket: cfg.bucket.clone(),
        })
    }

    /// The sealed clip `clip_id`: `PREFIX/clips/ID.sntx`. Keys hold neither camera ids
    /// nor times (docs/offsite.md).
    pub fn clip_key(&self, clip_id: i64) -> ObjectPath {
        ObjectPath::from(format!("{}/clips/{clip_id}.sntx", self.prefix))
    }

    /// The sealed index record of clip `clip_id`: `PREFIX/index/ID.sntx`.
    pub fn record_key(&self, clip_id: i64) -> ObjectPath {
        ObjectPath::from(format!("{}/index/{clip_id}.sntx", self.prefix))
    }

    /// `s3://BUCKET/KEY`: how messages name an object.
    pub fn object_name(&self, key: &ObjectPath) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// The sealed snapshot of event `event_id`: `PREFIX/snapshots/ID.sntx`.
    pub fn snapshot_key(&self, event_id: i64) -> ObjectPath {
        ObjectPath::from(format!("{}/snapshots/{event_id}.sntx", self.prefix))
    }

    pub fn snapshots_folder(&self) -> ObjectPath {
        ObjectPath::from(format!("{}/snapshots", self.prefix))
    }

    pub fn index_folder(&self) -> ObjectPath {
        ObjectPath::from(format!("{}/index", self.prefix))
    }

    pub fn clips_folder(&self) -> ObjectPath {
        ObjectPath::from(format!("{}/clips", self.prefix))
    }
}

/// The clip id in an object key `…/ID.sntx`.
pub fn id_of_key(key: &ObjectPath) -> Option<i64> {
    key.filename()?.strip_suffix(".sntx")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_spaces_bookings_by_their_size() {
        let t = Throttle::new(8_000); // 1,000,000 bytes/s
        assert_eq!(t.reserve(0), Duration::ZERO);
        let first = t.reserve(500_000);
        let second = t.reserve(500_000);
        let third = t.reserve(1);
        assert!(first < Duration::from_millis(5), "{first:?}");
        assert!(second > Duration::from_millis(490) && second < Duration::from_millis(510));
        assert!(third > Duration::from_millis(990) && third < Duration::from_millis(1010));
        assert_eq!(t.sent_bytes.load(Ordering::Relaxed), 1_000_001);
    }

    #[test]
    fn no_cap_never_waits() {
        let t = Throttle::new(0);
        assert_eq!(t.reserve(100 << 20), Duration::ZERO);
    }
}
