//! A `tokenctl bulk` process killed with SIGKILL mid-batch leaves the SQLite store with all
//! of that batch or none of it, and the store opens cleanly afterwards.
//!
//! The kill is timed by watching the process's effects (polling with a deadline, never
//! sleeping for synchronisation): in one test as soon as the database's write-ahead log
//! starts to grow (the batch insert is under way), in the other as soon as the first QR
//! file appears in the staging directory (the batch has committed, the output is being
//! written). A process that finished before it could be killed is retried with a larger
//! batch.

mod support;

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use onboarding_token::sqlx;
use onboarding_token::*;
use support::tokenctl::Env;

/// How long to wait for the moment to kill before failing.
const DEADLINE: Duration = Duration::from_secs(300);

/// What the poll saw.
enum Outcome {
    /// The moment came and the process was killed.
    Killed,
    /// The process exited first (with this status code).
    Finished(Option<i32>),
}

/// Polls `moment` until it holds (then kills `child` with SIGKILL) or the child exits.
fn kill_when(child: &mut Child, mut moment: impl FnMut() -> bool) -> Outcome {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("polling the child") {
            return Outcome::Finished(status.code());
        }
        if moment() {
            // `Child::kill` sends SIGKILL on Unix.
            child.kill().expect("SIGKILL");
            let status = child.wait().expect("reaping the child");
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if status.signal() != Some(9) {
                    // It exited on its own between the check and the kill.
                    return Outcome::Finished(status.code());
                }
            }
            let _ = status;
            return Outcome::Killed;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "the moment to kill never came within {DEADLINE:?}"
        );
        // Polling, not synchronisation: how often we look does not change what we check.
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

fn spawn_bulk(env: &Env, count: u32) -> Child {
    env.cmd()
        .args([
            "bulk",
            "--group",
            "bulk",
            "--count",
            &count.to_string(),
            "--qr",
            "png",
        ])
        .arg("--out-dir")
        .arg(env.path("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning tokenctl bulk")
}

/// What a fresh open of the database file finds: the tokens in the `bulk` group, their
/// batches, and `PRAGMA integrity_check`.
async fn inspect(db: &Path) -> (Vec<Token>, Vec<Option<BatchId>>, String) {
    let store = SqliteStore::open(db)
        .await
        .expect("the store opens cleanly after the kill");
    let mut tokens = Vec::new();
    let mut query = TokenQuery::new(Utc::now())
        .with_group(GroupId::new("bulk").unwrap())
        .with_limit(TokenQuery::MAX_LIMIT);
    loop {
        let page = store.list(&query).await.expect("listing after the kill");
        tokens.extend(page.tokens);
        match page.next {
            Some(next) => query = query.with_after(next),
            None => break,
        }
    }
    let mut batches: Vec<Option<BatchId>> = tokens.iter().map(Token::batch).collect();
    batches.sort();
    batches.dedup();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(store.pool())
        .await
        .expect("integrity check");
    (tokens, batches, integrity)
}

/// Runs `bulk` with growing counts until `moment` comes before the process finishes; returns
/// the count of the killed batch and what the store holds afterwards.
fn kill_bulk(
    env: &Env,
    mut moment: impl FnMut(&Env) -> bool,
) -> (u32, Vec<Token>, Vec<Option<BatchId>>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for count in [20_000, 50_000, 100_000] {
        let mut child = spawn_bulk(env, count);
        match kill_when(&mut child, || moment(env)) {
            Outcome::Killed => {
                let (tokens, batches, integrity) = runtime.block_on(inspect(&env.db()));
                assert_eq!(integrity, "ok");
                return (count, tokens, batches);
            }
            Outcome::Finished(code) => {
                eprintln!("bulk --count {count} finished ({code:?}) before the kill; retrying");
                // Start over on an empty store.
                let _ = fs::remove_dir_all(env.path("out"));
                for name in ["tokens.db", "tokens.db-wal", "tokens.db-shm"] {
                    let _ = fs::remove_file(env.path(name));
                }
                env.ok(&["init"]);
            }
        }
    }
    panic!("bulk always finished before it could be killed, even with 100000 tokens");
}

/// The store is usable afterwards: `tokenctl` lists, issues and redeems.
fn usable(env: &Env) {
    env.ok(&["list", "--json"]);
    let (_, token) = env.issue(&["--group", "after"]);
    env.ok(&["redeem", &token, "--device", "after-kill"]);
}

#[test]
fn durability_bulk_killed_while_inserting_leaves_all_or_nothing() {
    let env = Env::init();
    let wal = env.path("tokens.db-wal");
    // The log grows once the insert spills pages or commits.
    let (count, tokens, batches) = kill_bulk(&env, |_| size(&wal) > 0);
    match tokens.len() {
        0 => eprintln!("killed before the batch of {count} committed: none of it is stored"),
        n => {
            assert_eq!(n, count as usize, "all of the batch or none of it");
            assert_eq!(batches.len(), 1, "one batch");
            assert!(batches[0].is_some());
            eprintln!("killed after the batch of {count} committed: all of it is stored");
        }
    }
    assert!(
        tokens
            .iter()
            .all(|t| t.uses() == 0 && t.revocation().is_none())
    );
    // The output directory appears complete or not at all.
    assert!(
        !env.path("out").exists(),
        "an output directory from a killed bulk"
    );
    usable(&env);
}

#[test]
fn durability_bulk_killed_while_writing_output_keeps_the_whole_batch() {
    let env = Env::init();
    let parent = env.dir.path().to_owned();
    // The staging directory (`.out.tmp-*`) gets its first file once the batch committed.
    let staging_has_files = |_: &Env| {
        fs::read_dir(&parent).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                e.file_name().to_string_lossy().starts_with(".out.tmp-")
                    && fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_some())
            })
        })
    };
    let (count, tokens, batches) = kill_bulk(&env, staging_has_files);
    assert_eq!(
        tokens.len(),
        count as usize,
        "the committed batch is all there"
    );
    assert_eq!(batches.len(), 1);
    assert!(tokens.iter().all(|t| t.uses() == 0));
    assert!(!env.path("out").exists(), "the output was never completed");
    // The batch can be revoked as a whole, by the id `list` shows.
    let batch = batches[0].expect("a batch id").to_string();
    let revoked = env.ok(&["revoke", "--batch", &batch, "--json"]).json();
    assert_eq!(revoked["revoked"], count as u64, "{revoked}");
    usable(&env);
}
