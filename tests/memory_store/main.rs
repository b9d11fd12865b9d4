//! `MemoryStore`: exactness under parallel redemptions, the store contract, and a
//! model-based test against a plain model of the rules.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use chrono::{DateTime, TimeDelta, Utc};
use onboarding_token::rules::RedeemRequest;
use onboarding_token::*;
use proptest::prelude::*;
// Starts in March 2026; every spec is acme's.
use support::fixture::{acme_spec as spec, dev, keyring, t0_2026 as t0, verified_by};

fn ring() -> Keyring {
    keyring([5, 5, 5, 5], [5; 32])
}

type Service = Onboarding<MemoryStore, ManualClock>;

fn service() -> Arc<Service> {
    Arc::new(Onboarding::new(ring(), MemoryStore::new()).with_clock(ManualClock::new(t0())))
}

/// A record built without the service, for store-level tests.
fn record(id: u8, limit: UsageLimit, group: &str) -> Token {
    spec(group)
        .with_usage_limit(limit)
        .with_expiry(ExpirySpec::Never)
        .into_token(
            TokenId::from_bytes([id; 16]),
            ring().active_key_id(),
            t0(),
            None,
        )
        .unwrap()
}

fn verified(id: TokenId) -> VerifiedToken {
    verified_by(&ring(), id)
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    consumed: usize,
    replays: usize,
    exhausted: usize,
}

/// `devices.len()` tasks on a multi-threaded runtime, released together by a barrier, each
/// redeeming one token with a limit of `limit` from its device.
async fn race(limit: UsageLimit, devices: Vec<DeviceId>) -> (Tally, Token, Vec<Redemption>) {
    let service = service();
    let issued = service
        .issue(spec("g").with_usage_limit(limit))
        .await
        .unwrap();
    let text: Arc<str> = issued.secret.expose_secret().into();
    let barrier = Arc::new(tokio::sync::Barrier::new(devices.len()));
    let mut handles = Vec::new();
    for device in devices {
        let (service, text, barrier) = (
            Arc::clone(&service),
            Arc::clone(&text),
            Arc::clone(&barrier),
        );
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            service.redeem(&text, &device).await
        }));
    }
    let mut tally = Tally::default();
    for h in handles {
        match h.await.unwrap() {
            Ok(e) if e.replay => tally.replays += 1,
            Ok(e) => {
                assert!(limit.max_uses().is_none_or(|m| e.uses <= u64::from(m)));
                tally.consumed += 1
            }
            Err(err) => {
                assert!(
                    matches!(err.rejection(), Some(Rejection::Exhausted { .. })),
                    "{err:?}"
                );
                tally.exhausted += 1
            }
        }
    }
    let token = service.get(issued.token.id()).await.unwrap().unwrap();
    let redemptions = service.redemptions(issued.token.id()).await.unwrap();
    (tally, token, redemptions)
}

fn distinct(n: usize) -> Vec<DeviceId> {
    (0..n).map(|i| dev(&format!("SN-{i:04}"))).collect()
}

fn assert_redemptions_consistent(token: &Token, redemptions: &[Redemption]) {
    assert_eq!(redemptions.len() as u64, token.uses());
    let unique: BTreeSet<_> = redemptions.iter().map(|r| r.device.clone()).collect();
    assert_eq!(
        unique.len(),
        redemptions.len(),
        "a device was recorded twice"
    );
}

mod contract;
mod model;
mod parallel;
