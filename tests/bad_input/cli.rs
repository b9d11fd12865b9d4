//! `tokenctl`: exit 1 with a one-line reason, and nothing written.

use super::support::tokenctl::{Env, Run};
use super::*;
use serde_json::Value;

/// What the store holds, as `list --all --json` and `show` see it.
fn state(env: &Env) -> Vec<Value> {
    env.list()
        .into_iter()
        .map(|t| {
            let id = t["id"].as_str().unwrap().to_owned();
            env.show(&id)
        })
        .collect()
}

fn db_bytes(env: &Env) -> Vec<u8> {
    std::fs::read(env.db()).unwrap()
}

#[test]
fn tokenctl_redeem_rejects_every_mutation_with_exit_1_and_consumes_nothing() {
    let env = Env::init();
    let (id, token) = env.issue(&["--group", "g", "--max-uses", "3"]);
    assert_eq!(env.run(&["redeem", &token, "--device", "first"]).code, 0);
    let before = state(&env);
    assert_eq!(before[0]["uses"], 1);

    let chars: Vec<char> = token.chars().collect();
    let mut inputs: Vec<String> = Vec::new();
    // Every truncation, a substitution at every position, an extension at every end.
    for i in 0..chars.len() {
        inputs.push(chars[..i].iter().collect());
        let mut m = chars.clone();
        m[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        inputs.push(m.into_iter().collect());
    }
    inputs.push(format!("{token}A"));
    inputs.push(format!("A{token}"));
    inputs.push(format!("obt2_{}", &token[5..]));
    inputs.push(format!("ghp_{}", &token[5..]));
    inputs.push(" ".into());
    // An empty argument is refused too.
    inputs.push(String::new());
    for input in &inputs {
        let run = env.run(&["redeem", input, "--device", "attacker"]);
        if input.is_empty() || input.trim().is_empty() {
            run.assert_rejected("invalid token");
            continue;
        }
        run.assert_rejected("invalid token");
        assert!(!run.stderr.contains(&token[5..20]), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    // Through standard input: 1 MB of garbage, invalid UTF-8, a token cut short.
    let big = env.run_stdin(&["redeem", "-", "--device", "attacker"], &vec![b'x'; MB]);
    big.assert_rejected("invalid token");
    let mut bytes = token.as_bytes()[..40].to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    let run = env.run_stdin(&["redeem", "-", "--device", "attacker"], &bytes);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    let run = env.run_stdin(&["redeem", "-", "--device", "attacker"], b"");
    run.assert_rejected("invalid token");
    // Bad device ids.
    for device in ["", "has space", &"d".repeat(300)] {
        let run = env.run(&["redeem", &token, "--device", device]);
        run.assert_clean_error();
    }
    assert_eq!(state(&env), before, "nothing consumed");
    assert_eq!(env.show(&id)["redemptions"].as_array().unwrap().len(), 1);
}

#[test]
fn tokenctl_issue_and_bulk_refuse_bad_values_with_exit_1_and_write_nothing() {
    let env = Env::init();
    env.issue(&["--group", "seed"]);
    let before = state(&env);
    let db_before = db_bytes(&env);
    let big = "x".repeat(64 * 1024);
    let meta_big = format!("k={}", "v".repeat(5000));
    let bad_issues: Vec<Vec<&str>> = vec![
        vec!["--group", ""],
        vec!["--group", "a//b"],
        vec!["--group", &big],
        vec!["--group", "g", "--policy", "a b"],
        vec!["--group", "g", "--expires-in", "7"],
        vec!["--group", "g", "--expires-in", "0d"],
        vec!["--group", "g", "--expires-in", "12h1d"],
        vec!["--group", "g", "--expires-in", "99999999999999999999d"],
        vec!["--group", "g", "--expires-at", "tomorrow"],
        vec!["--group", "g", "--expires-at", "2000-01-01T00:00:00Z"],
        vec!["--group", "g", "--not-before", "2030-02-30T00:00:00Z"],
        vec!["--group", "g", "--meta", "novalue"],
        vec!["--group", "g", "--meta", &meta_big],
        vec!["--group", "g", "--description", &big],
        vec!["--group", "g", "--format", "url", "--url-base", "ftp://x"],
        vec![
            "--group",
            "g",
            "--format",
            "url",
            "--url-base",
            "https://u:pw-secret@x",
        ],
    ];
    for args in &bad_issues {
        let mut all = vec!["issue"];
        all.extend_from_slice(args);
        let run = env.run(&all);
        assert!(
            run.code == 1 || run.code == 2,
            "{args:?} exits 1 (bad value) or 2 (usage): {run:?}"
        );
        assert_eq!(run.stdout, "", "{run:?}");
        assert!(!run.stderr.contains("pw-secret"), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
    }
    // Values the library parses are exit 1 with a one-line message naming the option.
    for (args, option) in [
        (vec!["--group", "g", "--expires-in", "7"], "--expires-in"),
        (
            vec!["--group", "g", "--expires-at", "tomorrow"],
            "--expires-at",
        ),
        (vec!["--group", "a//b"], "--group"),
        (vec!["--group", "g", "--meta", "novalue"], "--meta"),
    ] {
        let mut all = vec!["issue"];
        all.extend_from_slice(&args);
        let run = env.run(&all);
        run.assert_clean_error();
        assert!(run.stderr.contains(option), "{option}: {run:?}");
    }
    // A number that is not a number is clap's usage error.
    env.run(&["issue", "--group", "g", "--max-uses", "many"])
        .assert_usage_error();
    env.run(&["issue", "--group", "g", "--max-uses", "0"])
        .assert_usage_error();

    // Bulk specifications: missing and extra columns, bad values, invalid UTF-8.
    let specs: Vec<(&str, Vec<u8>)> = vec![
        ("empty.csv", Vec::new()),
        ("missing.csv", b"group,policies\ng,wifi\n".to_vec()),
        ("extra.csv", b"group,count,colour\ng,1,red\n".to_vec()),
        ("fields.csv", b"group,count\ng,1,extra\n".to_vec()),
        ("values.csv", b"group,count,expires\ng,1,soon\n".to_vec()),
        ("binary.csv", b"group,count\ng\xff\xfe,1\n".to_vec()),
        ("quote.csv", b"group,count\n\"g,1\n".to_vec()),
    ];
    for (name, bytes) in specs {
        let path = env.path(name);
        std::fs::write(&path, bytes).unwrap();
        let out = env.path(&format!("out-{name}"));
        let run = env.run(&[
            "bulk",
            "--spec",
            path.to_str().unwrap(),
            "--out-dir",
            out.to_str().unwrap(),
        ]);
        run.assert_clean_error();
        assert!(
            !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
            "{name}"
        );
    }
    let out = env.path("out-template");
    let run = env.run(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "5",
        "--expires-in",
        "soon",
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    run.assert_clean_error();
    assert_eq!(state(&env), before, "nothing issued");
    // Not even a page of the database file changed.
    assert_eq!(db_bytes(&env), db_before);
}

#[test]
fn tokenctl_refuses_bad_key_files_and_global_options_with_exit_1() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::init();
    let (_, token) = env.issue(&["--group", "g"]);
    let before = state(&env);
    let key = std::fs::read(env.key()).unwrap();
    let secret = String::from_utf8_lossy(&key)
        .split(' ')
        .nth(2)
        .unwrap()
        .to_owned();

    let check = |run: Run, needle: &str| {
        run.assert_clean_error();
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
        assert!(run.stderr.contains(needle), "{needle}: {run:?}");
        assert!(!run.stderr.contains(&secret), "{run:?}");
    };
    let set_mode = |mode: u32| {
        std::fs::set_permissions(env.key(), std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set_mode(0o644);
    check(env.run(&["redeem", &token, "--device", "d"]), "chmod 600");
    check(env.run(&["list"]), "chmod 600");
    set_mode(0o600);
    let mut binary = key.clone();
    binary.extend_from_slice(&[0xff, 0xfe]);
    std::fs::write(env.key(), &binary).unwrap();
    check(env.run(&["redeem", &token, "--device", "d"]), "not text");
    std::fs::write(
        env.key(),
        key.iter()
            .map(|b| if *b == b'a' { b'!' } else { *b })
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let run = env.run(&["redeem", &token, "--device", "d"]);
    run.assert_clean_error();
    assert!(!run.stderr.contains(&secret));
    std::fs::write(env.key(), &key).unwrap();

    check(env.run(&["--org", "a b", "list"]), "--org");
    check(env.run(&["--db", "", "list"]), "--db");
    let missing = env.path("nope.db");
    let run = Run::from(
        env.cmd()
            .args(["--db", missing.to_str().unwrap(), "list"])
            .output()
            .unwrap(),
    );
    run.assert_clean_error();
    assert!(!missing.exists(), "a mistyped --db creates nothing");
    let run = Run::from(
        env.cmd()
            .env("ONBOARDING_TOKEN_NOW", "yesterday")
            .args(["list"])
            .output()
            .unwrap(),
    );
    run.assert_clean_error();
    for id in ["", "zz", "0123", &"0".repeat(33)] {
        let run = env.run(&["show", id]);
        run.assert_clean_error();
        let run = env.run(&["revoke", id]);
        assert!(run.code == 1 || run.code == 2, "{run:?}");
    }
    assert_eq!(state(&env), before);
}
