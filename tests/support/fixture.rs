//! The fixed values the tests build on (instants, names, specs, keys, token strings), and
//! [`Fixture`], which builds records and redemption requests the way the service does.
//!
//! Where test files use different values for the same thing (another start instant, their
//! own key), each value has a name of its own here or is a parameter: a file that imports
//! one under its local name (`use support::fixture::t0_2026 as t0;`) says which it uses.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use onboarding_token::rules::{Leeway, RedeemRequest};
use onboarding_token::*;

// ---------------------------------------------------------------------------------------
// Instants: every test passes `now` explicitly or runs on a `ManualClock`.

/// 2030-01-01T00:00:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// 2030-01-01T09:00:00Z: [`t0`] at nine in the morning (the bad-input catalogue's start).
pub fn t0_9am() -> DateTime<Utc> {
    t0() + TimeDelta::hours(9)
}

/// 2026-03-01T09:00:00Z (the start of the service, rules, store, secrets and bulk tests).
pub fn t0_2026() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0)
        .single()
        .expect("a valid date")
}

// ---------------------------------------------------------------------------------------
// Names, specs, limits

pub fn org(name: &str) -> OrgId {
    OrgId::new(name).expect("a valid organization id")
}

/// The organization `acme`.
pub fn acme() -> OrgId {
    org("acme")
}

pub fn group(name: &str) -> GroupId {
    GroupId::new(name).expect("a valid group id")
}

pub fn policy(name: &str) -> PolicyId {
    PolicyId::new(name).expect("a valid policy id")
}

pub fn dev(name: &str) -> DeviceId {
    DeviceId::new(name).expect("a valid device id")
}

/// `SN-00000`, `SN-00001`, …
pub fn device(i: usize) -> DeviceId {
    DeviceId::new(format!("SN-{i:05}")).expect("a valid device id")
}

/// A spec for group `g` of organization `o`, with the defaults.
pub fn spec(o: &str, g: &str) -> TokenSpec {
    TokenSpec::new(org(o), group(g))
}

/// A spec for group `g` of `acme`, with the defaults.
pub fn acme_spec(g: &str) -> TokenSpec {
    TokenSpec::new(acme(), group(g))
}

/// A spec for `acme`/`fleet`, with the defaults.
pub fn fleet_spec() -> TokenSpec {
    acme_spec("fleet")
}

pub fn limited(n: u32) -> UsageLimit {
    UsageLimit::limited(n).expect("a positive limit")
}

// ---------------------------------------------------------------------------------------
// Keys and token strings

/// The signing key with id `id` and secret `secret`.
pub fn signing_key(id: [u8; 4], secret: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(KeyId::from_bytes(id), &secret)
}

/// A keyring whose active key has id `id` and secret `secret` (each test file picks its
/// own, so its token strings are its own).
pub fn keyring(id: [u8; 4], secret: [u8; 32]) -> Keyring {
    Keyring::new(signing_key(id, secret))
}

/// Key `n` of the service tests: id `[n; 4]`, secret `[n; 32]`.
pub fn uniform_key(n: u8) -> SigningKey {
    signing_key([n; 4], [n; 32])
}

/// A key of the keyring tests: id `[id, 0, 0, id]`, secret `[fill; 32]` (two keys can share
/// an id and differ in secret).
pub fn filled_key(id: u8, fill: u8) -> SigningKey {
    signing_key([id, 0, 0, id], [fill; 32])
}

/// Varied secret bytes, so that no window of their encodings is a common string: byte `i`
/// is `i * step + start` (wrapping).
pub fn stepped_secret(step: u8, start: u8) -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(step).wrapping_add(start))
}

/// Key `seed` of the bad-input catalogue: id `[seed, 0xee, 1, 2]`, secret stepped by 29
/// from `seed`.
pub fn catalogue_key(seed: u8) -> SigningKey {
    signing_key([seed, 0xee, 0x01, 0x02], stepped_secret(29, seed))
}

/// Key `seed` of the secret-leak tests: id `[seed, 1, 2, 3]`, secret stepped by 37 from
/// `seed`, each byte rotated left by 3.
pub fn leak_test_key(seed: u8) -> SigningKey {
    signing_key(
        [seed, 1, 2, 3],
        stepped_secret(37, seed).map(|b| b.rotate_left(3)),
    )
}

/// The secret-hygiene tests' key: id `hyg1`, secret stepped by 53 from 11.
pub fn hygiene_key() -> SigningKey {
    signing_key(*b"hyg1", stepped_secret(53, 11))
}

/// The string of token `id` signed by the key with id `key` and secret `[secret; 32]`.
pub fn token_from(key: [u8; 4], secret: u8, id: [u8; 16]) -> TokenString {
    SigningKey::from_bytes(KeyId::from_bytes(key), &[secret; 32]).sign(&TokenId::from_bytes(id))
}

/// Token `id` as `ring` verifies it, signed by its active key.
pub fn verified_by(ring: &Keyring, id: TokenId) -> VerifiedToken {
    ring.verify_str(ring.sign(&id).expose_secret())
        .expect("the keyring's own signature verifies")
}

// ---------------------------------------------------------------------------------------
// Records and requests, as the service builds them

pub struct Fixture {
    pub keyring: Keyring,
}

impl Fixture {
    pub fn new() -> Self {
        Self {
            keyring: keyring(*b"test", [7; 32]),
        }
    }

    /// A record for `spec` issued at `now`.
    pub fn token(&self, spec: TokenSpec, now: DateTime<Utc>) -> Token {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        spec.into_token(
            TokenId::generate(&mut rng),
            self.keyring.active_key_id(),
            now,
            None,
        )
        .expect("a valid spec")
    }

    /// A token of `acme`/`fleet` with `limit`, valid from `t0()` for 7 days.
    pub fn limited(&self, limit: UsageLimit) -> Token {
        self.token(fleet_spec().with_usage_limit(limit), t0())
    }

    pub fn verified(&self, token: &Token) -> VerifiedToken {
        verified_by(&self.keyring, token.id())
    }

    pub fn request<'a>(
        &self,
        token: &Token,
        device: &'a DeviceId,
        now: DateTime<Utc>,
    ) -> RedeemRequest<'a> {
        RedeemRequest {
            token: self.verified(token),
            device,
            now,
            leeway: Leeway::ZERO,
        }
    }
}
