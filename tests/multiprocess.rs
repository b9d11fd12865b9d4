//! Separate `tokenctl redeem` processes racing one 5-use token: exactly 5 succeed (exit 0)
//! and every other one exits 1 saying `exhausted`, against one SQLite file and against one
//! PostgreSQL database (feature `postgres`, needs `DATABASE_URL`; without it that test
//! fails saying so).
//!
//! All processes are started first and block reading the token from standard input; the
//! token is then written to each and the pipes closed, so they race for real. No sleeps.

mod support;

use std::io::Write;
use std::process::{Child, Stdio};

use support::tokenctl::{Env, Run};

const PROCESSES: usize = 24;
const LIMIT: usize = 5;

/// Spawns the racers, releases them together, and checks the outcome and the store.
fn race(env: &Env) {
    let (id, token) = env.issue(&["--group", "race", "--max-uses", &LIMIT.to_string()]);
    let mut children: Vec<(String, Child)> = (0..PROCESSES)
        .map(|i| {
            let device = format!("proc-{i:02}");
            let child = env
                .cmd()
                .args(["redeem", "-", "--device", &device, "--json"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawning tokenctl");
            (device, child)
        })
        .collect();
    // Every process is running and waiting on its standard input: release them all.
    for (_, child) in &mut children {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(token.as_bytes())
            .expect("writing the token");
    }
    let runs: Vec<(String, Run)> = children
        .into_iter()
        .map(|(device, child)| {
            let output = child.wait_with_output().expect("waiting for tokenctl");
            (device, Run::from(output))
        })
        .collect();

    let mut winners = Vec::new();
    for (device, run) in &runs {
        match run.code {
            0 => {
                let json = run.json();
                assert_eq!(json["device"], device.as_str());
                assert_eq!(json["replay"], false, "{run:?}");
                winners.push((device.clone(), json["uses"].as_u64().expect("uses")));
            }
            _ => run.assert_rejected("exhausted"),
        }
    }
    assert_eq!(
        winners.len(),
        LIMIT,
        "exactly {LIMIT} of {PROCESSES} processes enroll: {runs:#?}"
    );
    let mut uses: Vec<u64> = winners.iter().map(|(_, u)| *u).collect();
    uses.sort_unstable();
    assert_eq!(
        uses,
        (1..=LIMIT as u64).collect::<Vec<_>>(),
        "uses 1..=5, once each"
    );

    // The store agrees: 5 uses, the winners' redemption records, status exhausted.
    let shown = env.show(&id);
    assert_eq!(shown["uses"], LIMIT as u64);
    assert_eq!(shown["status"], "exhausted");
    let mut recorded: Vec<String> = shown["redemptions"]
        .as_array()
        .expect("redemptions")
        .iter()
        .map(|r| r["device"].as_str().expect("device").to_owned())
        .collect();
    recorded.sort();
    let mut expected: Vec<String> = winners.into_iter().map(|(d, _)| d).collect();
    expected.sort();
    assert_eq!(recorded, expected);
}

#[test]
fn multiprocess_sqlite_24_processes_race_a_5_use_token() {
    let env = Env::init();
    race(&env);
}

#[cfg(feature = "postgres")]
#[test]
fn multiprocess_postgres_24_processes_race_a_5_use_token() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = runtime.block_on(support::postgres::create_schema());
    let _guard = support::postgres::SchemaGuard {
        schema: schema.clone(),
    };
    // Every process works in the fresh schema (libpq-style `options` in the URL).
    let url = support::postgres::database_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let db = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    let env = Env::with_db(db).initialized();
    race(&env);
}
