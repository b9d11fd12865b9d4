//! tokenctl: `list`, `show` and `revoke`.

use super::*;

#[test]
fn list_and_show_never_print_token_strings() {
    let env = Env::init();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for (group, desc) in [
        ("emea/berlin", "Berlin laptops"),
        ("amer/nyc", "NYC kiosks"),
    ] {
        let (id, token) = env.issue(&[
            "--group",
            group,
            "--policy",
            "wifi-corp",
            "--max-uses",
            "2",
            "--description",
            desc,
        ]);
        ids.push(id);
        tokens.push(token);
    }
    assert_eq!(env.redeem(&tokens[0], "SN-0001").code, 0);

    let mut outputs = vec![
        env.ok(&["list"]),
        env.ok(&["list", "--json"]),
        env.ok(&["list", "--all"]),
    ];
    for id in &ids {
        outputs.push(env.ok(&["show", id]));
        outputs.push(env.ok(&["show", id, "--json"]));
    }
    for run in &outputs {
        for token in &tokens {
            assert!(!run.stdout.contains(&token[5..]), "token in {run:?}");
            assert!(!run.stderr.contains(&token[5..]), "token in {run:?}");
        }
    }

    let table = &outputs[0].stdout;
    let header = table.lines().next().unwrap();
    for column in [
        "ID",
        "STATUS",
        "USES",
        "GROUP",
        "POLICIES",
        "VALIDITY",
        "DESCRIPTION",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let berlin = table.lines().find(|l| l.contains(&ids[0])).unwrap();
    for cell in [
        "active",
        "1/2",
        "emea/berlin",
        "wifi-corp",
        "until ",
        "Berlin laptops",
    ] {
        assert!(berlin.contains(cell), "{cell} not in {berlin}");
    }

    let show = &outputs[3].stdout;
    for needle in [
        "emea/berlin",
        "wifi-corp",
        "1 of 2 (1 left)",
        "Berlin laptops",
        "SN-0001",
        "redemptions  1",
    ] {
        assert!(show.contains(needle), "{needle} not in {show}");
    }
}

#[test]
fn list_filters_and_limits() {
    let env = Env::init();
    let (berlin, _) = env.issue(&["--group", "emea/berlin", "--policy", "vpn"]);
    let (munich, _) = env.issue(&["--group", "emea/munich"]);
    let (nyc, nyc_token) = env.issue(&["--group", "amer/nyc", "--policy", "vpn"]);
    env.ok(&["--org", "other", "issue", "--group", "emea/berlin"]);
    assert_eq!(env.redeem(&nyc_token, "d").code, 0);

    let ids = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(env.list_json(&[])),
        [berlin.clone(), munich.clone(), nyc.clone()]
    );
    assert_eq!(
        ids(env.list_json(&["--group", "emea"])),
        [berlin.clone(), munich.clone()]
    );
    assert_eq!(
        ids(env.list_json(&["--policy", "vpn"])),
        [berlin.clone(), nyc.clone()]
    );
    assert_eq!(
        ids(env.list_json(&["--status", "exhausted"])),
        std::slice::from_ref(&nyc)
    );
    assert_eq!(
        ids(env.list_json(&["--status", "active", "--group", "emea"])).len(),
        2
    );
    assert_eq!(ids(env.list_json(&["--org", "other"])).len(), 1);

    let limited = env.run(&["list", "--json", "--limit", "2"]);
    assert_eq!(
        ids(limited.json().as_array().unwrap().clone()),
        [berlin.clone(), munich.clone()]
    );
    assert!(limited.stderr.contains("--all"), "{limited:?}");
    assert_eq!(env.list_json(&["--all"]).len(), 3);

    // No match: an empty array, or a note for people.
    assert!(env.list_json(&["--group", "apac"]).is_empty());
    let empty = env.ok(&["list", "--group", "apac"]);
    assert_eq!(empty.stdout, "");
    assert!(empty.stderr.contains("no tokens"));

    // The largest limit is fine (no overflow).
    assert_eq!(env.list_json(&["--limit", &u64::MAX.to_string()]).len(), 3);
    env.run(&["list", "--group", "bad group"])
        .assert_error("--group");
    env.run(&["list", "--batch", "nope"])
        .assert_error("--batch");
}

#[test]
fn show_finds_tokens_by_prefix_and_refuses_others() {
    let env = Env::init();
    let (id, _) = env.issue(&["--group", "g"]);
    let shown = env.ok(&["show", &id[..8], "--json"]).json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(
        env.ok(&["show", &id.to_uppercase(), "--json"]).json()["id"],
        id.as_str()
    );

    env.run(&["show", "0123456789abcdef0123456789abcdef"])
        .assert_error("no token");
    env.run(&["show", "abc"]).assert_error("at least 8");
    env.run(&["show", "zzzzzzzzzz"]).assert_error("hex");
    env.run(&["--org", "elsewhere", "show", &id])
        .assert_error("--org default");
}

#[test]
fn revoke_by_id_group_and_batch() {
    let env = Env::init();
    let (one, one_token) = env.issue(&["--group", "solo"]);
    let run = env.ok(&["revoke", &one[..10], "--reason", "lost laptop"]);
    assert!(run.stdout.contains("revoked 1 token"), "{run:?}");
    let shown = env.ok(&["show", &one, "--json"]).json();
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revocation_reason"], "lost laptop");
    env.redeem(&one_token, "d").assert_rejected("revoked");
    // Again: nothing changes, still success.
    let again = env.ok(&["revoke", &one]);
    assert!(again.stdout.contains("already revoked"), "{again:?}");

    // A group, subgroups included, not the siblings.
    let (_, berlin) = env.issue(&["--group", "emea/de/berlin"]);
    let (_, munich) = env.issue(&["--group", "emea/de/munich"]);
    let (_, paris) = env.issue(&["--group", "emea/fr"]);
    let json = env.ok(&["revoke", "--group", "emea/de", "--json"]).json();
    assert_eq!(
        (json["revoked"].clone(), json["matched"].clone()),
        (2.into(), 2.into())
    );
    env.redeem(&berlin, "d").assert_rejected("revoked");
    env.redeem(&munich, "d").assert_rejected("revoked");
    assert_eq!(env.redeem(&paris, "d").code, 0);
    let json = env.ok(&["revoke", "--group", "emea", "--json"]).json();
    assert_eq!(
        (json["revoked"].clone(), json["already_revoked"].clone()),
        (1.into(), 2.into())
    );

    // A batch.
    let out = env.path("batch");
    let bulk = env
        .ok(&[
            "bulk",
            "--group",
            "kiosk",
            "--count",
            "3",
            "--out-dir",
            out.to_str().unwrap(),
            "--json",
        ])
        .json();
    let batch = bulk["batch"].as_str().unwrap();
    let (_, outside) = env.issue(&["--group", "kiosk"]);
    let run = env.ok(&["revoke", "--batch", batch, "--reason", "sheet lost"]);
    assert!(run.stdout.contains("revoked 3 tokens"), "{run:?}");
    assert_eq!(
        env.list_json(&["--batch", batch, "--status", "revoked"])
            .len(),
        3
    );
    assert_eq!(env.redeem(&outside, "d").code, 0);

    // Nothing to revoke: an error, exit 1.
    env.run(&["revoke", "--group", "nowhere"])
        .assert_error("no tokens");
    env.run(&["revoke", "0123456789abcdef0123456789abcdef"])
        .assert_error("no token");
    env.run(&["revoke", "--batch", "0123456789abcdef0123456789abcdef"])
        .assert_error("no tokens");
    env.run(&["--org", "other", "revoke", "--batch", batch])
        .assert_error("--org default");
    env.run(&["--org", "other", "revoke", &one])
        .assert_error("--org default");
    env.run(&["revoke", &one, "--reason", &"r".repeat(2000)])
        .assert_error("reason");
}
