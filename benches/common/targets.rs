//! The four `hot_path` benchmarks the ratio targets compare, as `iters -> elapsed` runs that
//! both criterion (`hot_path`) and the paired rounds (`paired`) time.

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use onboarding_token::chrono::Utc;
use onboarding_token::{DeviceId, MemoryStore, Onboarding, UsageLimit};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{DEVICES_PER_TOKEN, Fixture, ready, texts};

/// Tokens in the store `redeem_memory` redeems from.
pub const STORE_TOKENS: usize = 100_000;

#[derive(Serialize, Deserialize)]
struct JwtClaims {
    jti: String,
    group: String,
    exp: u64,
    nbf: u64,
    limit: Option<u32>,
}

/// A store of [`STORE_TOKENS`] unlimited tokens and everything the four benchmarks need,
/// built before any timing.
pub struct Targets {
    pub service: Onboarding<MemoryStore>,
    /// Token 0, for the benchmarks that do not redeem.
    pub text: String,
    strings: Vec<String>,
    pool: Vec<DeviceId>,
    /// Redemptions so far: redemption `n` goes to token `1 + n / DEVICES_PER_TOKEN`.
    redeemed: Cell<usize>,
    forged: String,
    forger: DeviceId,
    keyed: Hmac<Sha256>,
    jwt: String,
    decoding_key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

impl Targets {
    pub fn new(fx: &Fixture) -> Self {
        let store = MemoryStore::with_capacity(STORE_TOKENS);
        let strings = texts(&fx.mint(&store, STORE_TOKENS, UsageLimit::Unlimited));
        let text = strings[0].clone();
        // Well formed, wrong tag: the last character changed.
        let mut forged = text.clone();
        let last = forged.pop().expect("non-empty");
        forged.push(if last == 'A' { 'B' } else { 'A' });

        // The peer: an HS256 JWT with the same claims, key and validation built once.
        let now = Utc::now().timestamp() as u64;
        let claims = JwtClaims {
            jti: fx
                .keyring
                .verify_str(&text)
                .expect("ours")
                .token_id()
                .to_string(),
            group: fx.group.to_string(),
            exp: now + 7 * 24 * 3600,
            nbf: now - 1,
            limit: None,
        };
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&fx.secret),
        )
        .expect("encodes");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "jti"]);

        Self {
            service: fx.service(store),
            text,
            strings,
            pool: fx.devices.take(DEVICES_PER_TOKEN as u64),
            redeemed: Cell::new(0),
            forged,
            forger: DeviceId::new("SN-FORGER").expect("device"),
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(&fx.secret).expect("any length"),
            jwt,
            decoding_key: jsonwebtoken::DecodingKey::from_secret(&fx.secret),
            validation,
        }
    }

    /// `floor_decode_verify`: base64ct-decode token 0 and verify its tag with a
    /// precomputed HMAC key state, nothing else.
    pub fn floor(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let input = black_box(self.text.as_str()).as_bytes();
            let mut payload = [0u8; 36];
            let ok = Base64UrlUnpadded::decode(&input[5..], &mut payload).is_ok();
            let mut mac = self.keyed.clone();
            mac.update(b"obt1");
            mac.update(&payload[..20]);
            black_box(ok & mac.verify_truncated_left(&payload[20..]).is_ok());
        }
        start.elapsed()
    }

    /// `redeem_memory`: every redemption consumes. Device `n % POOL` redeems unlimited token
    /// `n / POOL` (of the 100,000; token 0 stays fresh for the other benchmarks), so each
    /// token gets `DEVICES_PER_TOKEN` new devices and then the next token takes over.
    pub fn redeem(&self, iters: u64) -> Duration {
        let first = self.redeemed.get();
        self.redeemed.set(first + iters as usize);
        let start = Instant::now();
        for n in first..first + iters as usize {
            let token = self.strings[1 + (n / DEVICES_PER_TOKEN) % (STORE_TOKENS - 1)].as_str();
            let device = &self.pool[n % DEVICES_PER_TOKEN];
            let enrollment = ready(self.service.redeem(black_box(token), device));
            black_box(enrollment.expect("redeems"));
        }
        start.elapsed()
    }

    /// `reject_forged`: `Onboarding::redeem` of a well-formed string with a wrong tag.
    pub fn reject_forged(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let err = ready(self.service.redeem(black_box(&self.forged), &self.forger));
            black_box(err.expect_err("forged"));
        }
        start.elapsed()
    }

    /// `jsonwebtoken_hs256`: decode and validate the equivalent HS256 JWT.
    pub fn jwt(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            let decoded = jsonwebtoken::decode::<JwtClaims>(
                black_box(&self.jwt),
                &self.decoding_key,
                &self.validation,
            );
            black_box(decoded.expect("validates"));
        }
        start.elapsed()
    }

    /// The device pool of `redeem_memory` (every device is new to a fresh token, so other
    /// benchmarks reuse it).
    pub fn pool(&self) -> &[DeviceId] {
        &self.pool
    }
}
