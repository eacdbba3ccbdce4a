//! The HTTP machinery shared by the three clients: building a
//! `reqwest::Client` (timeouts, TLS roots, no redirects), joining URLs onto
//! base URLs, reading bodies with a size cap, the retry loop with
//! exponential backoff and `Retry-After` (failing fast when the server asks
//! for more than the backoff cap; a read is also retried on a malformed 2xx
//! body, see `may_retry`), request/retry counters, and the mapping
//! of common HTTP statuses onto [`UpstreamError`]. Every text quoted from a
//! body is scrubbed of token-like strings first.
//!
//! [`RequestBudget`] is the rate limit shared by every request of the
//! clients that carry it (through [`HttpSettings::budget`]): each attempt of
//! a write (any method but GET, retries included) waits for a token of one
//! `governor` limiter right before it is sent, and each GET holds a permit of
//! one semaphore while it is in flight. Writes that fail after they were
//! sent ([`Replay::Write`]) come back as `UpstreamError::AmbiguousWrite`.
//!
//! The API modules only build requests and interpret replies; everything
//! about *sending* lives here.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use std::path::PathBuf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::series;
use url::Url;

use crate::base_url::BaseUrl;
use crate::error::{Api, UpstreamError};
use crate::scrub::scrub;

/// Upper bound on a parsed `Retry-After` (a day); larger values are clamped
/// so arithmetic on them never overflows.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// How many bytes of an unparseable body are quoted in errors.
const BODY_PREFIX_BYTES: usize = 200;

/// Transport settings of one upstream client.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Limit for a whole request, body included.
    pub timeout: Duration,
    /// Limit for establishing the connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry, with jitter.
    pub backoff_initial: Duration,
    /// Largest backoff delay (before jitter).
    pub backoff_max: Duration,
    /// Responses larger than this are refused with `BodyTooLarge`.
    pub max_body_bytes: usize,
    /// Extra PEM root certificate(s) for a private CA, added to the webpki
    /// roots. TLS verification is always on; there is no way to disable it.
    pub ca_file: Option<PathBuf>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Allow plain `http` base URLs to hosts that are not loopback (the
    /// binary's `http.allow_insecure`). Off by default: credentials must not
    /// cross a network in clear text by accident.
    pub allow_insecure: bool,
    /// The request budget this client draws on; `None` (the default) is
    /// unlimited. Give every client the same (cloned) budget to share it.
    pub budget: Option<RequestBudget>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 4,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            max_body_bytes: 64 * 1024 * 1024,
            ca_file: None,
            user_agent: concat!("rebalancer/", env!("CARGO_PKG_VERSION")).to_string(),
            allow_insecure: false,
            budget: None,
        }
    }
}

/// Budgets shared by every request of the clients that carry it (clone =
/// same budget).
///
/// Writes: a GCRA limiter (`governor`) emitting one token every
/// `1 s / writes_per_second` into a bucket of `burst` tokens, so in any
/// window of one second at most `writes_per_second + burst` writes start
/// (`burst` at once, then the steady rate). Every attempt of a non-GET
/// request, each retry included, takes a token right before it is sent.
/// Reads: a semaphore of `read_concurrency` permits; a GET holds one from
/// just before it is sent until its body is read (not while it waits to
/// retry).
#[derive(Clone)]
pub struct RequestBudget {
    writes: Arc<DefaultDirectRateLimiter>,
    reads: Arc<Semaphore>,
    sent: Arc<AtomicU64>,
    writes_per_second: NonZeroU32,
    burst: NonZeroU32,
    read_concurrency: usize,
}

impl RequestBudget {
    /// `writes_per_second` PUT/POST attempts per second with `burst` extra;
    /// at most `read_concurrency` GETs in flight (0 is taken as 1, so reads
    /// can never block forever).
    pub fn new(
        writes_per_second: NonZeroU32,
        burst: NonZeroU32,
        read_concurrency: usize,
    ) -> RequestBudget {
        // Quota::per_second(n) alone would allow a bucket of n tokens, i.e.
        // 2n writes in one second; the bucket is `burst` tokens instead.
        let quota = Quota::per_second(writes_per_second).allow_burst(burst);
        let read_concurrency = read_concurrency.clamp(1, Semaphore::MAX_PERMITS);
        RequestBudget {
            writes: Arc::new(RateLimiter::direct(quota)),
            reads: Arc::new(Semaphore::new(read_concurrency)),
            sent: Arc::new(AtomicU64::new(0)),
            writes_per_second,
            burst,
            read_concurrency,
        }
    }

    /// Writes sent so far through this budget (every attempt counted).
    pub fn writes(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The steady write rate, per second.
    pub fn writes_per_second(&self) -> NonZeroU32 {
        self.writes_per_second
    }

    /// The writes allowed at once on top of the steady rate.
    pub fn burst(&self) -> NonZeroU32 {
        self.burst
    }

    /// The most GETs in flight at once.
    pub fn read_concurrency(&self) -> usize {
        self.read_concurrency
    }

    /// Waits until a request of `method` may be sent: a write token (and
    /// counts the write), or a read permit, returned to be held while the
    /// request is in flight.
    async fn admit(&self, method: &Method) -> Option<OwnedSemaphorePermit> {
        if method == Method::GET {
            // The semaphore is never closed, so this always yields a permit.
            self.reads.clone().acquire_owned().await.ok()
        } else {
            self.writes.until_ready().await;
            self.sent.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl std::fmt::Debug for RequestBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBudget")
            .field("writes_per_second", &self.writes_per_second)
            .field("burst", &self.burst)
            .field("read_concurrency", &self.read_concurrency)
            .field("writes", &self.writes())
            .finish()
    }
}

/// Shared counters of requests sent (every attempt), GETs sent per API,
/// retries and the time spent waiting before retries. Cloning gives a handle
/// on the same counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    requests: Arc<AtomicU64>,
    /// GET attempts, indexed by [`api_index`].
    gets: Arc<[AtomicU64; 4]>,
    retries: Arc<AtomicU64>,
    /// Retries of a read whose 2xx body was malformed (also in `retries`).
    malformed_retries: Arc<AtomicU64>,
    retry_wait_ms: Arc<AtomicU64>,
}

/// The slot of `api` in [`Stats::gets`].
fn api_index(api: Api) -> usize {
    match api {
        Api::Cms => 0,
        Api::Webex => 1,
        Api::Zoho => 2,
        Api::ZohoAccounts => 3,
    }
}

impl Stats {
    /// Requests sent so far, every attempt counted (token requests included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// GET requests sent so far to `api`, every attempt counted (retries
    /// included), e.g. the CMS GETs of a fetch.
    pub fn gets(&self, api: Api) -> u64 {
        self.gets[api_index(api)].load(Ordering::Relaxed)
    }

    /// Retries so far (attempts after a failed first attempt).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Of [`Stats::retries`], those of a read (GET) whose 2xx body was
    /// malformed or truncated (a proxy's HTML page, cut-off JSON).
    pub fn malformed_retries(&self) -> u64 {
        self.malformed_retries.load(Ordering::Relaxed)
    }

    /// The sum of the delays chosen before retries (backoff or
    /// `Retry-After`), as decided, not as measured.
    pub fn retry_wait(&self) -> Duration {
        Duration::from_millis(self.retry_wait_ms.load(Ordering::Relaxed))
    }
}

/// Whether a request may be sent again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Reads: retry whatever `UpstreamError::is_retryable` allows.
    Safe,
    /// Writes and token grants: retry only when the server certainly did not
    /// process the request (HTTP 429, or the connection was never made). A
    /// timeout or 5xx after the request went out is returned as is: the
    /// caller must read the state back before trying again.
    OnlyIfNotProcessed,
    /// Writes of state (the CMS PUT): as `OnlyIfNotProcessed`, and a failure
    /// after the request went out (timeout, transport failure, 5xx, a body
    /// over the cap) is returned as `UpstreamError::AmbiguousWrite`.
    Write,
}

/// A complete HTTP reply, body read within the size cap.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// One failed attempt, and whether the server certainly did not act on it.
struct Failure {
    error: UpstreamError,
    not_processed: bool,
    /// The raw `Retry-After` header of the reply, if any.
    retry_after_header: Option<String>,
    /// Whether the request went out (not refused by the fence or unbuildable):
    /// only those are counted in `rebalancer_upstream_requests_total`.
    sent: bool,
}

impl Failure {
    fn new(error: UpstreamError, not_processed: bool) -> Self {
        Failure {
            error,
            not_processed,
            retry_after_header: None,
            sent: true,
        }
    }

    /// A failure before anything was sent.
    fn unsent(error: UpstreamError) -> Self {
        Failure {
            sent: false,
            ..Failure::new(error, true)
        }
    }
}

/// A `reqwest::Client` plus the settings and counters of one upstream client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    settings: HttpSettings,
    stats: Stats,
}

/// Asked right before a request is sent (after the budget's wait); an
/// `Err` keeps it from being sent. The applier's journal lease check.
pub type Fence<'a> = &'a (dyn Fn() -> Result<(), String> + Send + Sync);

impl Http {
    /// Builds the client: timeouts, no redirects (credentials must never be
    /// sent to a host we were not given), plain http allowed for the local
    /// sandbox, TLS verified against webpki roots plus `ca_file`.
    pub(crate) fn new(
        what: &str,
        settings: &HttpSettings,
        stats: Stats,
    ) -> Result<Self, UpstreamError> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .https_only(false)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(settings.user_agent.clone());
        if let Some(path) = &settings.ca_file {
            let ca_what = format!("{what} http.ca_file {}", path.display());
            let pem = std::fs::read(path).map_err(|e| {
                UpstreamError::config(
                    &ca_what,
                    format!("cannot read it: {e}; fix: point ca_file at a readable PEM file"),
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                UpstreamError::config(&ca_what, format!("not valid PEM certificates: {e}"))
            })?;
            if certs.is_empty() {
                return Err(UpstreamError::config(
                    &ca_what,
                    "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| UpstreamError::config(format!("{what} HTTP client"), error_chain(&e)))?;
        Ok(Http {
            client,
            settings: settings.clone(),
            stats,
        })
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request built by `build` until `interpret` accepts the
    /// reply, a non-retryable error occurs, or `max_retries` retries are
    /// spent (then the last error is returned). `build` is called once per
    /// attempt. A `Retry-After` longer than `backoff_max` ends the loop at
    /// once with `RetryAfterTooLong`.
    pub(crate) async fn execute<T>(
        &self,
        api: Api,
        endpoint: &str,
        replay: Replay,
        build: impl Fn() -> reqwest::RequestBuilder,
        interpret: impl Fn(&Reply) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        self.execute_fenced(api, endpoint, replay, build, interpret, None)
            .await
    }

    /// [`Http::execute`], with a `fence` asked right before each attempt is
    /// sent (after the request budget's wait): an `Err` from it ends the
    /// loop with `UpstreamError::Fenced`, nothing sent.
    pub(crate) async fn execute_fenced<T>(
        &self,
        api: Api,
        endpoint: &str,
        replay: Replay,
        build: impl Fn() -> reqwest::RequestBuilder,
        interpret: impl Fn(&Reply) -> Result<T, UpstreamError>,
        fence: Option<Fence<'_>>,
    ) -> Result<T, UpstreamError> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.backoff_initial)
            .with_max_delay(self.settings.backoff_max)
            .with_max_times(self.settings.max_retries as usize)
            .with_jitter()
            .build();
        let label = series::api_label(api, replay == Replay::Write);
        let mut retries = 0u32;
        // Why the last retried attempt failed, for the request's warning.
        let mut retried_because: Option<String> = None;
        loop {
            let failure = match self
                .attempt(api, label, endpoint, build(), &interpret, fence)
                .await
            {
                Ok(value) => {
                    series::count(label, "ok");
                    self.retried_request(api, endpoint, retries, Ok(retried_because.as_deref()));
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let last = |failure: Failure| {
                if failure.sent {
                    series::count(label, series::failure_label(&failure.error));
                }
                let error = give_up(api, endpoint, replay, failure);
                self.retried_request(api, endpoint, retries, Err(&error));
                error
            };
            if !may_retry(replay, &failure) {
                return Err(last(failure));
            }
            let asked = failure.error.retry_after();
            if let Some(wait) = asked.filter(|wait| *wait > self.settings.backoff_max) {
                let header = failure
                    .retry_after_header
                    .as_deref()
                    .map(scrub)
                    .unwrap_or_default();
                return Err(last(Failure {
                    error: UpstreamError::RetryAfterTooLong {
                        api,
                        endpoint: endpoint.to_string(),
                        header,
                        wait,
                        cap: self.settings.backoff_max,
                    },
                    ..failure
                }));
            }
            if retries >= self.settings.max_retries {
                return Err(last(failure));
            }
            series::count(label, "retried");
            retried_because = Some(failure.error.to_string());
            let mut delay = backoff.next().unwrap_or(self.settings.backoff_max);
            if let Some(asked) = asked {
                delay = delay.max(asked);
            }
            retries += 1;
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            if failure.error.is_malformed_body() {
                self.stats.malformed_retries.fetch_add(1, Ordering::Relaxed);
            }
            self.stats
                .retry_wait_ms
                .fetch_add(delay.as_millis() as u64, Ordering::Relaxed);
            // One line per attempt at debug; the request as a whole is
            // one warning when it ends (`retried_request`).
            tracing::debug!(
                %api,
                endpoint,
                attempt = format_args!("{}/{}", retries + 1, self.settings.max_retries + 1),
                delay_ms = delay.as_millis() as u64,
                error = %failure.error,
                "retrying upstream request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// One warning for a request that needed retries, when it ends: how
    /// many attempts, and how it ended (`Ok`: why the last retried attempt
    /// had failed; `Err`: the error returned). Nothing for a request that
    /// needed none.
    fn retried_request(
        &self,
        api: Api,
        endpoint: &str,
        retries: u32,
        ended: Result<Option<&str>, &UpstreamError>,
    ) {
        if retries == 0 {
            return;
        }
        let attempts = retries + 1;
        match ended {
            Ok(because) => tracing::warn!(
                %api,
                endpoint,
                attempts,
                last_error = because.unwrap_or_default(),
                "upstream request succeeded after {retries} retr{}",
                if retries == 1 { "y" } else { "ies" }
            ),
            Err(error) => tracing::warn!(
                %api,
                endpoint,
                attempts,
                %error,
                "upstream request failed after {attempts} attempts"
            ),
        }
    }

    async fn attempt<T>(
        &self,
        api: Api,
        label: &'static str,
        endpoint: &str,
        request: reqwest::RequestBuilder,
        interpret: &impl Fn(&Reply) -> Result<T, UpstreamError>,
        fence: Option<Fence<'_>>,
    ) -> Result<T, Failure> {
        let (client, request) = request.build_split();
        let request = request.map_err(|e| {
            // Nothing was sent: a request we cannot build is our bug, and
            // retrying it would not help.
            Failure::unsent(UpstreamError::config(
                format!("{api} {endpoint} request"),
                error_chain(&e),
            ))
        })?;
        let permit = self.admit(api, endpoint, request.method()).await;
        ask_fence(api, endpoint, fence)?;
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if request.method() == Method::GET {
            self.stats.gets[api_index(api)].fetch_add(1, Ordering::Relaxed);
        }
        let started = Instant::now();
        let response = match client.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                series::time(label, started.elapsed().as_secs_f64());
                tracing::debug!(
                    %api,
                    endpoint,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "upstream request failed before a response"
                );
                let not_processed = e.is_connect();
                return Err(Failure::new(
                    self.transport_error(api, endpoint, e),
                    not_processed,
                ));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_capped(api, endpoint, response).await;
        drop(permit);
        series::time(label, started.elapsed().as_secs_f64());
        tracing::debug!(
            %api,
            endpoint,
            status = status.as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "upstream request"
        );
        let body = body.map_err(|error| Failure::new(error, false))?;
        if status.is_redirection() {
            return Err(redirected(api, endpoint, status, &headers));
        }
        let reply = Reply {
            status,
            headers,
            body,
        };
        interpret(&reply).map_err(|error| Failure {
            sent: true,
            error,
            not_processed: status == StatusCode::TOO_MANY_REQUESTS,
            retry_after_header: reply
                .headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(BODY_PREFIX_BYTES).collect()),
        })
    }

    /// Waits for the request budget (a write token or a read permit), if
    /// this client draws on one; the permit is held while in flight.
    async fn admit(
        &self,
        api: Api,
        endpoint: &str,
        method: &Method,
    ) -> Option<OwnedSemaphorePermit> {
        let budget = self.settings.budget.as_ref()?;
        let waiting = Instant::now();
        let permit = budget.admit(method).await;
        tracing::trace!(
            %api,
            endpoint,
            waited_ms = waiting.elapsed().as_millis() as u64,
            "request budget admitted"
        );
        permit
    }

    /// Reads the body chunk by chunk, refusing it as soon as it exceeds
    /// `max_body_bytes` (and up front when `Content-Length` already says so).
    async fn read_capped(
        &self,
        api: Api,
        endpoint: &str,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, UpstreamError> {
        let limit = self.settings.max_body_bytes;
        let too_large = || UpstreamError::BodyTooLarge {
            api,
            endpoint: endpoint.to_string(),
            limit,
        };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large());
        }
        let initial = declared.map_or(0, |len| len as usize).min(1 << 20);
        let mut body = Vec::with_capacity(initial);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(api, endpoint, e))?
        {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Maps a reqwest failure to `Timeout` (naming the limit and its key) or
    /// `Transport`. The URL is said once: the endpoint carries method, path
    /// and query, `origin` the scheme, host and port; reqwest's own text is
    /// taken without its URL.
    fn transport_error(&self, api: Api, endpoint: &str, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            let (limit, key) = if e.is_connect() {
                (self.settings.connect_timeout, "http.connect_timeout_secs")
            } else {
                (self.settings.timeout, "http.timeout_secs")
            };
            return UpstreamError::Timeout {
                api,
                endpoint: endpoint.to_string(),
                limit,
                key,
            };
        }
        let origin = e
            .url()
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        UpstreamError::Transport {
            api,
            endpoint: endpoint.to_string(),
            origin,
            detail: error_chain(&e.without_url()),
        }
    }
}

/// Whether `failure` may be sent again (within `max_retries`). A read
/// ([`Replay::Safe`]) is idempotent: it is retried on whatever
/// `is_retryable` allows and on a 2xx whose body was malformed or truncated
/// (a proxy's HTML page, cut-off JSON), which the next attempt usually
/// reads whole. A write is retried only when the server certainly did not
/// process it; a malformed answer to a write is never retried here (for the
/// CMS PUT it becomes `AmbiguousWrite` in [`give_up`]).
fn may_retry(replay: Replay, failure: &Failure) -> bool {
    match replay {
        Replay::Safe => failure.error.is_retryable() || failure.error.is_malformed_body(),
        Replay::OnlyIfNotProcessed | Replay::Write => {
            failure.error.is_retryable() && failure.not_processed
        }
    }
}

/// The error to return when the retry loop stops on `failure`. For
/// Asks the caller's fence, if any, right before the request is sent; a
/// refusal is a failure with nothing sent.
fn ask_fence(api: Api, endpoint: &str, fence: Option<Fence<'_>>) -> Result<(), Failure> {
    match fence.map(|fence| fence()) {
        Some(Err(detail)) => Err(Failure::unsent(UpstreamError::Fenced {
            api,
            endpoint: endpoint.to_string(),
            detail,
        })),
        _ => Ok(()),
    }
}

/// A redirect is an error naming its `Location` (scrubbed).
fn redirected(api: Api, endpoint: &str, status: StatusCode, headers: &HeaderMap) -> Failure {
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "(no Location header)".to_string(), scrub);
    Failure::new(
        UpstreamError::Redirected {
            api,
            endpoint: endpoint.to_string(),
            status: status.as_u16(),
            location,
        },
        false,
    )
}

/// [`Replay::Write`], a failure after the request went out (the server may
/// have applied it) becomes `AmbiguousWrite`; a failure where the server
/// certainly did nothing (429, no connection) stays as it is, and so do
/// errors already decided by the interpreter (4xx, `AmbiguousWrite`).
fn give_up(api: Api, endpoint: &str, replay: Replay, failure: Failure) -> UpstreamError {
    if replay != Replay::Write || failure.not_processed {
        return failure.error;
    }
    let detail = match &failure.error {
        UpstreamError::Timeout { limit, key, .. } => format!(
            "no complete response within {} ({key})",
            crate::error::human(*limit)
        ),
        UpstreamError::Transport { origin, detail, .. } => {
            format!("transport failure after the request was sent to {origin}: {detail}")
        }
        UpstreamError::Server { status, .. } => format!("server error (HTTP {status})"),
        UpstreamError::BodyTooLarge { limit, .. } => {
            format!("the response was larger than the limit of {limit} bytes")
        }
        _ => return failure.error,
    };
    UpstreamError::AmbiguousWrite {
        api,
        endpoint: endpoint.to_string(),
        detail,
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks a client's base URL against the transport rule (plain http only
/// to loopback unless `allow_insecure`).
pub(crate) fn check_base_url(
    key: &str,
    url: &BaseUrl,
    settings: &HttpSettings,
) -> Result<(), UpstreamError> {
    url.require_secure(settings.allow_insecure)
        .map_err(|e| UpstreamError::config(key, e.to_string()))
}

/// `base` plus path `segments` (each percent-encoded), keeping any path
/// prefix of `base` and never producing a double slash. An empty last
/// segment gives a trailing slash.
pub(crate) fn join_url(base: &BaseUrl, segments: &[&str]) -> Result<Url, UpstreamError> {
    let mut url = base.url().clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| UpstreamError::config("base URL", format!("{base}: cannot be a base")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// "METHOD /path?query" for logs and error messages.
pub(crate) fn endpoint_label(method: &str, url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{method} {}?{q}", url.path()),
        None => format!("{method} {}", url.path()),
    }
}

/// The wait asked by `Retry-After`: delta-seconds or an HTTP-date.
pub(crate) fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    // Liberal: fractional seconds are not in RFC 9110 but cost nothing.
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(
                secs.min(MAX_RETRY_AFTER.as_secs_f64()),
            ));
        }
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// The first bytes of a body, lossy UTF-8 and scrubbed of token-like
/// strings, for error messages. Scrubbing looks a little past the cut so a
/// token straddling it is still recognised.
pub(crate) fn body_prefix(body: &[u8]) -> String {
    let look = body.len().min(BODY_PREFIX_BYTES * 2);
    let scrubbed = scrub(&String::from_utf8_lossy(&body[..look]));
    let mut text: String = scrubbed.chars().take(BODY_PREFIX_BYTES).collect();
    if body.len() > BODY_PREFIX_BYTES {
        text.push('…');
    }
    text
}

/// A `Malformed` error quoting the start of `body`.
pub(crate) fn malformed(api: Api, endpoint: &str, detail: String, body: &[u8]) -> UpstreamError {
    UpstreamError::Malformed {
        api,
        endpoint: endpoint.to_string(),
        detail,
        body_prefix: body_prefix(body),
    }
}

/// Maps a non-success status onto the error variants every API shares.
/// `code` and `message` come from the API-specific error body.
pub(crate) fn status_error(
    api: Api,
    endpoint: &str,
    reply: &Reply,
    code: Option<String>,
    message: String,
) -> UpstreamError {
    let endpoint = endpoint.to_string();
    let status = reply.status;
    let message = scrub(&message);
    match status.as_u16() {
        400 => UpstreamError::BadRequest {
            api,
            endpoint,
            code,
            message,
        },
        401 => UpstreamError::Unauthorized {
            api,
            endpoint,
            detail: with_code(code, message),
        },
        403 => UpstreamError::Forbidden {
            api,
            endpoint,
            detail: with_code(code, message),
        },
        404 => UpstreamError::NotFound {
            api,
            endpoint,
            code,
            message,
        },
        429 => UpstreamError::Throttled {
            api,
            endpoint,
            retry_after: parse_retry_after(&reply.headers, SystemTime::now()),
        },
        500..=599 => UpstreamError::Server {
            api,
            endpoint,
            status: status.as_u16(),
        },
        _ => UpstreamError::UnexpectedStatus {
            api,
            endpoint,
            status: status.as_u16(),
            detail: with_code(code, message),
        },
    }
}

fn with_code(code: Option<String>, message: String) -> String {
    match code {
        Some(code) if message.is_empty() => code,
        Some(code) => format!("{code}: {message}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn join_keeps_prefix_without_double_slashes() {
        for base in [
            "http://h:1",
            "http://h:1/",
            "http://h:1/pre",
            "http://h:1/pre/",
        ] {
            let base = BaseUrl::parse_with(base, true).unwrap();
            let url = join_url(&base, &["a", "b c", ""]).unwrap();
            assert!(!url.path().contains("//"), "{url}");
            assert!(url.path().ends_with("/a/b%20c/"), "{url}");
        }
        let base = BaseUrl::parse("https://h/pre/").unwrap();
        assert_eq!(join_url(&base, &["x"]).unwrap().as_str(), "https://h/pre/x");
        // A hostile id cannot climb out of its segment.
        let url = join_url(&base, &["t", "../../admin?x"]).unwrap();
        assert_eq!(url.path(), "/pre/t/..%2F..%2Fadmin%3Fx");
    }

    #[test]
    fn plain_http_to_a_remote_host_needs_allow_insecure() {
        let remote = BaseUrl::parse_with("http://cms.internal:8080", true).unwrap();
        let strict = HttpSettings::default();
        let err = check_base_url("cms.base_url", &remote, &strict).unwrap_err();
        assert!(matches!(err, UpstreamError::Config { .. }), "{err}");
        assert!(err.to_string().contains("http.allow_insecure"), "{err}");
        let lax = HttpSettings {
            allow_insecure: true,
            ..HttpSettings::default()
        };
        assert!(check_base_url("cms.base_url", &remote, &lax).is_ok());
        let local = BaseUrl::parse("http://127.0.0.1:1").unwrap();
        assert!(check_base_url("cms.base_url", &local, &strict).is_ok());
    }

    #[test]
    fn body_prefix_is_scrubbed() {
        let body = br#"{"error":"bad","access_token":"1000.abcdef0123456789abcdef"}"#;
        let prefix = body_prefix(body);
        assert!(!prefix.contains("abcdef0123"), "{prefix}");
        assert!(prefix.contains("****"), "{prefix}");
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let mut headers = HeaderMap::new();
        assert_eq!(parse_retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(Duration::from_secs(3))
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:47 GMT"),
        );
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(Duration::from_secs(10))
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers, now), None);
    }

    #[test]
    fn body_prefix_is_bounded_and_lossy() {
        let body = vec![0xffu8; 1000];
        let prefix = body_prefix(&body);
        assert!(prefix.chars().count() <= 201);
        assert_eq!(body_prefix(b"{\"a\""), "{\"a\"");
    }

    #[test]
    fn bad_ca_file_is_a_config_error() {
        let settings = HttpSettings {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..HttpSettings::default()
        };
        let err = Http::new("cms", &settings, Stats::default()).unwrap_err();
        assert!(matches!(err, UpstreamError::Config { .. }), "{err}");
        assert!(err.to_string().contains("ca_file"));
    }
}
