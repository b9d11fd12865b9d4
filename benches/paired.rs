//! The targets' ratios measured in pairs, round by round.
//!
//! Criterion (`benches/hot_path.rs`) measures each id for seconds, one after another; on a
//! shared virtual machine the host's load drifts over those seconds, and a ratio of two such
//! figures moves from run to run of the same code (`redeem_memory / floor_decode_verify`
//! 1.36-1.87, two threads against one 1.4-1.9). Here each round times every side of a ratio
//! back to back on the same work, rotating which goes first, and the figure reported is the
//! median of the rounds' ratios: drift slower than a round cancels out, and the spread and
//! the number of rounds that meet the target show how firm the figure is.
//!
//! Ratios of the `hot_path` ids (the same code as criterion's, `common::targets`):
//! `redeem_memory / floor_decode_verify` (target <= 1.5), `reject_forged /
//! floor_decode_verify` (<= 1.2), `jsonwebtoken_hs256 / redeem_memory` (>= 4).
//!
//! Two threads against one, the same total work split evenly (throughput ratio, target
//! >= 1.8 for distinct tokens):
//! - `distinct_tokens`: fresh single-use tokens of one batch in one shared `MemoryStore`,
//!   each redeemed once through `Onboarding::redeem` (as `threads/distinct_tokens_*`);
//! - `distinct_groups`: the same, each thread's tokens of a group of its own (so the
//!   threads do not share the tokens' assignment and its reference count);
//! - `separate_stores`: the same as `distinct_tokens`, but each thread has a store and
//!   service of its own, so the threads share nothing of this crate's: the most any shared
//!   store could scale;
//! - `verify_only`: parse and verify, no store: the machine's ceiling for this work;
//! - `hot_token`: both threads redeem the same unlimited tokens from distinct devices (as
//!   `threads/hot_token_*`), moving on every `DEVICES_PER_TOKEN` redemptions.
//!
//! Run: `cargo bench --bench paired` (optionally with words that select sections or cases,
//! for example `cargo bench --bench paired -- floor` or `-- distinct_tokens`).
//! `PAIRED_ROUNDS` (default 21) and `PAIRED_WORK` (operations per run, default 200000)
//! change the size.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::targets::Targets;
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

/// A ratio's spread over the rounds.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
    /// Rounds whose ratio meets the target.
    met: usize,
}

fn spread(mut ratios: Vec<f64>, meets: impl Fn(f64) -> bool) -> Spread {
    let met = ratios.iter().filter(|&&r| meets(r)).count();
    let median = median(&mut ratios);
    Spread {
        median,
        low: ratios[0],
        high: ratios[ratios.len() - 1],
        met,
    }
}

/// One side of a ratio: times `iters` operations.
type Side<'a> = &'a dyn Fn(u64) -> Duration;

fn target_ratios(fx: &Fixture, rounds: usize, work: usize, selected: &dyn Fn(&str) -> bool) {
    let targets = Targets::new(fx);
    // (id, runs, operations per run): the JWT is ten times slower, so a tenth of the work.
    let sides: [(&str, Side, u64); 4] = [
        ("floor_decode_verify", &|n| targets.floor(n), work as u64),
        ("redeem_memory", &|n| targets.redeem(n), work as u64),
        ("reject_forged", &|n| targets.reject_forged(n), work as u64),
        ("jsonwebtoken_hs256", &|n| targets.jwt(n), work as u64 / 10),
    ];
    // (numerator, denominator, target, whether a ratio meets it)
    type Meets = fn(f64) -> bool;
    let ratios: [(usize, usize, &str, Meets); 3] = [
        (1, 0, "<= 1.5", |r| r <= 1.5),
        (2, 0, "<= 1.2", |r| r <= 1.2),
        (3, 1, ">= 4", |r| r >= 4.0),
    ];
    let wanted: Vec<_> = ratios
        .iter()
        .filter(|(a, b, _, _)| selected(sides[*a].0) || selected(sides[*b].0))
        .collect();
    if wanted.is_empty() {
        return;
    }
    // Warm-up: the store's first redemptions of each token build its device index.
    for (_, side, ops) in &sides {
        side(*ops);
    }
    let mut per_op: Vec<[f64; 4]> = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let mut times = [0.0; 4];
        for k in 0..sides.len() {
            let i = (k + round) % sides.len();
            let (_, side, ops) = &sides[i];
            times[i] = side(*ops).as_secs_f64() * 1e9 / *ops as f64;
        }
        per_op.push(times);
    }
    println!("| ratio | target | median | min-max | rounds meeting it | medians (ns) |");
    println!("|---|---|---|---|---|---|");
    for &&(a, b, target, meets) in &wanted {
        let s = spread(per_op.iter().map(|t| t[a] / t[b]).collect(), meets);
        let mut na: Vec<f64> = per_op.iter().map(|t| t[a]).collect();
        let mut nb: Vec<f64> = per_op.iter().map(|t| t[b]).collect();
        println!(
            "| `{}` / `{}` | {target} | {:.2} | {:.2}-{:.2} | {} of {rounds} | {:.0} / {:.0} |",
            sides[a].0,
            sides[b].0,
            s.median,
            s.low,
            s.high,
            s.met,
            median(&mut na),
            median(&mut nb),
        );
    }
    println!();
}

fn thread_ratios(fx: &Fixture, rounds: usize, work: usize, selected: &dyn Fn(&str) -> bool) {
    // With how many times the work each runs: verifying alone is quick, and a run of well
    // under a tenth of a second starts and stops threads for a larger part of its time.
    let cases: [(&str, Case, usize); 5] = [
        ("distinct_tokens", distinct_tokens, 1),
        ("distinct_groups", distinct_groups, 1),
        ("separate_stores", separate_stores, 1),
        ("verify_only", verify_only, 10),
        ("hot_token", hot_token, 2),
    ];
    let cases: Vec<_> = cases.into_iter().filter(|(n, _, _)| selected(n)).collect();
    if cases.is_empty() {
        return;
    }
    println!(
        "| two threads / one | work factor | 1 thread (ops/s) | 2 threads (ops/s) | median | min-max | rounds >= 1.8 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, case, times) in cases {
        let ops = work * times;
        let (mut one, mut two, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let order = if round % 2 == 0 { [1, 2] } else { [2, 1] };
            let mut rate = [0.0; 3];
            for threads in order {
                rate[threads] = ops as f64 / case(fx, ops, threads).as_secs_f64();
            }
            one.push(rate[1]);
            two.push(rate[2]);
            ratios.push(rate[2] / rate[1]);
        }
        let s = spread(ratios, |r| r >= 1.8);
        println!(
            "| `{name}` | {times} | {:.0} | {:.0} | {:.2} | {:.2}-{:.2} | {} of {rounds} |",
            median(&mut one),
            median(&mut two),
            s.median,
            s.low,
            s.high,
            s.met,
        );
    }
    println!();
}

fn main() {
    let rounds = env_or("PAIRED_ROUNDS", 21);
    let work = env_or("PAIRED_WORK", 200_000);
    // Arguments that are not flags (cargo passes `--bench`) select by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let selected =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let fx = Fixture::new();
    println!("{rounds} rounds; {work} operations per run unless a factor says otherwise");
    println!();
    target_ratios(&fx, rounds, work, &selected);
    thread_ratios(&fx, rounds, work, &selected);
}
