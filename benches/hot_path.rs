//! The enrollment hot path measured against its physical floor and against an HS256 JWT.
//!
//! Group `hot_path` (ids read by scripts, see BENCHMARKS.md):
//! `floor_decode_verify`, `redeem_memory`, `redeem_single_use`, `reject_forged`,
//! `verify_only`, `issue_memory`, `jsonwebtoken_hs256`.
//! Group `floor_parts`: the floor's decode and tag check apart.
//! Group `device_index`: an unlimited token that 100,000 devices already redeemed.
//! Group `threads`: one thread against two, on distinct tokens and on one hot token.
//!
//! Run: `cargo bench --bench hot_path -- --warm-up-time 1 --measurement-time 3`.
//!
//! The memory store's futures complete on their first poll, so the benches poll them once
//! with a no-op waker (`common::ready`) instead of paying for an executor.

mod common;

use std::hint::black_box;
use std::time::Instant;

use base64ct::{Base64UrlUnpadded, Encoding};
use common::targets::Targets;
use common::threads::{self, Case};
use common::{Fixture, ready, texts};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use onboarding_token::{MemoryStore, UsageLimit};
use sha2::Sha256;

fn hot_path(c: &mut Criterion) {
    let fx = Fixture::new();
    let targets = Targets::new(&fx);
    let (service, text, pool) = (&targets.service, targets.text.as_str(), targets.pool());

    let mut group = c.benchmark_group("hot_path");
    group.throughput(Throughput::Elements(1));

    // The floor: base64ct-decode and verify the tag with a precomputed HMAC key state.
    group.bench_function("floor_decode_verify", |b| {
        b.iter_custom(|iters| targets.floor(iters))
    });

    // Every redemption consumes (see `Targets::redeem`).
    group.bench_function("redeem_memory", |b| {
        b.iter_custom(|iters| targets.redeem(iters))
    });

    // Fresh single-use tokens in a fresh store, each redeemed once (by a device of the pool:
    // every token is new to it).
    group.bench_function("redeem_single_use", |b| {
        b.iter_custom(|iters| {
            let store = MemoryStore::with_capacity(iters as usize);
            let tokens = texts(&fx.mint(&store, iters as usize, UsageLimit::Once));
            let service = fx.service(store);
            let start = Instant::now();
            for (token, device) in tokens.iter().zip(pool.iter().cycle()) {
                let enrollment = ready(service.redeem(black_box(token), device));
                black_box(enrollment.expect("redeems"));
            }
            start.elapsed()
        })
    });

    group.bench_function("reject_forged", |b| {
        b.iter_custom(|iters| targets.reject_forged(iters))
    });

    group.bench_function("verify_only", |b| {
        b.iter(|| service.verify(black_box(text)).expect("verifies"))
    });

    // Issue into a fresh store per sample (so the store does not grow without bound).
    let spec = fx.spec(UsageLimit::Once);
    group.bench_function("issue_memory", |b| {
        b.iter_custom(|iters| {
            let service = fx.service(MemoryStore::new());
            let start = Instant::now();
            for _ in 0..iters {
                black_box(ready(service.issue(black_box(spec.clone()))).expect("issues"));
            }
            let elapsed = start.elapsed();
            drop(service);
            elapsed
        })
    });

    // The peer: an HS256 JWT with the same claims, key and validation built once.
    group.bench_function("jsonwebtoken_hs256", |b| {
        b.iter_custom(|iters| targets.jwt(iters))
    });
    group.finish();
}

/// The floor taken apart: its two halves.
fn floor_parts(c: &mut Criterion) {
    let fx = Fixture::new();
    let store = MemoryStore::new();
    let token = fx.mint(&store, 1, UsageLimit::Once).remove(0);
    let text = token.expose_secret();
    let mut group = c.benchmark_group("floor_parts");
    group.throughput(Throughput::Elements(1));
    group.bench_function("base64ct_decode", |b| {
        b.iter(|| {
            let mut payload = [0u8; 36];
            let ok =
                Base64UrlUnpadded::decode(&black_box(text).as_bytes()[5..], &mut payload).is_ok();
            (ok, payload)
        })
    });
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&fx.secret).expect("any key length");
    let signed = [7u8; 20];
    let tag = [1u8; 16];
    group.bench_function("hmac_crate_verify", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(b"obt1");
            mac.update(black_box(&signed));
            mac.verify_truncated_left(black_box(&tag)).is_ok()
        })
    });
    group.finish();
}

/// One unlimited token already redeemed by 100,000 devices, redeemed by more new ones:
/// the replay check's index no longer fits in the core's caches.
fn large_index(c: &mut Criterion) {
    const PRIOR: u64 = 100_000;
    let fx = Fixture::new();
    let mut group = c.benchmark_group("device_index");
    group.throughput(Throughput::Elements(1));
    group.bench_function("redeem_token_with_100k_devices", |b| {
        b.iter_custom(|iters| {
            let store = MemoryStore::new();
            let token = fx.mint(&store, 1, UsageLimit::Unlimited).remove(0);
            let service = fx.service(store);
            for device in fx.devices.take(PRIOR) {
                ready(service.redeem(token.expose_secret(), &device)).expect("redeems");
            }
            let devices = fx.devices.take(iters);
            let text = token.expose_secret();
            let start = Instant::now();
            for device in &devices {
                let e = ready(service.redeem(black_box(text), device));
                black_box(e.expect("redeems"));
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// The fewest operations a `threads` sample times (its time is scaled to its iteration
/// count). Criterion's smallest samples would otherwise be a few hundred to a few thousand
/// redemptions of a fresh store that fits in the cache of the core that minted it: one
/// thread on that core reads it from its own cache, the second thread of two from the
/// other core's, so small samples measured where the tokens were minted rather than how
/// the store scales (two threads / one: 1.45 and 1.59 without this, 2.04 and 1.96 with it,
/// `paired` 1.9 to 2.0).
const THREAD_SAMPLE_WORK: usize = 100_000;

/// One thread against two (`common::threads`): time per redemption, wall clock, on the
/// same total work, at least [`THREAD_SAMPLE_WORK`] operations a sample (20 samples: each
/// also mints its fresh tokens, untimed). `benches/paired.rs` measures the same cases in
/// back-to-back rounds.
fn threads(c: &mut Criterion) {
    let fx = Fixture::new();
    let mut group = c.benchmark_group("threads");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    let cases: [(&str, Case); 3] = [
        ("distinct_tokens", threads::distinct_tokens),
        ("distinct_groups", threads::distinct_groups),
        ("hot_token", threads::hot_token),
    ];
    for n in [1usize, 2] {
        for (name, case) in cases {
            group.bench_function(format!("{name}_{n}t"), |b| {
                b.iter_custom(|iters| {
                    let work = (iters as usize).max(THREAD_SAMPLE_WORK);
                    case(&fx, work, n).mul_f64(iters as f64 / work as f64)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, hot_path, floor_parts, large_index, threads);
criterion_main!(benches);
