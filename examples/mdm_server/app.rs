//! The server itself, as a library the binary and the tests share: settings, the axum
//! [`router`] over any [`TokenStore`], and [`serve`].
//!
//! # HTTP interface
//!
//! Device API (no credential but the token; rate limited per client address):
//!
//! | request | success | failures |
//! |---|---|---|
//! | `POST /api/enroll` `{"token", "device_id"}` | 200 enrollment | 401 invalid token (one body for malformed, forged and unknown), 403 revoked / expired / exhausted / not yet valid, 400 bad body, 413 body too large, 429 too many attempts, 503 store unavailable |
//!
//! Admin API (`Authorization: Bearer <admin key>`; anything else is 401):
//!
//! | request | success |
//! |---|---|
//! | `GET /api/info` | organization, configured payload formats, limits |
//! | `POST /api/tokens` | 201 `{id, token, typed, record, links}` |
//! | `GET /api/tokens?group=&policy=&status=&batch=&cursor=&limit=` | `{tokens, next_cursor}` (never token strings) |
//! | `GET /api/tokens/{id}` | `{token, redemptions}` |
//! | `POST /api/tokens/{id}/revoke` `{"reason"}` | `{newly_revoked, token}` |
//! | `GET /api/tokens/{id}/qr.svg`, `qr.png` `?format=&ec=&scale=` | the QR image |
//! | `POST /api/batches` (template or `spec_csv`) | 201 `{batch, count, manifest, manifest_csv, sheet}` |
//! | `GET /api/batches/{id}/sheet.html?title=&paper=&format=&ec=` | the printable sheet |
//!
//! Status codes: 400 for a request that cannot be read (not JSON, wrong shape, unknown
//! field, bad query parameter), 422 for a readable request the rules refuse (a bad group
//! name, an expiry in the past, a payload format this server is not configured for), 404
//! for an id that is not in this organization, 409 for a token whose signing key has left
//! the keyring, 503 when the store fails. Every error body is JSON
//! `{"error": "<code>", "message": "<what to do>"}`.
//!
//! The console page (`/`, `/console.js`, `/console.css`) is static; it calls the admin API.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use onboarding_token::bulk::{
    BulkSpec, Manifest, Paper, SheetError, SheetOptions, parse_duration, parse_time, render_sheet,
};
use onboarding_token::payload::{PayloadError, grouped};
use onboarding_token::qr::{EcLevel, Qr, QrError};
use onboarding_token::{
    AdminError, BatchId, DeviceId, DeviceRejection, Enrollment, ExpirySpec, GroupId, Issued,
    Keyring, Metadata, OrgId, PageCursor, PayloadConfig, PayloadFormat, PolicyId, RedeemError,
    Rejection, RevokeTarget, SigningKey, Status, StoreError, Token, TokenId, TokenQuery, TokenSpec,
    TokenStore, UsageLimit, extract_token,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tower_governor::GovernorError;
use tower_governor::GovernorLayer;
use tower_governor::governor::GovernorConfigBuilder;
use tower_http::set_header::SetResponseHeaderLayer;
use zeroize::Zeroizing;

/// The largest `POST /api/enroll` body: a scanned Android payload is a few KiB at most.
pub const ENROLL_BODY_LIMIT: usize = 16 * 1024;
/// The largest admin request body (a CSV bulk specification).
pub const ADMIN_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The environment variable holding the admin key.
pub const ADMIN_KEY_ENV: &str = "ONBOARDING_TOKEN_ADMIN_KEY";

const CONSOLE_HTML: &str = include_str!("console.html");
const CONSOLE_JS: &str = include_str!("console.js");
const CONSOLE_CSS: &str = include_str!("console.css");

/// The console may load its own script and stylesheet, fetch the API and show QR images
/// from blob URLs. Inline styles are allowed only so that the printable sheet (its own
/// `<style>`), opened from a blob URL that inherits this policy, renders; no inline script.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";
/// The API: nothing may load or run.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// The printable sheet: its own inline `<style>`, nothing else.
const SHEET_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

// ---------------------------------------------------------------------------------------
// Settings

/// The admin credential: kept only as its SHA-256 digest, compared in constant time.
#[derive(Clone)]
pub struct AdminKey {
    digest: [u8; 32],
}

/// Why an admin key was refused at startup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminKeyError {
    /// The environment variable is not set.
    #[error(
        "{ADMIN_KEY_ENV} is not set: the admin API and console need a key. Set it to a random \
         secret of at least {min} characters, for example `export {ADMIN_KEY_ENV}=$(openssl rand -base64 32)`",
        min = AdminKey::MIN_LEN
    )]
    Missing,
    /// The key is too short to resist guessing.
    #[error(
        "{ADMIN_KEY_ENV} is too short ({len} characters): use a random secret of at least {min} characters",
        min = AdminKey::MIN_LEN
    )]
    TooShort {
        /// Its length in characters.
        len: usize,
    },
    /// The key is longer than [`AdminKey::MAX_LEN`].
    #[error("{ADMIN_KEY_ENV} is longer than {max} bytes", max = AdminKey::MAX_LEN)]
    TooLong,
    /// The key holds characters an HTTP header cannot carry.
    #[error(
        "{ADMIN_KEY_ENV} must be printable ASCII without spaces (it travels in an HTTP Authorization header)"
    )]
    BadCharacter,
}

impl AdminKey {
    /// The shortest key accepted, in characters.
    pub const MIN_LEN: usize = 16;
    /// The longest key accepted, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Checks and keeps a key: printable ASCII without spaces, 16 to 1024 characters.
    pub fn new(key: &str) -> Result<Self, AdminKeyError> {
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminKeyError::BadCharacter);
        }
        if key.len() < Self::MIN_LEN {
            return Err(AdminKeyError::TooShort { len: key.len() });
        }
        if key.len() > Self::MAX_LEN {
            return Err(AdminKeyError::TooLong);
        }
        Ok(Self {
            digest: Sha256::digest(key.as_bytes()).into(),
        })
    }

    /// Whether `presented` is the key. Hashing first makes the comparison take the same
    /// time whatever the length or content of the guess.
    pub fn verify(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminKey([redacted])")
    }
}

/// The per-client rate limit on `POST /api/enroll`: a burst of `burst` requests, then one
/// more every `replenish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    burst: u32,
    replenish: Duration,
}

/// A rate limit with a zero burst or period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the enrollment rate limit needs a burst of at least 1 and a replenish interval of at least 1 ms"
)]
pub struct RateLimitError;

impl RateLimit {
    /// A burst of `burst` requests per client, one more every `replenish`.
    pub fn new(burst: u32, replenish: Duration) -> Result<Self, RateLimitError> {
        if burst == 0 || replenish < Duration::from_millis(1) {
            return Err(RateLimitError);
        }
        Ok(Self { burst, replenish })
    }
}

/// Everything the router needs besides the service.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The organization this server issues and lists tokens in.
    pub organization: OrgId,
    /// The admin credential.
    pub admin_key: AdminKey,
    /// Link and Android settings for QR payloads and sheets.
    pub payloads: PayloadConfig,
    /// The enrollment rate limit.
    pub enroll_limit: RateLimit,
    /// The most tokens one batch (and one sheet) may hold over HTTP.
    pub max_batch: usize,
}

/// The shared state: the service and the settings.
pub struct App<S> {
    service: onboarding_token::Onboarding<S>,
    settings: Settings,
    formats: Vec<PayloadFormat>,
}

impl<S> fmt::Debug for App<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S: TokenStore + 'static> App<S> {
    /// The state for `service` under `settings`.
    pub fn new(service: onboarding_token::Onboarding<S>, settings: Settings) -> Arc<Self> {
        // Which payload formats render with these settings, found by rendering a
        // throwaway token.
        let mut rng = onboarding_token::SystemRng::default();
        let probe = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
        let formats = PayloadFormat::ALL
            .into_iter()
            .filter(|f| settings.payloads.render(*f, &probe).is_ok())
            .collect();
        Arc::new(Self {
            service,
            settings,
            formats,
        })
    }

    /// The onboarding service.
    pub fn service(&self) -> &onboarding_token::Onboarding<S> {
        &self.service
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

// ---------------------------------------------------------------------------------------
// Router

/// The whole application: device API, admin API, console, security headers.
///
/// Serve it with [`serve`] (or `into_make_service_with_connect_info::<SocketAddr>()`): the
/// rate limiter keys on the peer address and answers 500 without it.
pub fn router<S: TokenStore + 'static>(app: Arc<App<S>>) -> Router {
    let limit = app.settings.enroll_limit;
    let governor = GovernorConfigBuilder::default()
        .period(limit.replenish)
        .burst_size(limit.burst)
        .finish()
        .expect("RateLimit::new guarantees a non-zero burst and period");
    // Forget idle clients now and then, for as long as the router lives.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let limiter: Weak<_> = Arc::downgrade(governor.limiter());
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    break;
                };
                limiter.retain_recent();
            }
        });
    }

    let device = Router::new()
        .route("/api/enroll", post(enroll::<S>))
        .layer(DefaultBodyLimit::max(ENROLL_BODY_LIMIT))
        .layer(GovernorLayer::new(governor).error_handler(rate_limited));

    let admin = Router::new()
        .route("/api/info", get(info::<S>))
        .route("/api/tokens", post(issue::<S>).get(list::<S>))
        .route("/api/tokens/{id}", get(show::<S>))
        .route("/api/tokens/{id}/revoke", post(revoke::<S>))
        .route("/api/tokens/{id}/qr.svg", get(qr_svg::<S>))
        .route("/api/tokens/{id}/qr.png", get(qr_png::<S>))
        .route("/api/batches", post(create_batch::<S>))
        .route("/api/batches/{id}/sheet.html", get(sheet::<S>))
        .layer(DefaultBodyLimit::max(ADMIN_BODY_LIMIT))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            require_admin::<S>,
        ));

    let console = Router::new()
        .route("/", get(console_html))
        .route("/console.js", get(console_js))
        .route("/console.css", get(console_css));

    Router::new()
        .merge(device)
        .merge(admin)
        .merge(console)
        .fallback(not_found)
        .with_state(app)
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, API_CSP))
        .layer(header_layer(header::CACHE_CONTROL, "no-store"))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ))
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// Serves `router` on `listener` with the peer address available to the rate limiter,
/// until `shutdown` completes (then finishes the requests in flight).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// One line on stderr: admin actions and failures. Never a token string or key.
fn log(args: fmt::Arguments<'_>) {
    eprintln!(
        "{} mdm_server: {args}",
        chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
    );
}

// ---------------------------------------------------------------------------------------
// Errors

/// An error answered as JSON `{"error": code, "message": message}`.
#[derive(Debug)]
enum ApiError {
    BadRequest(String),
    Unprocessable(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(usize),
    Unavailable,
}

impl ApiError {
    fn field(name: &str, problem: impl fmt::Display) -> Self {
        ApiError::Unprocessable(format!("{name}: {problem}"))
    }

    fn store(what: &str, err: &StoreError) -> Self {
        log(format_args!("{what}: {}", error_chain(err)));
        ApiError::Unavailable
    }

    fn admin(what: &str, err: AdminError) -> Self {
        match err {
            AdminError::Spec(e) => ApiError::Unprocessable(e.to_string()),
            AdminError::Store(e) => Self::store(what, &e),
            e => {
                log(format_args!("{what}: {e}"));
                ApiError::Unavailable
            }
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": code, "message": message.into() })),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(m) => json_error(StatusCode::BAD_REQUEST, "bad request", m),
            ApiError::Unprocessable(m) => {
                json_error(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", m)
            }
            ApiError::NotFound(m) => json_error(StatusCode::NOT_FOUND, "not found", m),
            ApiError::Conflict(m) => json_error(StatusCode::CONFLICT, "conflict", m),
            ApiError::PayloadTooLarge(max) => json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload too large",
                format!("request body is larger than {max} bytes"),
            ),
            ApiError::Unavailable => {
                let mut response = json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    DeviceRejection::Unavailable.code(),
                    DeviceRejection::Unavailable.to_string(),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
        }
    }
}

fn body_rejection(rejection: BytesRejection, max: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(max)
    } else {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// Reads a JSON object (serde would also take a struct from an array; a request is an object).
fn from_json_object<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let value: Value = serde_json::from_slice(bytes)?;
    if !value.is_object() {
        return Err(serde::de::Error::custom("expected a JSON object"));
    }
    serde_json::from_value(value)
}

/// Reads a JSON body. An empty body reads as `{}` when `T` allows it.
fn parse_json<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|r| body_rejection(r, ADMIN_BODY_LIMIT))?;
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    from_json_object(text).map_err(|e| {
        ApiError::BadRequest(match e.classify() {
            serde_json::error::Category::Data => format!("request body: {e}"),
            _ => format!(
                "request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ),
        })
    })
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest(rejection.body_text())
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "not found", "no such endpoint")
}

// ---------------------------------------------------------------------------------------
// Device API

#[derive(Deserialize)]
struct EnrollRequest {
    token: String,
    device_id: String,
}

/// The one response for a malformed, forged, wrong-key or unknown token.
fn invalid_token() -> Response {
    let rejection = DeviceRejection::InvalidToken;
    let mut response = json_error(
        StatusCode::UNAUTHORIZED,
        rejection.code(),
        rejection.to_string(),
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Onboarding-Token realm=\"device enrollment\""),
    );
    response
}

async fn enroll<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(r) => return body_rejection(r, ENROLL_BODY_LIMIT).into_response(),
    };
    // The messages never repeat the body: it holds a credential.
    let request: EnrollRequest = match from_json_object(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = match e.classify() {
                serde_json::error::Category::Data => {
                    "request body must be a JSON object {\"token\": string, \"device_id\": string}"
                        .to_owned()
                }
                _ => format!(
                    "request body is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            };
            return ApiError::BadRequest(message).into_response();
        }
    };
    let scanned = Zeroizing::new(request.token);
    let device = match DeviceId::new(&request.device_id) {
        Ok(d) => d,
        Err(e) => return ApiError::BadRequest(format!("device_id: {e}")).into_response(),
    };
    let Ok(token) = extract_token(&scanned) else {
        return invalid_token();
    };
    match app.service.redeem(token.expose_secret(), &device).await {
        Ok(enrollment) => Json(enrollment_view(&enrollment)).into_response(),
        Err(err) => device_error(&err),
    }
}

fn enrollment_view(e: &Enrollment) -> Value {
    json!({
        "token_id": e.token_id,
        "organization": e.organization(),
        "group": e.group(),
        "policies": e.policies(),
        "metadata": e.metadata,
        "uses": e.uses,
        "limit": e.limit.max_uses(),
        "remaining": e.remaining(),
        "replay": e.replay,
        "redeemed_at": e.redeemed_at,
    })
}

fn device_error(err: &RedeemError) -> Response {
    let facing = err.device_facing();
    match facing {
        DeviceRejection::InvalidToken => return invalid_token(),
        DeviceRejection::Unavailable => {
            log(format_args!("enroll: {}", error_chain(err)));
            return ApiError::Unavailable.into_response();
        }
        _ => {}
    }
    let mut body = json!({ "error": facing.code(), "message": facing.to_string() });
    // The device holds a genuine token: telling it when its window opens or closed is
    // what lets a person act.
    match err.rejection() {
        Some(Rejection::NotYetValid { not_before, .. }) => body["not_before"] = json!(not_before),
        Some(Rejection::Expired { expires_at, .. }) => body["expired_at"] = json!(expires_at),
        Some(Rejection::Revoked { revoked_at }) => body["revoked_at"] = json!(revoked_at),
        Some(Rejection::Exhausted { limit }) => body["limit"] = json!(limit),
        _ => {}
    }
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

fn rate_limited(err: GovernorError) -> Response<Body> {
    match err {
        GovernorError::TooManyRequests { wait_time, headers } => {
            let wait = wait_time.max(1);
            let mut response = json_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limited",
                format!(
                    "too many enrollment attempts from this network address; try again in {wait} seconds"
                ),
            );
            if let Some(headers) = headers {
                response.headers_mut().extend(headers);
            }
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        GovernorError::UnableToExtractKey => {
            log(format_args!(
                "enroll: no client address; serve the router with into_make_service_with_connect_info"
            ));
            json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "the server cannot tell clients apart",
            )
        }
        GovernorError::Other { code, msg, .. } => json_error(
            code,
            "rate limited",
            msg.unwrap_or_else(|| "request refused by the rate limiter".to_owned()),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Admin authentication

fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

async fn require_admin<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()))
        .is_some_and(|key| app.settings.admin_key.verify(key));
    if !authorized {
        let mut response = json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin key: send `Authorization: Bearer <admin key>`",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"onboarding admin\""),
        );
        return response;
    }
    next.run(request).await
}

// ---------------------------------------------------------------------------------------
// Admin API: tokens

async fn info<S: TokenStore + 'static>(State(app): State<Arc<App<S>>>) -> Response {
    let s = &app.settings;
    Json(json!({
        "organization": s.organization,
        "formats": app.formats.iter().map(PayloadFormat::as_str).collect::<Vec<_>>(),
        "max_batch": s.max_batch,
        "enroll_rate_limit": {
            "burst": s.enroll_limit.burst,
            "replenish_ms": u64::try_from(s.enroll_limit.replenish.as_millis()).unwrap_or(u64::MAX),
        },
    }))
    .into_response()
}

/// `max_uses`: absent (single use), `null` (unlimited) or a number.
#[derive(Debug, Default)]
enum MaxUses {
    #[default]
    Absent,
    Unlimited,
    Limited(u64),
}

impl<'de> Deserialize<'de> for MaxUses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<u64>::deserialize(d)? {
            None => MaxUses::Unlimited,
            Some(n) => MaxUses::Limited(n),
        })
    }
}

/// The body of `POST /api/tokens` and `POST /api/batches`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecRequest {
    group: Option<String>,
    policies: Option<Vec<String>>,
    #[serde(default)]
    max_uses: MaxUses,
    not_before: Option<String>,
    expires_in: Option<String>,
    expires_at: Option<String>,
    never_expires: Option<bool>,
    description: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
    /// Batches: how many tokens from the template.
    count: Option<u64>,
    /// Batches: a CSV specification instead of a template.
    spec_csv: Option<String>,
}

impl SpecRequest {
    fn has_template_fields(&self) -> bool {
        self.group.is_some()
            || self.policies.is_some()
            || !matches!(self.max_uses, MaxUses::Absent)
            || self.not_before.is_some()
            || self.expires_in.is_some()
            || self.expires_at.is_some()
            || self.never_expires.is_some()
            || self.description.is_some()
            || self.metadata.is_some()
            || self.count.is_some()
    }

    fn to_spec(&self, organization: &OrgId) -> Result<TokenSpec, ApiError> {
        let group = self
            .group
            .as_deref()
            .ok_or_else(|| ApiError::Unprocessable("group is required".to_owned()))?;
        let group = GroupId::new(group).map_err(|e| ApiError::field("group", e))?;
        let policies = self
            .policies
            .iter()
            .flatten()
            .map(PolicyId::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::field("policies", e))?;
        let limit = match self.max_uses {
            MaxUses::Absent => UsageLimit::Once,
            MaxUses::Unlimited => UsageLimit::Unlimited,
            MaxUses::Limited(n) => u32::try_from(n)
                .ok()
                .and_then(UsageLimit::limited)
                .ok_or_else(|| {
                    ApiError::field(
                        "max_uses",
                        "must be a whole number from 1 to 4294967295, or null for unlimited",
                    )
                })?,
        };
        let never = self.never_expires.unwrap_or(false);
        let expiry = match (&self.expires_in, &self.expires_at, never) {
            (None, None, false) => ExpirySpec::Default,
            (Some(d), None, false) => {
                ExpirySpec::After(parse_duration(d).map_err(|e| ApiError::field("expires_in", e))?)
            }
            (None, Some(t), false) => {
                ExpirySpec::At(parse_time(t).map_err(|e| ApiError::field("expires_at", e))?)
            }
            (None, None, true) => ExpirySpec::Never,
            _ => {
                return Err(ApiError::Unprocessable(
                    "give at most one of expires_in, expires_at and never_expires".to_owned(),
                ));
            }
        };
        let metadata = Metadata::from_map(self.metadata.clone().unwrap_or_default())
            .map_err(|e| ApiError::field("metadata", e))?;
        let mut spec = TokenSpec::new(organization.clone(), group)
            .with_policies(policies)
            .with_usage_limit(limit)
            .with_expiry(expiry)
            .with_description(self.description.clone().unwrap_or_default())
            .with_metadata(metadata);
        if let Some(t) = &self.not_before {
            spec =
                spec.with_not_before(parse_time(t).map_err(|e| ApiError::field("not_before", e))?);
        }
        Ok(spec)
    }
}

/// A token record for the admin API. Never the token string.
fn token_view(t: &Token, status: Status) -> Value {
    let validity = t.validity();
    json!({
        "id": t.id(),
        "status": status,
        "organization": t.organization(),
        "group": t.group(),
        "policies": t.policies(),
        "uses": t.uses(),
        "limit": t.usage_limit().max_uses(),
        "remaining": t.usage_limit().max_uses().map(|m| u64::from(m).saturating_sub(t.uses())),
        "not_before": validity.not_before,
        "expires_at": validity.expiry.at(),
        "created_at": t.created_at(),
        "description": t.description(),
        "metadata": t.metadata(),
        "batch": t.batch(),
        "key_id": t.key_id().to_string(),
        "revocation": t.revocation().map(|r| json!({
            "revoked_at": r.revoked_at(),
            "reason": r.reason(),
        })),
    })
}

fn token_links(id: TokenId) -> Value {
    json!({
        "self": format!("/api/tokens/{id}"),
        "revoke": format!("/api/tokens/{id}/revoke"),
        "qr_svg": format!("/api/tokens/{id}/qr.svg"),
        "qr_png": format!("/api/tokens/{id}/qr.png"),
    })
}

async fn issue<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: SpecRequest = parse_json(body)?;
    if request.count.is_some() || request.spec_csv.is_some() {
        return Err(ApiError::Unprocessable(
            "count and spec_csv belong to POST /api/batches".to_owned(),
        ));
    }
    let spec = request.to_spec(&app.settings.organization)?;
    let issued = app
        .service
        .issue(spec)
        .await
        .map_err(|e| ApiError::admin("issue", e))?;
    let id = issued.token.id();
    log(format_args!(
        "issued token {id} for group {}",
        issued.token.group()
    ));
    let typed = grouped(&issued.secret);
    let body = json!({
        "id": id,
        "token": issued.secret.expose_secret(),
        "typed": typed.expose_secret(),
        "record": token_view(&issued.token, app.service.status(&issued.token)),
        "links": token_links(id),
    });
    let location =
        HeaderValue::from_str(&format!("/api/tokens/{id}")).map_err(|_| ApiError::Unavailable)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    group: Option<String>,
    policy: Option<String>,
    status: Option<String>,
    batch: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// A query parameter, with an empty value meaning absent (as HTML forms send them).
fn param<T, E: fmt::Display>(
    name: &str,
    value: Option<&String>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("query parameter {name}: {e}"))),
    }
}

async fn list<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(query_rejection)?;
    let mut query = app
        .service
        .query()
        .with_organization(app.settings.organization.clone());
    if let Some(g) = param("group", p.group.as_ref(), GroupId::from_str)? {
        query = query.with_group(g);
    }
    if let Some(pol) = param("policy", p.policy.as_ref(), PolicyId::from_str)? {
        query = query.with_policy(pol);
    }
    if let Some(s) = param("status", p.status.as_ref(), Status::from_str)? {
        query = query.with_status(s);
    }
    if let Some(b) = param("batch", p.batch.as_ref(), BatchId::from_str)? {
        query = query.with_batch(b);
    }
    if let Some(c) = param("cursor", p.cursor.as_ref(), PageCursor::from_str)? {
        query = query.with_after(c);
    }
    let limit = param("limit", p.limit.as_ref(), |v| {
        v.parse::<usize>()
            .ok()
            .filter(|n| (1..=TokenQuery::MAX_LIMIT).contains(n))
            .ok_or(format!(
                "must be a whole number from 1 to {}",
                TokenQuery::MAX_LIMIT
            ))
    })?;
    query = query.with_limit(limit.unwrap_or(TokenQuery::DEFAULT_LIMIT));
    let page = app
        .service
        .list(&query)
        .await
        .map_err(|e| ApiError::store("list", &e))?;
    let tokens: Vec<Value> = page
        .tokens
        .iter()
        .map(|t| token_view(t, t.status_at_with(query.now(), query.leeway())))
        .collect();
    Ok(Json(json!({
        "tokens": tokens,
        "next_cursor": page.next.map(|c| c.to_string()),
    }))
    .into_response())
}

/// The token `id` names, if it is in this server's organization.
async fn find<S: TokenStore + 'static>(app: &App<S>, id: &str) -> Result<Token, ApiError> {
    let id = TokenId::from_str(id).map_err(|e| ApiError::BadRequest(format!("{e}")))?;
    match app.service.get(id).await {
        Ok(Some(t)) if *t.organization() == app.settings.organization => Ok(t),
        Ok(_) => Err(ApiError::NotFound(format!(
            "no token {id} in this organization"
        ))),
        Err(e) => Err(ApiError::store("get", &e)),
    }
}

async fn show<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let token = find(&app, &id).await?;
    let redemptions = app
        .service
        .redemptions(token.id())
        .await
        .map_err(|e| ApiError::store("redemptions", &e))?;
    Ok(Json(json!({
        "token": token_view(&token, app.service.status(&token)),
        "redemptions": redemptions
            .iter()
            .map(|r| json!({ "device": r.device, "redeemed_at": r.redeemed_at }))
            .collect::<Vec<_>>(),
        "links": token_links(token.id()),
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    reason: String,
}

async fn revoke<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: RevokeRequest = parse_json(body)?;
    let token = find(&app, &id).await?;
    let id = token.id();
    let newly = match app
        .service
        .revoke(&RevokeTarget::Token(id), request.reason.trim())
        .await
    {
        Ok(n) => n > 0,
        Err(AdminError::Store(StoreError::NotFound(_))) => {
            return Err(ApiError::NotFound(format!(
                "no token {id} in this organization"
            )));
        }
        Err(e) => return Err(ApiError::admin("revoke", e)),
    };
    if newly {
        log(format_args!("revoked token {id}"));
    }
    let token = find(&app, &id.to_string()).await?;
    Ok(Json(json!({
        "newly_revoked": newly,
        "token": token_view(&token, app.service.status(&token)),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QrParams {
    format: Option<String>,
    ec: Option<String>,
    scale: Option<String>,
}

fn payload_error(e: PayloadError) -> ApiError {
    match e {
        PayloadError::NotConfigured(PayloadFormat::Android | PayloadFormat::Nfc) => {
            ApiError::Unprocessable(format!(
                "{e}: start the server with --android-component, --android-checksum and \
                 --android-download (or their ONBOARDING_TOKEN_ANDROID_* variables)"
            ))
        }
        PayloadError::NotConfigured(PayloadFormat::Url) => ApiError::Unprocessable(format!(
            "{e}: start the server with --url-base (or ONBOARDING_TOKEN_URL_BASE)"
        )),
        e => ApiError::Unprocessable(e.to_string()),
    }
}

fn qr_error(id: TokenId, e: QrError) -> ApiError {
    ApiError::Unprocessable(format!("QR code for token {id}: {e}"))
}

/// The QR code of token `id` in the requested payload format, and the scale asked for.
async fn token_qr<S: TokenStore + 'static>(
    app: &App<S>,
    id: &str,
    params: Result<Query<QrParams>, QueryRejection>,
    default_scale: u32,
) -> Result<(TokenId, Qr, u32), ApiError> {
    let Query(p) = params.map_err(query_rejection)?;
    let format = param("format", p.format.as_ref(), PayloadFormat::from_str)?.unwrap_or_default();
    let ec = param("ec", p.ec.as_ref(), EcLevel::from_str)?.unwrap_or_default();
    let scale = param("scale", p.scale.as_ref(), |v| {
        v.parse::<u32>()
            .ok()
            .filter(|n| (1..=onboarding_token::qr::MAX_SCALE).contains(n))
            .ok_or(format!(
                "must be a whole number from 1 to {}",
                onboarding_token::qr::MAX_SCALE
            ))
    })?
    .unwrap_or(default_scale);
    let token = find(app, id).await?;
    let id = token.id();
    let secret = app.service.token_string(&token).map_err(|e| {
        ApiError::Conflict(format!(
            "token {id} cannot be shown again: {e} (its signing key is no longer in this server's keyring)"
        ))
    })?;
    let payload = app
        .settings
        .payloads
        .render(format, &secret)
        .map_err(payload_error)?;
    let qr = Qr::encode_with(payload.expose_secret(), ec).map_err(|e| qr_error(id, e))?;
    Ok((id, qr, scale))
}

fn inline_file(id: impl fmt::Display, extension: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("inline; filename=\"{id}.{extension}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("inline"))
}

async fn qr_svg<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    params: Result<Query<QrParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (id, qr, scale) = token_qr(&app, &id, params, 8).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (header::CONTENT_DISPOSITION, inline_file(id, "svg")),
        ],
        qr.to_svg_sized(scale),
    )
        .into_response())
}

async fn qr_png<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    params: Result<Query<QrParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (id, qr, scale) = token_qr(&app, &id, params, 10).await?;
    let png = qr.to_png(scale).map_err(|e| qr_error(id, e))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            (header::CONTENT_DISPOSITION, inline_file(id, "png")),
        ],
        png,
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Admin API: batches

async fn create_batch<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: SpecRequest = parse_json(body)?;
    let org = &app.settings.organization;
    let max = app.settings.max_batch;
    let too_many = || {
        ApiError::Unprocessable(format!(
            "at most {max} tokens per batch over HTTP; issue larger batches with `tokenctl bulk`"
        ))
    };
    let specs = match &request.spec_csv {
        Some(csv) => {
            if request.has_template_fields() {
                return Err(ApiError::Unprocessable(
                    "spec_csv already says what each token is: leave out group, count and the other token fields"
                        .to_owned(),
                ));
            }
            let spec = BulkSpec::parse(csv, org, app.service.now())
                .map_err(|e| ApiError::field("spec_csv", e))?;
            if spec.total_tokens() > max as u64 {
                return Err(too_many());
            }
            spec.to_specs()
        }
        None => {
            let count = request.count.ok_or_else(|| {
                ApiError::Unprocessable(
                    "give count (with group and the token fields) or spec_csv".to_owned(),
                )
            })?;
            if count == 0 {
                return Err(ApiError::field("count", "must be at least 1"));
            }
            if count > max as u64 {
                return Err(too_many());
            }
            let spec = request.to_spec(org)?;
            vec![spec; count as usize]
        }
    };
    let batch = app
        .service
        .issue_batch(specs)
        .await
        .map_err(|e| ApiError::admin("batch", e))?;
    log(format_args!(
        "issued batch {} of {} tokens",
        batch.batch,
        batch.tokens.len()
    ));
    let manifest = Manifest::from_issued(&batch.tokens, None);
    let manifest_json: Value =
        serde_json::from_str(manifest.to_json().expose_secret()).unwrap_or(Value::Null);
    let csv = manifest.to_csv();
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "batch": batch.batch,
            "count": batch.tokens.len(),
            "manifest": manifest_json,
            "manifest_csv": csv.expose_secret(),
            "sheet": format!("/api/batches/{}/sheet.html", batch.batch),
        })),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SheetParams {
    title: Option<String>,
    paper: Option<String>,
    format: Option<String>,
    ec: Option<String>,
}

async fn sheet<S: TokenStore + 'static>(
    State(app): State<Arc<App<S>>>,
    Path(id): Path<String>,
    params: Result<Query<SheetParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(query_rejection)?;
    let batch = BatchId::from_str(&id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let paper = param("paper", p.paper.as_ref(), |v| {
        match v.to_ascii_lowercase().as_str() {
            "a4" => Ok(Paper::A4),
            "letter" => Ok(Paper::Letter),
            _ => Err("expected a4 or letter"),
        }
    })?
    .unwrap_or_default();
    let format = param("format", p.format.as_ref(), PayloadFormat::from_str)?.unwrap_or_default();
    let ec = param("ec", p.ec.as_ref(), EcLevel::from_str)?.unwrap_or_default();
    let title = match p.title.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.chars().take(200).collect(),
        _ => format!("Enrollment codes, batch {}", &id[..8]),
    };

    // Re-sign every token of the batch, as issued.
    let mut issued = Vec::new();
    let mut query = app
        .service
        .query()
        .with_organization(app.settings.organization.clone())
        .with_batch(batch)
        .with_limit(TokenQuery::MAX_LIMIT);
    loop {
        let page = app
            .service
            .list(&query)
            .await
            .map_err(|e| ApiError::store("sheet", &e))?;
        for token in page.tokens {
            let secret = app.service.token_string(&token).map_err(|e| {
                ApiError::Conflict(format!("token {} cannot be printed again: {e}", token.id()))
            })?;
            issued.push(Issued { token, secret });
        }
        if issued.len() > app.settings.max_batch {
            return Err(ApiError::Unprocessable(format!(
                "batch {batch} has more than {} tokens; print it with `tokenctl bulk`",
                app.settings.max_batch
            )));
        }
        match page.next {
            Some(next) => query = query.with_after(next),
            None => break,
        }
    }
    if issued.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no batch {batch} in this organization"
        )));
    }
    let options = SheetOptions::new()
        .with_title(title)
        .with_paper(paper)
        .with_format(format)
        .with_ec_level(ec);
    let html = render_sheet(&issued, &app.settings.payloads, &options).map_err(|e| match e {
        SheetError::Payload(p) => payload_error(p),
        e => ApiError::Unprocessable(e.to_string()),
    })?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(SHEET_CSP),
            ),
            (header::CONTENT_DISPOSITION, inline_file(batch, "html")),
        ],
        html.expose_secret().to_owned(),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Console

fn asset(content_type: &'static str, body: &'static str, csp: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
        ],
        body,
    )
        .into_response()
}

async fn console_html() -> Response {
    asset("text/html; charset=utf-8", CONSOLE_HTML, CONSOLE_CSP)
}

async fn console_js() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS, API_CSP)
}

async fn console_css() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS, API_CSP)
}
