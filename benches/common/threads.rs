//! The thread cases, one thread or several on the same total work, shared by `hot_path`
//! (group `threads`) and `paired`. Each returns the wall time from a common start until
//! the last thread finishes, scaled to exactly `work` operations.

use std::hint::black_box;
use std::time::Duration;

use onboarding_token::{DeviceId, GroupId, MemoryStore, Onboarding, OrgId, TokenSpec, UsageLimit};

use super::{DEVICES_PER_TOKEN, Fixture, parallel, ready, texts};

/// One case: `work` operations on `threads` threads.
pub type Case = fn(&Fixture, usize, usize) -> Duration;

/// Each thread's share of `work`, a device pool per thread, and the scale from the
/// operations done (`share * threads`) to `work`.
fn shares(fx: &Fixture, work: usize, threads: usize) -> (usize, Vec<Vec<DeviceId>>, f64) {
    let per = work.div_ceil(threads);
    let pools = (0..threads)
        .map(|_| fx.devices.take(DEVICES_PER_TOKEN as u64))
        .collect();
    (per, pools, work as f64 / (per * threads) as f64)
}

fn redeem_all(service: &Onboarding<MemoryStore>, tokens: &[String], pool: &[DeviceId]) {
    for (token, device) in tokens.iter().zip(pool.iter().cycle()) {
        let enrollment = ready(service.redeem(black_box(token), device));
        black_box(enrollment.expect("redeems"));
    }
}

/// Fresh single-use tokens in one shared store, each redeemed once; thread `k`'s tokens
/// come from `spec_for(k)`.
fn shared_store(
    fx: &Fixture,
    work: usize,
    threads: usize,
    spec_for: impl Fn(usize) -> TokenSpec,
) -> Duration {
    let (per, pools, scale) = shares(fx, work, threads);
    let store = MemoryStore::with_capacity(per * threads);
    let runs: Vec<_> = pools
        .into_iter()
        .enumerate()
        .map(|(k, pool)| (texts(&fx.mint_spec(&store, per, &spec_for(k))), pool))
        .collect();
    let service = fx.service(store);
    parallel(&runs, threads, |(tokens, pool)| {
        redeem_all(&service, tokens, pool)
    })
    .mul_f64(scale)
}

/// `distinct_tokens`: fresh single-use tokens of one batch (one specification, so one
/// shared assignment) in one shared store, each redeemed once.
pub fn distinct_tokens(fx: &Fixture, work: usize, threads: usize) -> Duration {
    shared_store(fx, work, threads, |_| fx.spec(UsageLimit::Once))
}

/// `distinct_groups`: the same, each thread's tokens of an organization and group of its
/// own (the threads share no assignment and no reference count).
pub fn distinct_groups(fx: &Fixture, work: usize, threads: usize) -> Duration {
    shared_store(fx, work, threads, |k| {
        TokenSpec::new(
            OrgId::new(format!("org-{k}")).expect("org"),
            GroupId::new(format!("site-{k}")).expect("group"),
        )
        .with_policies(fx.policies.clone())
    })
}

/// `separate_stores`: as `distinct_tokens`, but each thread has a store and service of its
/// own: the threads share nothing of this crate's, the most a shared store could scale.
pub fn separate_stores(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools, scale) = shares(fx, work, threads);
    let runs: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            // A specification of each thread's own: equal values, but not one shared `Arc`.
            let spec = fx.spec(UsageLimit::Once);
            let store = MemoryStore::with_capacity(per);
            let tokens = texts(&fx.mint_spec(&store, per, &spec));
            (fx.service(store), tokens, pool)
        })
        .collect();
    parallel(&runs, threads, |(service, tokens, pool)| {
        redeem_all(service, tokens, pool)
    })
    .mul_f64(scale)
}

/// `verify_only`: parse and verify, no store: the machine's ceiling for this work.
pub fn verify_only(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools, scale) = shares(fx, work, threads);
    let store = MemoryStore::new();
    let tokens = texts(&fx.mint(&store, DEVICES_PER_TOKEN, UsageLimit::Once));
    let service = fx.service(store);
    parallel(&pools, threads, |_| {
        for token in tokens.iter().cycle().take(per) {
            black_box(service.verify(black_box(token)).expect("verifies"));
        }
    })
    .mul_f64(scale)
}

/// `hot_token`: every thread redeems the same unlimited tokens, from devices of its own
/// (so every redemption consumes). The threads walk one token sequence in step; each token
/// gets `DEVICES_PER_TOKEN` redemptions in all, however many threads share them, and then
/// the next takes over, as in `redeem_memory`.
pub fn hot_token(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools, scale) = shares(fx, work, threads);
    let per_thread_per_token = DEVICES_PER_TOKEN / threads;
    let store = MemoryStore::new();
    let tokens = texts(&fx.mint(
        &store,
        per.div_ceil(per_thread_per_token),
        UsageLimit::Unlimited,
    ));
    let service = fx.service(store);
    parallel(&pools, threads, |pool| {
        for i in 0..per {
            let token = tokens[i / per_thread_per_token].as_str();
            let device = &pool[i % DEVICES_PER_TOKEN];
            let enrollment = ready(service.redeem(black_box(token), device));
            black_box(enrollment.expect("redeems"));
        }
    })
    .mul_f64(scale)
}
