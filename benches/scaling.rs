//! Two threads against one, measured in pairs.
//!
//! `benches/hot_path.rs` group `threads` measures one thread and two threads as separate
//! criterion benchmarks, seconds apart; on a shared virtual machine the host's load drifts
//! over those seconds, and a ratio of two such figures moved between 1.4 and 1.9 from run
//! to run of the same code. Here every round runs the one-thread and the two-thread version
//! of a case back to back (alternating which goes first) on the same amount of work, and
//! the ratio reported is the median of the rounds' ratios: drift slower than a round
//! cancels out.
//!
//! Cases (the same total work, split evenly between the threads):
//! - `distinct_tokens`: fresh single-use tokens of one batch in one shared `MemoryStore`,
//!   each redeemed once through `Onboarding::redeem` (as `threads/distinct_tokens_*`);
//! - `distinct_groups`: the same, each thread's tokens of a group of its own (so the
//!   threads do not share the tokens' assignment and its reference count);
//! - `separate_stores`: the same as `distinct_tokens`, but each thread has a store and service of its own, so
//!   the threads share nothing of this crate's: the most any shared store could scale;
//! - `verify_only`: parse and verify, no store: the machine's ceiling for this work;
//! - `hot_token`: both threads redeem the same unlimited tokens from distinct devices (as
//!   `threads/hot_token_*`), moving on every `DEVICES_PER_TOKEN` redemptions.
//!
//! Run: `cargo bench --bench scaling` (optionally with case names to run only those, for
//! example `cargo bench --bench scaling -- distinct_tokens`). `SCALING_ROUNDS` (default 21)
//! and `SCALING_WORK` (redemptions per run, default 200000) change the size.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{DEVICES_PER_TOKEN, Fixture, parallel, ready, texts};
use onboarding_token::{DeviceId, MemoryStore, Onboarding, UsageLimit};

/// One case: runs `work` operations on `threads` threads and returns the wall time.
type Case = fn(&Fixture, usize, usize) -> Duration;

/// Each thread's share of `work` and a device pool of its own.
fn shares(fx: &Fixture, work: usize, threads: usize) -> (usize, Vec<Vec<DeviceId>>) {
    let per = work.div_ceil(threads);
    let pools = (0..threads)
        .map(|_| fx.devices.take(DEVICES_PER_TOKEN as u64))
        .collect();
    (per, pools)
}

fn redeem_all(service: &Onboarding<MemoryStore>, tokens: &[String], pool: &[DeviceId]) {
    for (token, device) in tokens.iter().zip(pool.iter().cycle()) {
        let enrollment = ready(service.redeem(black_box(token), device));
        black_box(enrollment.expect("redeems"));
    }
}

fn distinct_tokens(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools) = shares(fx, work, threads);
    let store = MemoryStore::with_capacity(per * threads);
    let spec = fx.spec(UsageLimit::Once);
    let runs: Vec<_> = pools
        .into_iter()
        .map(|pool| (texts(&fx.mint_spec(&store, per, &spec)), pool))
        .collect();
    let service = fx.service(store);
    parallel(&runs, threads, |(tokens, pool)| {
        redeem_all(&service, tokens, pool)
    })
}

fn distinct_groups(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools) = shares(fx, work, threads);
    let store = MemoryStore::with_capacity(per * threads);
    let runs: Vec<_> = pools
        .into_iter()
        .enumerate()
        .map(|(k, pool)| {
            let spec = onboarding_token::TokenSpec::new(
                onboarding_token::OrgId::new(format!("org-{k}")).expect("org"),
                onboarding_token::GroupId::new(format!("site-{k}")).expect("group"),
            )
            .with_policies(fx.policies.clone());
            (texts(&fx.mint_spec(&store, per, &spec)), pool)
        })
        .collect();
    let service = fx.service(store);
    parallel(&runs, threads, |(tokens, pool)| {
        redeem_all(&service, tokens, pool)
    })
}

fn separate_stores(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools) = shares(fx, work, threads);
    let spec = fx.spec(UsageLimit::Once);
    let runs: Vec<_> = pools
        .into_iter()
        .map(|pool| {
            let store = MemoryStore::with_capacity(per);
            let tokens = texts(&fx.mint_spec(&store, per, &spec));
            (fx.service(store), tokens, pool)
        })
        .collect();
    parallel(&runs, threads, |(service, tokens, pool)| {
        redeem_all(service, tokens, pool)
    })
}

fn verify_only(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools) = shares(fx, work, threads);
    let store = MemoryStore::new();
    let tokens = texts(&fx.mint(&store, DEVICES_PER_TOKEN, UsageLimit::Once));
    let service = fx.service(store);
    parallel(&pools, threads, |_| {
        for token in tokens.iter().cycle().take(per) {
            black_box(service.verify(black_box(token)).expect("verifies"));
        }
    })
}

fn hot_token(fx: &Fixture, work: usize, threads: usize) -> Duration {
    let (per, pools) = shares(fx, work, threads);
    let store = MemoryStore::new();
    let tokens = texts(&fx.mint(
        &store,
        per.div_ceil(DEVICES_PER_TOKEN),
        UsageLimit::Unlimited,
    ));
    let service = fx.service(store);
    parallel(&pools, threads, |pool| {
        for i in 0..per {
            let token = tokens[i / DEVICES_PER_TOKEN].as_str();
            let device = &pool[i % DEVICES_PER_TOKEN];
            let enrollment = ready(service.redeem(black_box(token), device));
            black_box(enrollment.expect("redeems"));
        }
    })
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = env_or("SCALING_ROUNDS", 21);
    let work = env_or("SCALING_WORK", 200_000);
    // Arguments that are not flags (cargo passes `--bench`) select cases by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // With how many times the work each runs: verifying alone is quick, and a run of well
    // under a tenth of a second starts and stops threads for a larger part of its time.
    let cases: [(&str, Case, usize); 5] = [
        ("distinct_tokens", distinct_tokens, 1),
        ("distinct_groups", distinct_groups, 1),
        ("separate_stores", separate_stores, 1),
        ("verify_only", verify_only, 10),
        ("hot_token", hot_token, 2),
    ];
    let fx = Fixture::new();
    println!(
        "{rounds} rounds of {work} operations (times the factor below) per run, 1 thread and 2 threads in turn"
    );
    println!();
    println!(
        "| case | work factor | 1 thread (ops/s) | 2 threads (ops/s) | ratio (median) | ratio (min-max) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, case, times) in cases {
        let ops = work * times;
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let (mut one, mut two, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let order = if round % 2 == 0 { [1, 2] } else { [2, 1] };
            let mut rate = [0.0; 3];
            for threads in order {
                rate[threads] = ops as f64 / case(&fx, ops, threads).as_secs_f64();
            }
            one.push(rate[1]);
            two.push(rate[2]);
            ratios.push(rate[2] / rate[1]);
        }
        let (low, high) = ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &r| (l.min(r), h.max(r)));
        println!(
            "| `{name}` | {times} | {:.0} | {:.0} | {:.2} | {low:.2}-{high:.2} |",
            median(&mut one),
            median(&mut two),
            median(&mut ratios),
        );
    }
}
