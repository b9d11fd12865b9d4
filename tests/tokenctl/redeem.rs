//! tokenctl: `redeem`: success, replay and every rejection, typed forms and standard input.

use super::*;

#[test]
fn redeem_success_replay_and_exhausted() {
    let env = Env::init();
    let (id, token) = env.issue(&[
        "--group",
        "emea/berlin",
        "--policy",
        "wifi-corp",
        "--max-uses",
        "2",
        "--meta",
        "site=berlin",
    ]);

    let first = env.redeem(&token, "SN-0001");
    assert_eq!(first.code, 0, "{first:?}");
    let e = first.json();
    assert_eq!(e["token_id"], id.as_str());
    assert_eq!(e["device"], "SN-0001");
    assert_eq!(e["organization"], "default");
    assert_eq!(e["group"], "emea/berlin");
    assert_eq!(e["policies"], serde_json::json!(["wifi-corp"]));
    assert_eq!(e["metadata"]["site"], "berlin");
    assert_eq!(e["uses"], 1);
    assert_eq!(e["limit"], 2);
    assert_eq!(e["remaining"], 1);
    assert_eq!(e["replay"], false);
    assert!(!first.stdout.contains(&token));

    // The same device again: a replay, nothing consumed, the original time.
    let again = env.redeem(&token, "SN-0001").json();
    assert_eq!(again["replay"], true);
    assert_eq!(again["uses"], 1);
    assert_eq!(again["redeemed_at"], e["redeemed_at"]);

    let second = env.redeem(&token, "SN-0002").json();
    assert_eq!(
        (second["uses"].clone(), second["remaining"].clone()),
        (2.into(), 0.into())
    );

    let third = env.redeem(&token, "SN-0003");
    third.assert_rejected("exhausted");
    assert!(!third.stderr.contains(&token));

    // The human form.
    let (_, other) = env.issue(&["--group", "g"]);
    let human = env.ok(&["redeem", &other, "--device", "d1"]);
    assert!(
        human.stdout.starts_with("enrolled device d1 with token "),
        "{human:?}"
    );
    let replay = env.ok(&["redeem", &other, "--device", "d1"]);
    assert!(replay.stdout.contains("replay"), "{replay:?}");

    // show lists the devices in order.
    let shown = env.ok(&["show", &id, "--json"]).json();
    let devices: Vec<&str> = shown["redemptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device"].as_str().unwrap())
        .collect();
    assert_eq!(devices, ["SN-0001", "SN-0002"]);
    assert_eq!(shown["status"], "exhausted");
}

#[test]
fn redeem_revoked() {
    let env = Env::init();
    let (id, token) = env.issue(&["--group", "g"]);
    env.ok(&["revoke", &id, "--reason", "leaked"]);
    env.redeem(&token, "d").assert_rejected("revoked");
}

#[test]
fn redeem_expired() {
    let env = Env::init();
    // Issued in the past (the clock override is a testing aid) with a one-hour lifetime.
    let mut cmd = env.cmd();
    cmd.env("ONBOARDING_TOKEN_NOW", "2020-01-01T00:00:00Z")
        .args(["issue", "--json", "--group", "g", "--expires-in", "1h"]);
    let issued = Run::from(cmd.output().unwrap()).json();
    assert_eq!(issued["expires"], "2020-01-01T01:00:00Z");
    let token = issued["token"].as_str().unwrap();
    env.redeem(token, "d").assert_rejected("expired");
    // Within its window (by the override) it redeems.
    let run = env.run_with(&["redeem", token, "--device", "d"], |c| {
        c.env("ONBOARDING_TOKEN_NOW", "2020-01-01T00:30:00Z");
    });
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(env.list_json(&["--status", "expired"]).len(), 1);
}

#[test]
fn redeem_not_yet_valid() {
    let env = Env::init();
    let (id, token) = env.issue(&["--group", "g", "--not-before", "2099-01-01T00:00:00Z"]);
    env.redeem(&token, "d").assert_rejected("not yet valid");
    let pending = env.list_json(&["--status", "pending"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], id.as_str());
    // Nothing was consumed.
    assert_eq!(env.ok(&["show", &id, "--json"]).json()["uses"], 0);
}

#[test]
fn redeem_invalid_tokens() {
    let env = Env::init();
    let (_, token) = env.issue(&["--group", "g"]);
    // A valid-looking string with one character changed in the signature part.
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    // A well-formed token from another keyring.
    let stranger = Env::init();
    let (_, foreign) = stranger.issue(&["--group", "g"]);
    for input in [
        "hello",
        "obt1_tooShort",
        forged.as_str(),
        foreign.as_str(),
        "{\"not\": \"a payload\"}",
        "   ",
        "https://mdm.example.com/enroll?token=nope",
    ] {
        let run = env.redeem(input, "d");
        run.assert_rejected("invalid token");
        assert!(!run.stderr.contains(&forged[5..]), "{run:?}");
    }
    // The genuine token still works after the failed attempts.
    assert_eq!(env.redeem(&token, "d").code, 0);
    // A bad device id is bad input, not a rejection.
    env.run(&["redeem", &token, "--device", "bad device"])
        .assert_error("--device");
}

#[test]
fn redeem_accepts_typed_forms_and_standard_input() {
    let env = Env::init();
    let (_, token) = env.issue(&["--group", "g", "--max-uses", "4"]);
    let grouped = env.ok(&["issue", "--group", "g", "--format", "grouped"]);
    let typed = grouped.stdout.trim_end();
    assert!(typed.contains(' '));
    assert_eq!(env.redeem(typed, "typed").code, 0);

    // Line breaks and spaces as a person might type them.
    let spaced = format!("  {}\n{}  ", &token[..20], &token[20..]);
    assert_eq!(env.redeem(&spaced, "d1").code, 0);

    // From standard input.
    let mut child = env
        .cmd()
        .args(["redeem", "-", "--device", "d2", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("https://mdm.example.com/e?token={token}\n").as_bytes())
        .unwrap();
    let run = Run::from(child.wait_with_output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["uses"], 2);

    // Bytes that are not text are not a token.
    let mut child = env
        .cmd()
        .args(["redeem", "-", "--device", "d3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bytes = token.as_bytes()[..30].to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    child.stdin.take().unwrap().write_all(&bytes).unwrap();
    Run::from(child.wait_with_output().unwrap()).assert_rejected("invalid token");
}
