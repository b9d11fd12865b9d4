//! The targets' ratios measured in pairs, round by round.
//!
//! Criterion (`benches/hot_path.rs`) measures each id for seconds, one after another; on a
//! shared virtual machine the host's load drifts over those seconds, and a ratio of two such
//! figures moves from run to run of the same code. Here each round times the two sides of
//! every ratio back to back on the same work, the order alternating from round to round,
//! and the figure reported is the median of the rounds' ratios: drift slower than a round
//! cancels out, and the spread and the number of rounds that meet the target show how firm
//! the figure is.
//!
//! Section `targets`, ratios of the `hot_path` ids (the same code as criterion's,
//! `common::targets`): `redeem_memory / floor_decode_verify` (target <= 1.5),
//! `reject_forged / floor_decode_verify` (<= 1.2), `jsonwebtoken_hs256 / redeem_memory`
//! (>= 4).
//!
//! Section `threads`, two threads against one on the same total work (throughput ratio;
//! target >= 1.8 for distinct tokens), the cases of `common::threads`: `distinct_tokens`,
//! `distinct_groups`, `separate_stores` (nothing of this crate's shared: the most any
//! shared store could scale), `verify_only` (the machine's ceiling for this work) and
//! `hot_token`.
//!
//! Run: `cargo bench --bench paired`, optionally with words that select sections, ids or
//! cases (`cargo bench --bench paired -- targets`, `-- hot_token`). `PAIRED_ROUNDS`
//! (default 21) and `PAIRED_WORK` (operations per run, default 200000) change the size.
//! Run without `--bench` (as `cargo test --benches` does), it makes one small round of
//! each, to check that it works.

mod common;

use common::Fixture;
use common::targets::Targets;
use common::threads::{self, Case};

fn env_or(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => match value.parse() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("{name}={value:?} is not a positive whole number; using {default}");
                default
            }
        },
    }
}

/// A ratio's median and spread over the rounds, and how many rounds meet its target.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
    met: usize,
}

impl Spread {
    fn of(mut ratios: Vec<f64>, meets: impl Fn(f64) -> bool) -> Self {
        ratios.sort_by(f64::total_cmp);
        Spread {
            median: median_of_sorted(&ratios),
            low: ratios[0],
            high: ratios[ratios.len() - 1],
            met: ratios.iter().filter(|&&r| meets(r)).count(),
        }
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    median_of_sorted(&values)
}

/// Which sections, ids and cases to run.
struct Selection(Vec<String>);

impl Selection {
    /// Whether any of `names` (a section, an id, a case) was asked for.
    fn wants(&self, names: &[&str]) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|w| names.iter().any(|n| n.contains(w.as_str())))
    }
}

fn target_ratios(fx: &Fixture, rounds: usize, work: u64, selection: &Selection) -> bool {
    // (numerator, denominator, target, whether a ratio meets it)
    type Meets = fn(f64) -> bool;
    let ratios: [(&str, &str, &str, Meets); 3] = [
        ("redeem_memory", "floor_decode_verify", "<= 1.5", |r| {
            r <= 1.5
        }),
        ("reject_forged", "floor_decode_verify", "<= 1.2", |r| {
            r <= 1.2
        }),
        ("jsonwebtoken_hs256", "redeem_memory", ">= 4", |r| r >= 4.0),
    ];
    let wanted: Vec<_> = ratios
        .into_iter()
        .filter(|(a, b, _, _)| selection.wants(&["targets", a, b]))
        .collect();
    if wanted.is_empty() {
        return false;
    }
    let targets = Targets::new(fx);
    // The JWT is about ten times slower: a tenth of the work keeps its runs as long.
    let jwt_work = (work / 10).max(1);
    let per_op = |id: &str| {
        let (ops, elapsed) = match id {
            "floor_decode_verify" => (work, targets.floor(work)),
            "redeem_memory" => (work, targets.redeem(work)),
            "reject_forged" => (work, targets.reject_forged(work)),
            _ => (jwt_work, targets.jwt(jwt_work)),
        };
        elapsed.as_secs_f64() * 1e9 / ops as f64
    };
    // Warm-up: the first redemptions of each token build its device index.
    for (a, b, _, _) in &wanted {
        per_op(a);
        per_op(b);
    }
    println!("| ratio | target | median | min-max | rounds meeting it | medians (ns) |");
    println!("|---|---|---|---|---|---|");
    for (a, b, target, meets) in wanted {
        let (mut ratios, mut na, mut nb) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (ta, tb) = if round % 2 == 0 {
                let ta = per_op(a);
                (ta, per_op(b))
            } else {
                let tb = per_op(b);
                (per_op(a), tb)
            };
            ratios.push(ta / tb);
            na.push(ta);
            nb.push(tb);
        }
        let s = Spread::of(ratios, meets);
        println!(
            "| `{a}` / `{b}` | {target} | {:.2} | {:.2}-{:.2} | {} of {rounds} | {:.0} / {:.0} |",
            s.median,
            s.low,
            s.high,
            s.met,
            median(na),
            median(nb),
        );
    }
    println!();
    true
}

fn thread_ratios(fx: &Fixture, rounds: usize, work: usize, selection: &Selection) -> bool {
    // With how many times the work each runs: verifying alone is quick, and a run of well
    // under a tenth of a second starts and stops threads for a larger part of its time.
    let cases: [(&str, Case, usize); 5] = [
        ("distinct_tokens", threads::distinct_tokens, 1),
        ("distinct_groups", threads::distinct_groups, 1),
        ("separate_stores", threads::separate_stores, 1),
        ("verify_only", threads::verify_only, 10),
        ("hot_token", threads::hot_token, 2),
    ];
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|(name, _, _)| selection.wants(&["threads", name]))
        .collect();
    if cases.is_empty() {
        return false;
    }
    println!(
        "| two threads / one | work factor | 1 thread (ops/s) | 2 threads (ops/s) | median | min-max | rounds >= 1.8 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, case, times) in cases {
        let ops = work * times;
        let rate = |threads| ops as f64 / case(fx, ops, threads).as_secs_f64();
        let (mut one, mut two, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (r1, r2) = if round % 2 == 0 {
                let r1 = rate(1);
                (r1, rate(2))
            } else {
                let r2 = rate(2);
                (rate(1), r2)
            };
            one.push(r1);
            two.push(r2);
            ratios.push(r2 / r1);
        }
        let s = Spread::of(ratios, |r| r >= 1.8);
        println!(
            "| `{name}` | {times} | {:.0} | {:.0} | {:.2} | {:.2}-{:.2} | {} of {rounds} |",
            median(one),
            median(two),
            s.median,
            s.low,
            s.high,
            s.met,
        );
    }
    println!();
    true
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench`; without it this is a check, not a measurement.
    let measuring = args.iter().any(|a| a == "--bench");
    let (rounds, work) = if measuring {
        (env_or("PAIRED_ROUNDS", 21), env_or("PAIRED_WORK", 200_000))
    } else {
        (1, 2_000)
    };
    // Words that are neither flags nor numbers (a criterion option's value) select.
    let selection = Selection(
        args.into_iter()
            .filter(|a| !a.starts_with('-') && a.parse::<f64>().is_err())
            .collect(),
    );
    let fx = Fixture::new();
    println!("{rounds} rounds; {work} operations per run unless a factor says otherwise");
    println!();
    let ran_targets = target_ratios(&fx, rounds, work as u64, &selection);
    let ran_threads = thread_ratios(&fx, rounds, work, &selection);
    if !ran_targets && !ran_threads {
        eprintln!(
            "nothing matches {:?}: sections are `targets` and `threads`",
            selection.0
        );
        std::process::exit(2);
    }
}
