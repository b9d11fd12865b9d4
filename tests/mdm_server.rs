//! HTTP tests of the example MDM server (`examples/mdm_server`): every endpoint and error
//! path over a real socket, plus the server process itself (refusing to start without an
//! admin key; starting, serving and stopping on SIGTERM).

#[allow(dead_code)]
#[path = "../examples/mdm_server/app.rs"]
mod app;
#[allow(dead_code)]
#[path = "../examples/mdm_server/cli.rs"]
mod cli;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use app::{AdminKey, App, RateLimit, Settings};
use chrono::{TimeDelta, Utc};
use onboarding_token::android::AndroidProvisioning;
use onboarding_token::payload::{EnrollmentUrl, PayloadConfig, PayloadFormat};
use onboarding_token::rules::RedeemRequest;
use onboarding_token::store::{RevokeTarget, TokenPage, TokenQuery, TokenStore};
use onboarding_token::{
    AnyStore, Enrollment, Expiry, Keyring, Metadata, Onboarding, OrgId, RedeemError, Redemption,
    Revocation, SigningKey, StoreError, SystemRng, Token, TokenId, TokenParts, UsageLimit,
    Validity,
};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-key-with-32-characters";
const COMPONENT: &str = "com.example.dpc/.AdminReceiver";
const CHECKSUM: &str = "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w";
const DOWNLOAD: &str = "https://mdm.example.com/dpc.apk";

// ---------------------------------------------------------------------------------------
// Harness

struct Options {
    burst: u32,
    payloads: PayloadConfig,
    max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            burst: 1000,
            payloads: PayloadConfig::new(),
            max_batch: 50,
        }
    }
}

/// A server on an ephemeral port of this test's runtime; it stops with the runtime.
struct Server<S = AnyStore> {
    base: String,
    app: Arc<App<S>>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Server {
    start_with(Options::default()).await
}

async fn start_with(options: Options) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = AnyStore::open(path.to_str().unwrap()).await.unwrap();
    start_store(store, options, dir).await
}

async fn start_store<S: TokenStore + 'static>(
    store: S,
    options: Options,
    dir: tempfile::TempDir,
) -> Server<S> {
    let mut rng = SystemRng::default();
    let service = Onboarding::new(Keyring::new(SigningKey::generate(&mut rng)), store);
    let settings = Settings {
        organization: OrgId::new("acme").unwrap(),
        admin_key: AdminKey::new(ADMIN).unwrap(),
        payloads: options.payloads,
        // One more request per hour after the burst: in a test, the burst is all there is.
        enroll_limit: RateLimit::new(options.burst, Duration::from_secs(3600)).unwrap(),
        max_batch: options.max_batch,
    };
    let app = App::new(service, settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(app::serve(
        listener,
        app::router(Arc::clone(&app)),
        std::future::pending(),
    ));
    Server {
        base: format!("http://{addr}"),
        app,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The JSON error body's `message`.
    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap_or("").to_owned()
    }
}

impl<S> Server<S> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    async fn admin_get(&self, path: &str) -> Reply {
        self.send(self.http.get(self.url(path)).bearer_auth(ADMIN))
            .await
    }

    async fn admin_post(&self, path: &str, body: Value) -> Reply {
        self.send(
            self.http
                .post(self.url(path))
                .bearer_auth(ADMIN)
                .json(&body),
        )
        .await
    }

    async fn enroll_raw(&self, body: impl Into<reqwest::Body>) -> Reply {
        self.send(self.http.post(self.url("/api/enroll")).body(body))
            .await
    }

    async fn enroll(&self, token: &str, device: &str) -> Reply {
        self.enroll_raw(json!({ "token": token, "device_id": device }).to_string())
            .await
    }

    /// Issues a token; returns (id, token string).
    async fn issue(&self, spec: Value) -> (String, String) {
        let reply = self.admin_post("/api/tokens", spec).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
        let body = reply.json();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    }
}

/// Decodes a PNG (any colour type, 8-bit after expansion) and reads the QR codes in it.
fn decode_qr_png(png_bytes: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let bit_depth = info.bit_depth as u8;
    let grey = |x: usize, y: usize| -> u8 {
        let px = &buf[y * info.line_size + x * channels..];
        let v = px[0];
        // 1-bit greyscale expands to 0/1 without scaling.
        if bit_depth < 8 && v <= 1 { v * 255 } else { v }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    img.detect_grids()
        .into_iter()
        .map(|g| g.decode().expect("QR decodes").1)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Device API

#[tokio::test]
async fn enroll_returns_the_enrollment_and_replays_for_the_same_device() {
    let s = start().await;
    let (id, token) = s
        .issue(json!({
            "group": "emea/berlin",
            "policies": ["wifi-corp", "vpn"],
            "max_uses": 2,
            "metadata": {"site": "berlin"},
        }))
        .await;

    let first = s.enroll(&token, "SN-0001").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let e = first.json();
    assert_eq!(e["token_id"], id);
    assert_eq!(e["organization"], "acme");
    assert_eq!(e["group"], "emea/berlin");
    assert_eq!(e["policies"], json!(["wifi-corp", "vpn"]));
    assert_eq!(e["metadata"], json!({"site": "berlin"}));
    assert_eq!(e["replay"], false);
    assert_eq!(
        (e["uses"].as_u64(), e["limit"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(e["remaining"], 1);
    assert!(e["redeemed_at"].is_string());
    assert_eq!(first.header("cache-control"), "no-store");

    let again = s.enroll(&token, "SN-0001").await;
    assert_eq!(again.status, StatusCode::OK);
    let r = again.json();
    assert_eq!(r["replay"], true);
    assert_eq!(r["uses"], 1, "a replay consumes nothing");
    assert_eq!(r["redeemed_at"], e["redeemed_at"]);
}

#[tokio::test]
async fn enroll_accepts_whatever_the_device_scanned() {
    let payloads = PayloadConfig::new()
        .with_url(EnrollmentUrl::new("https://mdm.example.com/enroll").unwrap())
        .with_android(AndroidProvisioning::new(COMPONENT, CHECKSUM, DOWNLOAD).unwrap());
    let s = start_with(Options {
        payloads: payloads.clone(),
        ..Options::default()
    })
    .await;
    let issue = s
        .admin_post("/api/tokens", json!({"group": "kiosks", "max_uses": null}))
        .await;
    let body = issue.json();
    let typed = body["typed"].as_str().unwrap().to_owned();
    let id: TokenId = body["id"].as_str().unwrap().parse().unwrap();
    let record = s.app.service().get(id).await.unwrap().unwrap();
    let secret = s.app.service().token_string(&record).unwrap();
    let link = payloads.render(PayloadFormat::Url, &secret).unwrap();
    let android = payloads.render(PayloadFormat::Android, &secret).unwrap();

    for (device, scanned) in [
        ("typed", typed.as_str()),
        ("link", link.expose_secret()),
        ("android", android.expose_secret()),
    ] {
        let reply = s.enroll(scanned, device).await;
        assert_eq!(reply.status, StatusCode::OK, "{device}: {}", reply.text());
        assert_eq!(reply.json()["replay"], false, "{device}");
    }
    let shown = s.admin_get(&format!("/api/tokens/{id}")).await.json();
    assert_eq!(shown["token"]["uses"], 3);
    assert_eq!(shown["token"]["limit"], Value::Null);
}

#[tokio::test]
async fn forged_malformed_and_unknown_tokens_get_one_identical_401() {
    let s = start().await;
    let (id, genuine) = s.issue(json!({"group": "sales"})).await;

    // Forged: one character of the signed body changed.
    let mut forged = genuine.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    // Genuinely signed by this server's key, but never issued.
    let mut rng = SystemRng::default();
    let unknown = s.app.service().keyring().sign(&TokenId::generate(&mut rng));
    // Signed by another key.
    let other_key = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));

    let cases = [
        ("forged", forged.as_str()),
        ("unknown id", unknown.expose_secret()),
        ("other key", other_key.expose_secret()),
        ("truncated", &genuine[..genuine.len() - 3]),
        ("not a token", "hello"),
        ("empty", ""),
        (
            "wrong prefix",
            "xyz1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        (
            "unknown version",
            "obt9_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
    ];
    // The first reply's body and headers (but the date), which every other must equal.
    type Seen = (Vec<u8>, Vec<(String, String)>);
    let mut seen: Option<Seen> = None;
    for (what, token) in cases {
        let reply = s.enroll(token, "SN-1").await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.text()
        );
        let mut headers: Vec<(String, String)> = reply
            .headers
            .iter()
            .filter(|(k, _)| *k != header::DATE)
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        match &seen {
            None => seen = Some((reply.body.clone(), headers)),
            Some((body, first_headers)) => {
                assert_eq!(&reply.body, body, "{what}: body differs");
                assert_eq!(&headers, first_headers, "{what}: headers differ");
            }
        }
    }
    let (body, _) = seen.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid token", "message": "invalid token: check that it was scanned or typed correctly"})
    );
    // Nothing was consumed.
    let shown = s.admin_get(&format!("/api/tokens/{id}")).await.json();
    assert_eq!(shown["token"]["uses"], 0);
    assert_eq!(shown["redemptions"], json!([]));
}

#[tokio::test]
async fn genuine_but_unusable_tokens_get_403_naming_the_reason() {
    let s = start().await;

    // Exhausted.
    let (_, once) = s.issue(json!({"group": "sales"})).await;
    assert_eq!(s.enroll(&once, "first").await.status, StatusCode::OK);
    let r = s.enroll(&once, "second").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "exhausted");
    assert_eq!(r.json()["limit"], 1);
    assert!(r.message().contains("already been used"), "{}", r.message());

    // Revoked.
    let (id, token) = s.issue(json!({"group": "sales", "max_uses": 5})).await;
    let revoked = s
        .admin_post(
            &format!("/api/tokens/{id}/revoke"),
            json!({"reason": "sheet lost"}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    let r = s.enroll(&token, "third").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "revoked");
    assert!(
        r.message().contains("ask your administrator"),
        "{}",
        r.message()
    );
    assert!(r.json()["revoked_at"].is_string());

    // Not yet valid.
    let opens = (Utc::now() + TimeDelta::days(2)).to_rfc3339();
    let (_, later) = s
        .issue(json!({"group": "sales", "not_before": opens, "expires_in": "7d"}))
        .await;
    let r = s.enroll(&later, "fourth").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "not yet valid");
    assert!(
        r.message().contains("enrollment window opens"),
        "{}",
        r.message()
    );
    assert!(r.json()["not_before"].is_string());

    // Expired: a record issued two weeks ago for one week, written straight to the store.
    let service = s.app.service();
    let mut rng = SystemRng::default();
    let id = TokenId::generate(&mut rng);
    let issued_at = Utc::now() - TimeDelta::days(14);
    let old = Token::from_parts(TokenParts {
        id,
        key_id: service.keyring().active_key_id(),
        organization: OrgId::new("acme").unwrap(),
        group: "sales".parse().unwrap(),
        policies: vec![],
        usage_limit: UsageLimit::Once,
        uses: 0,
        validity: Validity {
            not_before: None,
            expiry: Expiry::At(issued_at + TimeDelta::days(7)),
        },
        created_at: issued_at,
        description: String::new(),
        metadata: Metadata::new(),
        batch: None,
        revocation: None,
    })
    .unwrap();
    service.store().insert(old.clone()).await.unwrap();
    let expired = service.token_string(&old).unwrap();
    let r = s.enroll(expired.expose_secret(), "fifth").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json()["error"], "expired");
    assert!(r.message().contains("has expired"), "{}", r.message());
    assert!(r.json()["expired_at"].is_string());
}

#[tokio::test]
async fn enroll_rejects_unreadable_bodies_with_400_without_echoing_the_token() {
    let s = start().await;
    let (id, token) = s.issue(json!({"group": "sales"})).await;
    let cases = [
        ("not JSON", "token=abc".to_owned()),
        ("truncated JSON", format!("{{\"token\": \"{token}\"")),
        ("array", format!("[\"{token}\", \"dev\"]")),
        ("missing device_id", json!({"token": token}).to_string()),
        ("missing token", json!({"device_id": "dev"}).to_string()),
        (
            "token not a string",
            json!({"token": 5, "device_id": "dev"}).to_string(),
        ),
        (
            "device id with a space",
            json!({"token": token, "device_id": "my phone"}).to_string(),
        ),
        (
            "empty device id",
            json!({"token": token, "device_id": ""}).to_string(),
        ),
        ("empty body", String::new()),
    ];
    for (what, body) in cases {
        let r = s.enroll_raw(body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "bad request", "{what}");
        assert!(!r.message().is_empty(), "{what}");
        assert!(
            !r.text().contains(&token[5..]),
            "{what}: the token is echoed"
        );
    }
    let r = s
        .enroll_raw(json!({"token": token, "device_id": "my phone"}).to_string())
        .await;
    assert!(
        r.message().starts_with("device_id: invalid device id"),
        "{}",
        r.message()
    );
    let shown = s.admin_get(&format!("/api/tokens/{id}")).await.json();
    assert_eq!(shown["token"]["uses"], 0, "nothing consumed");
}

#[tokio::test]
async fn enroll_rejects_oversized_bodies_with_413() {
    let s = start().await;
    let (_, token) = s.issue(json!({"group": "sales"})).await;
    let padding = "x".repeat(app::ENROLL_BODY_LIMIT);
    let body = json!({"token": token, "device_id": "dev", "padding": padding}).to_string();
    let r = s.enroll_raw(body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.json()["error"], "payload too large");
    // Just under the limit is read (and the unknown field ignored).
    let small = json!({"token": token, "device_id": "dev", "padding": "x".repeat(1000)});
    assert_eq!(s.enroll_raw(small.to_string()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn enroll_is_rate_limited_per_client_address() {
    let s = start_with(Options {
        burst: 3,
        ..Options::default()
    })
    .await;
    let (_, token) = s.issue(json!({"group": "sales", "max_uses": null})).await;
    for i in 0..3 {
        let r = s.enroll(&token, &format!("dev-{i}")).await;
        assert_eq!(r.status, StatusCode::OK, "request {i} is within the burst");
    }
    let limited = s.enroll(&token, "dev-3").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.json()["error"], "rate limited");
    assert!(
        limited.message().contains("try again in"),
        "{}",
        limited.message()
    );
    let retry: u64 = limited.header("retry-after").parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(limited.header("x-content-type-options"), "nosniff");
    // Garbage counts against the limit too, and is still limited.
    assert_eq!(
        s.enroll("garbage", "dev").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Another client address has its own quota.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let r = s
        .send(
            other
                .post(s.url("/api/enroll"))
                .body(json!({"token": token, "device_id": "dev-9"}).to_string()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // The admin API is not behind the device limiter.
    for _ in 0..5 {
        assert_eq!(s.admin_get("/api/info").await.status, StatusCode::OK);
    }
}

/// A store whose every operation fails, as a database that went away does.
struct BrokenStore;

fn broken() -> StoreError {
    StoreError::backend(
        "broken",
        "test store is down",
        std::io::Error::other("connection refused"),
    )
}

impl TokenStore for BrokenStore {
    async fn insert(&self, _: Token) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn insert_batch(&self, _: Vec<Token>) -> Result<(), StoreError> {
        Err(broken())
    }
    async fn get(&self, _: TokenId) -> Result<Option<Token>, StoreError> {
        Err(broken())
    }
    async fn list(&self, _: &TokenQuery) -> Result<TokenPage, StoreError> {
        Err(broken())
    }
    async fn redeem(&self, _: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
        Err(broken().into())
    }
    async fn revoke(&self, _: &RevokeTarget, _: &Revocation) -> Result<u64, StoreError> {
        Err(broken())
    }
    async fn redemptions(&self, _: TokenId) -> Result<Vec<Redemption>, StoreError> {
        Err(broken())
    }
}

#[tokio::test]
async fn a_failing_store_answers_503_and_never_leaks_the_cause() {
    let s = start_store(
        BrokenStore,
        Options::default(),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let mut rng = SystemRng::default();
    let genuine = s.app.service().keyring().sign(&TokenId::generate(&mut rng));
    let r = s.enroll(genuine.expose_secret(), "dev").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json()["error"], "unavailable");
    assert_eq!(r.header("retry-after"), "5");
    assert!(!r.text().contains("connection refused"));
    // A forged token never reaches the store: still the uniform 401.
    assert_eq!(
        s.enroll("hello", "dev").await.status,
        StatusCode::UNAUTHORIZED
    );

    let id = TokenId::generate(&mut rng);
    for (what, reply) in [
        (
            "issue",
            s.admin_post("/api/tokens", json!({"group": "g"})).await,
        ),
        ("list", s.admin_get("/api/tokens").await),
        ("show", s.admin_get(&format!("/api/tokens/{id}")).await),
        (
            "revoke",
            s.admin_post(&format!("/api/tokens/{id}/revoke"), json!({}))
                .await,
        ),
        (
            "batch",
            s.admin_post("/api/batches", json!({"group": "g", "count": 2}))
                .await,
        ),
    ] {
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}: {}",
            reply.text()
        );
    }
}

/// The same scene at random: whatever a stranger sends gets a clean JSON answer, and any
/// string that is not a genuine token (random text, or a genuine token with one character
/// changed) gets exactly the uniform 401, consuming nothing.
#[test]
fn random_input_to_enroll_gets_clean_answers() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s = runtime.block_on(start_with(Options {
        burst: 1_000_000,
        ..Options::default()
    }));
    let (id, genuine) = runtime.block_on(s.issue(json!({"group": "sales"})));
    let uniform = runtime.block_on(s.enroll("x", "dev")).body;
    let config = Config {
        cases: 64,
        // Failures are kept in tests/mdm_server.proptest-regressions.
        source_file: Some(file!()),
        ..Config::default()
    };

    TestRunner::new(config.clone())
        .run(
            &(any::<String>(), "[A-Za-z0-9._:-]{1,40}"),
            |(token, device)| {
                let r = runtime.block_on(s.enroll(&token, &device));
                prop_assert_eq!(r.status, StatusCode::UNAUTHORIZED);
                prop_assert_eq!(&r.body, &uniform);
                Ok(())
            },
        )
        .unwrap();

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    TestRunner::new(config.clone())
        .run(&(5..genuine.len(), 0..ALPHABET.len()), |(at, pick)| {
            let mut mutated = genuine.clone().into_bytes();
            let replacement = ALPHABET[pick];
            prop_assume!(mutated[at] != replacement);
            mutated[at] = replacement;
            let mutated = String::from_utf8(mutated).unwrap();
            let r = runtime.block_on(s.enroll(&mutated, "dev"));
            prop_assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            prop_assert_eq!(&r.body, &uniform);
            Ok(())
        })
        .unwrap();

    TestRunner::new(config)
        .run(&proptest::collection::vec(any::<u8>(), 0..2048), |bytes| {
            let r = runtime.block_on(s.enroll_raw(bytes));
            prop_assert!(
                matches!(r.status.as_u16(), 400 | 401),
                "status {}",
                r.status
            );
            prop_assert_eq!(r.header("content-type"), "application/json");
            prop_assert!(r.json()["message"].is_string());
            Ok(())
        })
        .unwrap();

    let shown = runtime
        .block_on(s.admin_get(&format!("/api/tokens/{id}")))
        .json();
    assert_eq!(shown["token"]["uses"], 0, "nothing consumed");
}

// ---------------------------------------------------------------------------------------
// Admin credential

#[tokio::test]
async fn every_admin_endpoint_needs_the_admin_key() {
    let s = start().await;
    let (id, _) = s.issue(json!({"group": "sales"})).await;
    let batch = s
        .admin_post("/api/batches", json!({"group": "sales", "count": 1}))
        .await
        .json()["batch"]
        .as_str()
        .unwrap()
        .to_owned();
    let issue = json!({"group": "sales"});
    let revoke = json!({"reason": "x"});
    let batch_spec = json!({"group": "sales", "count": 1});
    let none = Value::Null;
    let endpoints: Vec<(reqwest::Method, String, &Value)> = vec![
        (reqwest::Method::GET, "/api/info".into(), &none),
        (reqwest::Method::GET, "/api/tokens".into(), &none),
        (reqwest::Method::POST, "/api/tokens".into(), &issue),
        (reqwest::Method::GET, format!("/api/tokens/{id}"), &none),
        (
            reqwest::Method::POST,
            format!("/api/tokens/{id}/revoke"),
            &revoke,
        ),
        (
            reqwest::Method::GET,
            format!("/api/tokens/{id}/qr.svg"),
            &none,
        ),
        (
            reqwest::Method::GET,
            format!("/api/tokens/{id}/qr.png"),
            &none,
        ),
        (reqwest::Method::POST, "/api/batches".into(), &batch_spec),
        (
            reqwest::Method::GET,
            format!("/api/batches/{batch}/sheet.html"),
            &none,
        ),
    ];
    let wrong_auth: [Option<String>; 7] = [
        None,
        Some(format!("Bearer {ADMIN}x")),
        Some(format!("Bearer {}", &ADMIN[..ADMIN.len() - 1])),
        Some("Bearer ".into()),
        Some(format!("Basic {ADMIN}")),
        Some(ADMIN.into()),
        Some(format!("Bearer {}", ADMIN.to_uppercase())),
    ];
    let mut first_body: Option<Vec<u8>> = None;
    let request = |method: &reqwest::Method, path: &str, body: &Value| {
        let request = s.http.request(method.clone(), s.url(path));
        if body.is_null() {
            request
        } else {
            request.body(body.to_string())
        }
    };
    for (method, path, body) in &endpoints {
        for auth in &wrong_auth {
            let mut request = request(method, path, body);
            if let Some(value) = auth {
                request = request.header(header::AUTHORIZATION, value);
            }
            let r = s.send(request).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(
                r.header("www-authenticate"),
                "Bearer realm=\"onboarding admin\""
            );
            match &first_body {
                None => first_body = Some(r.body.clone()),
                Some(b) => assert_eq!(&r.body, b, "{method} {path}: 401 bodies differ"),
            }
        }
        // The right key (scheme in any case) gets through.
        let r = s
            .send(
                request(method, path, body)
                    .header(header::AUTHORIZATION, format!("bearer {ADMIN}")),
            )
            .await;
        assert!(
            r.status.is_success(),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    }
    // The refused issue and batch requests wrote nothing: 1 token and 1 batch token before,
    // 1 token and 1 batch token accepted.
    let list = s.admin_get("/api/tokens").await.json();
    assert_eq!(list["tokens"].as_array().unwrap().len(), 4);
}

#[test]
fn admin_keys_are_checked_and_never_shown() {
    assert_eq!(
        AdminKey::new("short").unwrap_err(),
        app::AdminKeyError::TooShort { len: 5 }
    );
    assert_eq!(
        AdminKey::new("sixteen chars !!").unwrap_err(),
        app::AdminKeyError::BadCharacter
    );
    assert_eq!(
        AdminKey::new(&"k".repeat(2000)).unwrap_err(),
        app::AdminKeyError::TooLong
    );
    let key = AdminKey::new(ADMIN).unwrap();
    assert!(key.verify(ADMIN.as_bytes()));
    assert!(!key.verify(b""));
    assert!(!key.verify(&ADMIN.as_bytes()[1..]));
    assert_eq!(format!("{key:?}"), "AdminKey([redacted])");
    assert!(RateLimit::new(0, Duration::from_secs(1)).is_err());
    assert!(RateLimit::new(1, Duration::ZERO).is_err());
}

// ---------------------------------------------------------------------------------------
// Admin API: tokens

#[tokio::test]
async fn issue_applies_defaults_and_every_option() {
    let s = start().await;
    let before = Utc::now();
    let r = s.admin_post("/api/tokens", json!({"group": "sales"})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let body = r.json();
    let id = body["id"].as_str().unwrap();
    assert_eq!(r.header("location"), format!("/api/tokens/{id}"));
    assert_eq!(r.header("cache-control"), "no-store");
    let token = body["token"].as_str().unwrap();
    assert!(token.starts_with("obt1_") && token.len() == 53);
    assert_eq!(body["typed"].as_str().unwrap().replace(' ', ""), token);
    let record = &body["record"];
    assert_eq!(record["status"], "active");
    assert_eq!(record["limit"], 1);
    assert_eq!(record["organization"], "acme");
    assert_eq!(record["policies"], json!([]));
    let expires: chrono::DateTime<Utc> = record["expires_at"].as_str().unwrap().parse().unwrap();
    let ttl = expires - before;
    assert!(
        ttl > TimeDelta::days(7) - TimeDelta::minutes(1)
            && ttl <= TimeDelta::days(7) + TimeDelta::minutes(1)
    );
    assert!(record.get("token").is_none());

    let at = (Utc::now() + TimeDelta::days(30)).to_rfc3339();
    let opens = (Utc::now() + TimeDelta::hours(1)).to_rfc3339();
    let cases = [
        (
            json!({"group": "a", "max_uses": null, "never_expires": true}),
            "limit",
            Value::Null,
        ),
        (json!({"group": "a", "max_uses": 25}), "limit", json!(25)),
        (
            json!({"group": "a", "never_expires": true}),
            "expires_at",
            Value::Null,
        ),
        (
            json!({"group": "a", "description": "Berlin laptops"}),
            "description",
            json!("Berlin laptops"),
        ),
        (
            json!({"group": "a", "metadata": {"site": "berlin"}}),
            "metadata",
            json!({"site": "berlin"}),
        ),
        (
            json!({"group": "a", "policies": ["wifi", "vpn"]}),
            "policies",
            json!(["wifi", "vpn"]),
        ),
        (
            json!({"group": "a", "not_before": opens, "expires_in": "1d"}),
            "status",
            json!("pending"),
        ),
    ];
    for (spec, field, expected) in cases {
        let r = s.admin_post("/api/tokens", spec.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{spec}: {}", r.text());
        assert_eq!(r.json()["record"][field], expected, "{spec}");
    }
    let r = s
        .admin_post("/api/tokens", json!({"group": "a", "expires_at": at}))
        .await;
    let got: chrono::DateTime<Utc> = r.json()["record"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Window edges are kept to the microsecond (rounded down), as every store keeps them.
    let want = chrono::SubsecRound::trunc_subsecs(at.parse::<chrono::DateTime<Utc>>().unwrap(), 6);
    assert_eq!(got, want);
}

#[tokio::test]
async fn issue_refuses_bad_specifications_with_clear_messages() {
    let s = start().await;
    let past = (Utc::now() - TimeDelta::days(1)).to_rfc3339();
    let unprocessable = [
        (json!({}), "group is required"),
        (json!({"group": "bad group!"}), "group: invalid group id"),
        (
            json!({"group": "a", "policies": ["ok", "not ok"]}),
            "policies: invalid policy id",
        ),
        (
            json!({"group": "a", "policies": ["x", "x"]}),
            "policy x is listed twice",
        ),
        (
            json!({"group": "a", "max_uses": 0}),
            "max_uses: must be a whole number",
        ),
        (
            json!({"group": "a", "max_uses": 5_000_000_000u64}),
            "max_uses",
        ),
        (
            json!({"group": "a", "expires_in": "7d", "never_expires": true}),
            "at most one of",
        ),
        (
            json!({"group": "a", "expires_in": "soon"}),
            "expires_in: duration must be",
        ),
        (
            json!({"group": "a", "expires_at": "tomorrow"}),
            "expires_at: expected an RFC 3339 time",
        ),
        (
            json!({"group": "a", "expires_at": past}),
            "is not after the time of issue",
        ),
        (
            json!({"group": "a", "not_before": "never"}),
            "not_before: expected an RFC 3339",
        ),
        (json!({"group": "a", "metadata": {"": "x"}}), "metadata"),
        (
            json!({"group": "a", "description": "d".repeat(2000)}),
            "description is longer than",
        ),
        (json!({"group": "a", "count": 3}), "POST /api/batches"),
    ];
    for (spec, expected) in unprocessable {
        let r = s.admin_post("/api/tokens", spec.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{spec}: {}",
            r.text()
        );
        assert_eq!(r.json()["error"], "unprocessable");
        assert!(r.message().contains(expected), "{spec}: {}", r.message());
    }
    let bad_requests = [
        json!({"group": "a", "expires": "7d"}).to_string(),
        json!({"group": 5}).to_string(),
        json!({"group": "a", "max_uses": "two"}).to_string(),
        "{\"group\": ".to_owned(),
        "[]".to_owned(),
    ];
    for body in bad_requests {
        let r = s
            .send(
                s.http
                    .post(s.url("/api/tokens"))
                    .bearer_auth(ADMIN)
                    .body(body.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text());
    }
    let r = s
        .send(
            s.http
                .post(s.url("/api/tokens"))
                .bearer_auth(ADMIN)
                .body(json!({"group": "a", "expires": "7d"}).to_string()),
        )
        .await;
    assert!(
        r.message().contains("unknown field `expires`"),
        "{}",
        r.message()
    );
    let big = "x".repeat(app::ADMIN_BODY_LIMIT + 1);
    let r = s
        .send(
            s.http
                .post(s.url("/api/tokens"))
                .bearer_auth(ADMIN)
                .body(big),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was stored.
    let list = s.admin_get("/api/tokens").await.json();
    assert_eq!(list["tokens"], json!([]));
}

#[tokio::test]
async fn list_filters_pages_and_never_shows_token_strings() {
    let s = start().await;
    let mut secrets = Vec::new();
    let mut ids = Vec::new();
    for (group, policies) in [
        ("emea", vec!["wifi"]),
        ("emea/berlin", vec!["wifi", "vpn"]),
        ("emea/paris", vec![]),
        ("amer", vec!["vpn"]),
        ("amer/nyc", vec![]),
    ] {
        let (id, token) = s.issue(json!({"group": group, "policies": policies})).await;
        ids.push(id);
        secrets.push(token);
    }
    // One exhausted, one revoked.
    assert_eq!(s.enroll(&secrets[2], "d1").await.status, StatusCode::OK);
    s.admin_post(
        &format!("/api/tokens/{}/revoke", ids[4]),
        json!({"reason": "r"}),
    )
    .await;
    let batch = s
        .admin_post("/api/batches", json!({"group": "apac", "count": 2}))
        .await
        .json();
    let batch_id = batch["batch"].as_str().unwrap().to_owned();

    let listed = |reply: Reply| -> Vec<String> {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        reply.json()["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = s.admin_get("/api/tokens").await;
    for secret in &secrets {
        assert!(
            !all.text().contains(&secret[5..]),
            "a token string is listed"
        );
    }
    assert_eq!(listed(all).len(), 7);
    let mut emea = listed(s.admin_get("/api/tokens?group=emea").await);
    emea.sort();
    let mut expected = ids[..3].to_vec();
    expected.sort();
    assert_eq!(emea, expected, "subgroups included");
    assert_eq!(listed(s.admin_get("/api/tokens?policy=vpn").await).len(), 2);
    assert_eq!(
        listed(s.admin_get("/api/tokens?status=exhausted").await),
        vec![ids[2].clone()]
    );
    assert_eq!(
        listed(s.admin_get("/api/tokens?status=revoked").await),
        vec![ids[4].clone()]
    );
    assert_eq!(
        listed(s.admin_get("/api/tokens?status=active").await).len(),
        5
    );
    assert_eq!(
        listed(s.admin_get(&format!("/api/tokens?batch={batch_id}")).await).len(),
        2
    );
    assert_eq!(
        listed(
            s.admin_get("/api/tokens?group=emea&policy=vpn&status=active")
                .await
        ),
        vec![ids[1].clone()]
    );
    // Empty parameters (as a form sends them) mean no filter.
    assert_eq!(
        listed(
            s.admin_get("/api/tokens?group=&status=&policy=&batch=")
                .await
        )
        .len(),
        7
    );

    // Paging: every token exactly once.
    let mut seen = Vec::new();
    let mut path = "/api/tokens?limit=3".to_owned();
    loop {
        let page = s.admin_get(&path).await.json();
        let tokens = page["tokens"].as_array().unwrap();
        assert!(tokens.len() <= 3);
        seen.extend(tokens.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/tokens?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 7);

    for (query, expected) in [
        ("status=bogus", "query parameter status: unknown status"),
        ("limit=0", "query parameter limit"),
        ("limit=1001", "query parameter limit"),
        ("cursor=nope", "query parameter cursor: invalid page cursor"),
        ("batch=xyz", "query parameter batch: invalid batch id"),
        ("group=bad%20group", "query parameter group"),
        ("grp=emea", "unknown field `grp`"),
    ] {
        let r = s.admin_get(&format!("/api/tokens?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(r.message().contains(expected), "{query}: {}", r.message());
    }
}

#[tokio::test]
async fn show_returns_the_record_and_its_redemptions() {
    let s = start().await;
    let (id, token) = s
        .issue(json!({"group": "sales", "max_uses": 3, "description": "Q3"}))
        .await;
    for device in ["SN-1", "SN-2"] {
        assert_eq!(s.enroll(&token, device).await.status, StatusCode::OK);
    }
    let r = s.admin_get(&format!("/api/tokens/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!r.text().contains(&token[5..]));
    let body = r.json();
    assert_eq!(body["token"]["id"], id);
    assert_eq!(body["token"]["uses"], 2);
    assert_eq!(body["token"]["remaining"], 1);
    assert_eq!(body["token"]["description"], "Q3");
    let devices: Vec<&str> = body["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["SN-1", "SN-2"]);
    assert!(body["redemptions"][0]["redeemed_at"].is_string());

    let mut rng = SystemRng::default();
    let unknown = TokenId::generate(&mut rng);
    let r = s.admin_get(&format!("/api/tokens/{unknown}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains(&unknown.to_string()));
    let r = s.admin_get("/api/tokens/not-an-id").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.message().contains("invalid token id"), "{}", r.message());
}

#[tokio::test]
async fn tokens_of_other_organizations_are_invisible() {
    let s = start().await;
    let service = s.app.service();
    let spec =
        onboarding_token::TokenSpec::new(OrgId::new("globex").unwrap(), "sales".parse().unwrap());
    let other = service.issue(spec).await.unwrap();
    let id = other.token.id();
    assert_eq!(
        s.admin_get(&format!("/api/tokens/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.admin_post(&format!("/api/tokens/{id}/revoke"), json!({}))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.admin_get(&format!("/api/tokens/{id}/qr.png"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.admin_get("/api/tokens").await.json()["tokens"], json!([]));
    // Devices enroll with any genuine token, whatever its organization.
    let r = s.enroll(other.secret.expose_secret(), "dev").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["organization"], "globex");
}

#[tokio::test]
async fn revoke_revokes_once_and_keeps_the_first_reason() {
    let s = start().await;
    let (id, token) = s.issue(json!({"group": "sales", "max_uses": 10})).await;
    let r = s
        .admin_post(
            &format!("/api/tokens/{id}/revoke"),
            json!({"reason": "sheet lost"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["newly_revoked"], true);
    assert_eq!(body["token"]["status"], "revoked");
    assert_eq!(body["token"]["revocation"]["reason"], "sheet lost");

    let again = s
        .admin_post(
            &format!("/api/tokens/{id}/revoke"),
            json!({"reason": "other"}),
        )
        .await
        .json();
    assert_eq!(again["newly_revoked"], false);
    assert_eq!(again["token"]["revocation"]["reason"], "sheet lost");
    assert_eq!(s.enroll(&token, "dev").await.status, StatusCode::FORBIDDEN);

    // An empty body revokes without a reason.
    let (id2, _) = s.issue(json!({"group": "sales"})).await;
    let r = s
        .send(
            s.http
                .post(s.url(&format!("/api/tokens/{id2}/revoke")))
                .bearer_auth(ADMIN),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["token"]["revocation"]["reason"], "");

    let (id3, _) = s.issue(json!({"group": "sales"})).await;
    let r = s
        .admin_post(
            &format!("/api/tokens/{id3}/revoke"),
            json!({"reason": "r".repeat(2000)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.message().contains("reason is longer than"),
        "{}",
        r.message()
    );
    let r = s
        .admin_post(&format!("/api/tokens/{id3}/revoke"), json!({"why": "x"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.admin_get(&format!("/api/tokens/{id3}")).await.json()["token"]["status"],
        "active"
    );
    let mut rng = SystemRng::default();
    let unknown = TokenId::generate(&mut rng);
    let r = s
        .admin_post(
            &format!("/api/tokens/{unknown}/revoke"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn qr_codes_scan_back_to_the_token() {
    let s = start().await;
    let (id, token) = s.issue(json!({"group": "sales"})).await;

    let png = s.admin_get(&format!("/api/tokens/{id}/qr.png")).await;
    assert_eq!(png.status, StatusCode::OK);
    assert_eq!(png.header("content-type"), "image/png");
    assert_eq!(png.header("cache-control"), "no-store");
    assert_eq!(
        png.header("content-disposition"),
        format!("inline; filename=\"{id}.png\"")
    );
    assert_eq!(decode_qr_png(&png.body), vec![token.clone()]);

    let hq = s
        .admin_get(&format!("/api/tokens/{id}/qr.png?ec=H&scale=4"))
        .await;
    assert_eq!(decode_qr_png(&hq.body), vec![token.clone()]);

    let svg = s.admin_get(&format!("/api/tokens/{id}/qr.svg")).await;
    assert_eq!(svg.status, StatusCode::OK);
    assert_eq!(svg.header("content-type"), "image/svg+xml");
    assert!(svg.text().starts_with("<svg") && !svg.text().contains(&token));

    let typed = s
        .admin_get(&format!("/api/tokens/{id}/qr.png?format=grouped"))
        .await;
    assert_eq!(decode_qr_png(&typed.body)[0].replace(' ', ""), token);

    for (query, status, expected) in [
        (
            "format=android",
            StatusCode::UNPROCESSABLE_ENTITY,
            "--android-component",
        ),
        ("format=url", StatusCode::UNPROCESSABLE_ENTITY, "--url-base"),
        (
            "format=jpeg",
            StatusCode::BAD_REQUEST,
            "unknown payload format",
        ),
        ("ec=Z", StatusCode::BAD_REQUEST, "error-correction level"),
        ("scale=0", StatusCode::BAD_REQUEST, "scale"),
        ("scale=65", StatusCode::BAD_REQUEST, "scale"),
        ("size=3", StatusCode::BAD_REQUEST, "unknown field `size`"),
    ] {
        let r = s
            .admin_get(&format!("/api/tokens/{id}/qr.png?{query}"))
            .await;
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert!(r.message().contains(expected), "{query}: {}", r.message());
    }
}

#[tokio::test]
async fn android_qr_codes_use_the_server_settings() {
    let android = AndroidProvisioning::new(COMPONENT, CHECKSUM, DOWNLOAD).unwrap();
    let s = start_with(Options {
        payloads: PayloadConfig::new().with_android(android),
        ..Options::default()
    })
    .await;
    let info = s.admin_get("/api/info").await.json();
    assert!(
        info["formats"]
            .as_array()
            .unwrap()
            .contains(&json!("android"))
    );
    assert!(!info["formats"].as_array().unwrap().contains(&json!("url")));
    let (id, token) = s.issue(json!({"group": "sales"})).await;
    let png = s
        .admin_get(&format!("/api/tokens/{id}/qr.png?format=android&scale=4"))
        .await;
    assert_eq!(png.status, StatusCode::OK, "{}", png.text());
    let scanned: Value = serde_json::from_str(&decode_qr_png(&png.body)[0]).unwrap();
    assert_eq!(
        scanned["android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"],
        COMPONENT
    );
    assert_eq!(
        scanned["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"],
        token
    );
}

// ---------------------------------------------------------------------------------------
// Admin API: batches

fn count_cards(html: &str) -> usize {
    html.matches("<article class=\"card\">").count()
}

#[tokio::test]
async fn batches_return_the_manifest_and_reproduce_the_sheet() {
    let s = start().await;
    let r = s
        .admin_post(
            "/api/batches",
            json!({"group": "emea/berlin", "count": 7, "policies": ["wifi"], "max_uses": 2, "description": "Berlin"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("cache-control"), "no-store");
    let body = r.json();
    let batch = body["batch"].as_str().unwrap().to_owned();
    assert_eq!(body["count"], 7);
    assert_eq!(body["sheet"], format!("/api/batches/{batch}/sheet.html"));
    let entries = body["manifest"]["tokens"].as_array().unwrap();
    assert_eq!(entries.len(), 7);
    assert_eq!(body["manifest_csv"].as_str().unwrap().lines().count(), 8);
    let tokens: Vec<String> = entries
        .iter()
        .map(|e| {
            assert_eq!(e["batch"], batch);
            assert_eq!(e["group"], "emea/berlin");
            assert_eq!(e["limit"], 2);
            e["token"].as_str().unwrap().to_owned()
        })
        .collect();

    let sheet = s
        .admin_get(&format!("/api/batches/{batch}/sheet.html"))
        .await;
    assert_eq!(sheet.status, StatusCode::OK, "{}", sheet.text());
    assert_eq!(sheet.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(sheet.header("cache-control"), "no-store");
    assert!(
        sheet
            .header("content-security-policy")
            .starts_with("default-src 'none'; style-src 'unsafe-inline'")
    );
    let html = sheet.text();
    assert_eq!(count_cards(&html), 7);
    assert_eq!(
        html.matches("class=\"page\"").count(),
        2,
        "six cards per page"
    );
    assert!(html.contains(&format!("batch {}", &batch[..8])));
    for token in &tokens {
        // Every token of the batch is on the sheet, in its typed form.
        let body = &token[5..];
        let first_group = &body[..4];
        let last_group = &body[44..];
        assert!(html.contains(first_group) && html.contains(last_group));
    }
    // The manifest's tokens enroll devices.
    for token in &tokens {
        assert_eq!(s.enroll(token, "dev").await.status, StatusCode::OK);
    }

    let letter = s
        .admin_get(&format!(
            "/api/batches/{batch}/sheet.html?paper=letter&title=Lobby%20kiosks&ec=L"
        ))
        .await;
    assert!(
        letter.text().contains("size:letter")
            && letter.text().contains("<title>Lobby kiosks</title>")
    );
    for (query, status) in [
        ("paper=a3", StatusCode::BAD_REQUEST),
        ("format=android", StatusCode::UNPROCESSABLE_ENTITY),
        ("colour=red", StatusCode::BAD_REQUEST),
    ] {
        let r = s
            .admin_get(&format!("/api/batches/{batch}/sheet.html?{query}"))
            .await;
        assert_eq!(r.status, status, "{query}: {}", r.text());
    }
    let mut rng = SystemRng::default();
    let unknown = onboarding_token::BatchId::generate(&mut rng);
    assert_eq!(
        s.admin_get(&format!("/api/batches/{unknown}/sheet.html"))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.admin_get("/api/batches/nope/sheet.html").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn batches_from_a_csv_specification() {
    let s = start().await;
    let csv = "group,policies,count,limit,expires,description\n\
               emea/berlin,wifi;vpn,2,1,7d,Berlin laptops\n\
               amer/nyc,,1,unlimited,never,\"Kiosks, lobby\"\n";
    let r = s.admin_post("/api/batches", json!({"spec_csv": csv})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let body = r.json();
    assert_eq!(body["count"], 3);
    let entries = body["manifest"]["tokens"].as_array().unwrap();
    assert_eq!(entries[2]["limit"], "unlimited");
    assert_eq!(entries[2]["description"], "Kiosks, lobby");
    let sheet = s.admin_get(body["sheet"].as_str().unwrap()).await;
    assert_eq!(count_cards(&sheet.text()), 3);

    let bad = "group,count\nemea,many\nbad group!,2\n";
    let r = s.admin_post("/api/batches", json!({"spec_csv": bad})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = r.message();
    assert!(
        message.starts_with("spec_csv: bulk spec has 2 errors"),
        "{message}"
    );
    assert!(
        message.contains("line 2") && message.contains("line 3"),
        "{message}"
    );

    for (spec, expected) in [
        (json!({"spec_csv": csv, "group": "x"}), "leave out group"),
        (json!({"group": "x"}), "give count"),
        (
            json!({"group": "x", "count": 0}),
            "count: must be at least 1",
        ),
        (
            json!({"group": "x", "count": 51}),
            "at most 50 tokens per batch",
        ),
        (
            json!({"spec_csv": "group,count\nx,51\n"}),
            "at most 50 tokens per batch",
        ),
        (json!({"count": 2}), "group is required"),
    ] {
        let r = s.admin_post("/api/batches", spec.clone()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{spec}");
        assert!(r.message().contains(expected), "{spec}: {}", r.message());
    }
    // Only the first batch was stored.
    assert_eq!(
        s.admin_get("/api/tokens").await.json()["tokens"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

// ---------------------------------------------------------------------------------------
// Console and headers

#[tokio::test]
async fn console_and_security_headers() {
    let s = start().await;
    let page = s.send(s.http.get(s.url("/"))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    let csp = page.header("content-security-policy").to_owned();
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!script_src.contains("unsafe"), "{csp}");
    assert!(!page.text().contains("<script>"), "no inline script");
    assert!(
        page.text()
            .contains("<script src=\"/console.js\" defer></script>")
    );
    let js = s.send(s.http.get(s.url("/console.js"))).await;
    assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
    assert!(js.text().contains("sessionStorage"));
    assert!(
        !js.text().contains("innerHTML"),
        "values go in as text, never as HTML"
    );
    let css = s.send(s.http.get(s.url("/console.css"))).await;
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");

    for reply in [
        page,
        js,
        css,
        s.enroll("x", "y").await,
        s.admin_get("/api/info").await,
        s.send(s.http.get(s.url("/api/tokens"))).await,
        s.send(s.http.get(s.url("/nowhere"))).await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), "nosniff");
        assert_eq!(reply.header("referrer-policy"), "no-referrer");
        assert_eq!(reply.header("x-frame-options"), "DENY");
        assert!(!reply.header("content-security-policy").is_empty());
    }
    let missing = s.send(s.http.get(s.url("/nowhere"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.json()["error"], "not found");
    let wrong_method = s.send(s.http.get(s.url("/api/enroll"))).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);

    let info = s.admin_get("/api/info").await.json();
    assert_eq!(info["organization"], "acme");
    assert_eq!(info["formats"], json!(["token", "grouped", "kme"]));
    assert_eq!(info["max_batch"], 50);
}

// ---------------------------------------------------------------------------------------
// The server process

/// Runs the server's `main` (the same `cli::run_cli` the example's `main` calls) when this
/// test binary is started by [`server_process`]; does nothing in a normal test run.
#[test]
#[ignore = "the entry point of the server processes other tests start"]
fn server_subprocess_entry() {
    let Some(args) = std::env::var_os("MDM_SERVER_TEST_ARGS") else {
        return;
    };
    let args: Vec<String> = serde_json::from_str(args.to_str().unwrap()).unwrap();
    let argv = std::iter::once("mdm_server".into()).chain(args.into_iter().map(Into::into));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let code = runtime.block_on(cli::run_cli(
        argv,
        std::env::var_os(app::ADMIN_KEY_ENV),
        cli::shutdown_signal(),
    ));
    std::process::exit(i32::from(code));
}

/// Starts the server as its own process with `args` and, if given, the admin key.
fn server_process(args: &[&str], admin_key: Option<&str>) -> Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "server_subprocess_entry",
            "--nocapture",
        ])
        .env("MDM_SERVER_TEST_ARGS", serde_json::to_string(args).unwrap())
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ONBOARDING_TOKEN_") {
            command.env_remove(name);
        }
    }
    if let Some(key) = admin_key {
        command.env(app::ADMIN_KEY_ENV, key);
    }
    command.spawn().unwrap()
}

/// Sends a signal with the shell's `kill` builtin (no libc binding needed).
fn signal(pid: u32, name: &str) -> bool {
    Command::new("sh")
        .args(["-c", "kill -s \"$1\" \"$2\"", "sh", name, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits for the process to exit, at most `deadline`; returns its code and stderr.
fn wait_exit(mut child: Child, deadline: Duration) -> (Option<i32>, String) {
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        let status = child.wait().unwrap();
        let _ = tx.send((status.code(), text));
    });
    rx.recv_timeout(deadline).unwrap_or_else(|_| {
        signal(pid, "KILL");
        panic!("the server process did not exit in time");
    })
}

#[test]
fn the_server_refuses_to_start_without_a_usable_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.db");
    let key = dir.path().join("server.key");
    let args = [
        "--db",
        db.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    for (admin_key, expected) in [
        (None, "ONBOARDING_TOKEN_ADMIN_KEY is not set"),
        (
            Some("short"),
            "ONBOARDING_TOKEN_ADMIN_KEY is too short (5 characters)",
        ),
        (
            Some("has a space in it, long enough"),
            "ONBOARDING_TOKEN_ADMIN_KEY must be printable ASCII without spaces",
        ),
    ] {
        let (code, stderr) = wait_exit(server_process(&args, admin_key), Duration::from_secs(60));
        assert_eq!(code, Some(2), "{admin_key:?}: {stderr}");
        assert!(
            stderr.contains(&format!("mdm_server: error: {expected}")),
            "{stderr}"
        );
    }
    assert!(
        !key.exists() && !db.exists(),
        "nothing is created before the key is checked"
    );

    let (code, stderr) = wait_exit(
        server_process(
            &["--enroll-burst", "0", "--key", key.to_str().unwrap()],
            Some(ADMIN),
        ),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("rate limit needs a burst of at least 1"),
        "{stderr}"
    );
    let (code, stderr) = wait_exit(
        server_process(&["--android-component", COMPONENT], Some(ADMIN)),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("need all of --android-component"),
        "{stderr}"
    );
    let (code, stderr) = wait_exit(
        server_process(&["--listen", "nowhere"], Some(ADMIN)),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[tokio::test]
async fn the_server_process_starts_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tokens.db");
    let key = dir.path().join("server.key");
    let mut child = server_process(
        &[
            "--db",
            db.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--org",
            "initech",
        ],
        Some(ADMIN),
    );
    // Read stdout until the server says where it listens (bounded by a deadline).
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = line.strip_prefix("listening on http://") {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr = rx
        .recv_timeout(deadline - Instant::now())
        .expect("the server printed its address");
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();

    let info: Value = http
        .get(format!("{base}/api/info"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["organization"], "initech");
    let issued: Value = http
        .post(format!("{base}/api/tokens"))
        .bearer_auth(ADMIN)
        .json(&json!({"group": "sales"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let enrolled = http
        .post(format!("{base}/api/enroll"))
        .json(&json!({"token": issued["token"], "device_id": "SN-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(enrolled.status(), StatusCode::OK);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is private");
        let keyring = onboarding_token::keyfile::load(&key).unwrap();
        assert!(
            keyring
                .verify_str(issued["token"].as_str().unwrap())
                .is_ok(),
            "tokenctl's key file format"
        );

        assert!(signal(child.id(), "TERM"), "SIGTERM sent");
        let (code, stderr) = wait_exit(child, Duration::from_secs(60));
        assert_eq!(code, Some(0), "{stderr}");
        assert!(
            stderr.contains("created key file") && stderr.contains("shutting down"),
            "{stderr}"
        );
        assert!(stderr.contains("issued token"), "{stderr}");
        assert!(
            !stderr.contains(issued["token"].as_str().unwrap()),
            "no token in the log"
        );
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
}
