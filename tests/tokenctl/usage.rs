//! tokenctl: usage errors (exit 2) and help.

use super::*;

#[test]
fn help_and_version_exit_0() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    for command in [
        "init", "issue", "bulk", "list", "show", "revoke", "redeem", "keys",
    ] {
        assert!(
            help.stdout.contains(command),
            "{command} missing from --help"
        );
    }
    let issue_help = env.ok(&["issue", "--help"]);
    for option in [
        "--group",
        "--policy",
        "--max-uses",
        "--unlimited",
        "--not-before",
        "--expires-in",
        "--expires-at",
        "--never-expires",
        "--description",
        "--meta",
        "--format",
        "--url-base",
        "--android-component",
        "--android-checksum",
        "--android-download",
        "--android-extras-key",
        "--wifi-ssid",
        "--wifi-security",
        "--wifi-password",
        "--wifi-hidden",
        "--qr",
        "--out",
        "--json",
    ] {
        assert!(issue_help.stdout.contains(option), "{option} missing");
    }
    assert!(env.ok(&["--version"]).stdout.starts_with("tokenctl "));
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::init();
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["issue"],
        &["issue", "--group", "g", "--bogus"],
        &["issue", "--group", "g", "--max-uses", "2", "--unlimited"],
        &["issue", "--group", "g", "--max-uses", "0"],
        &["issue", "--group", "g", "--max-uses", "many"],
        &[
            "issue",
            "--group",
            "g",
            "--expires-in",
            "1d",
            "--never-expires",
        ],
        &[
            "issue",
            "--group",
            "g",
            "--expires-in",
            "1d",
            "--expires-at",
            "2099-01-01T00:00:00Z",
        ],
        &["issue", "--group", "g", "--format", "qr"],
        &["issue", "--group", "g", "--format", "url"],
        &["issue", "--group", "g", "--format", "android"],
        &[
            "issue",
            "--group",
            "g",
            "--format",
            "nfc",
            "--android-component",
            COMPONENT,
        ],
        &["issue", "--group", "g", "--wifi-ssid", "corp"],
        &["issue", "--group", "g", "--qr", "jpeg"],
        &["issue", "--group", "g", "--qr", "svg", "--json"],
        &["bulk", "--group", "g", "--count", "2"],
        &["bulk", "--group", "g", "--out-dir", "x"],
        &["bulk", "--out-dir", "x"],
        &[
            "bulk",
            "--spec",
            "s.csv",
            "--group",
            "g",
            "--count",
            "1",
            "--out-dir",
            "x",
        ],
        &[
            "bulk",
            "--spec",
            "s.csv",
            "--max-uses",
            "2",
            "--out-dir",
            "x",
        ],
        &["bulk", "--group", "g", "--count", "0", "--out-dir", "x"],
        &["list", "--status", "sleeping"],
        &["list", "--limit", "10", "--all"],
        &["show"],
        &["revoke"],
        &["revoke", "0123456789abcdef0123456789abcdef", "--group", "g"],
        &[
            "revoke",
            "--group",
            "g",
            "--batch",
            "0123456789abcdef0123456789abcdef",
        ],
        &["redeem", "obt1_x"],
        &["redeem", "--device", "d"],
        &["keys"],
        &["keys", "burn"],
    ];
    for args in cases {
        let run = env.run(args);
        assert!(run.code == 2, "tokenctl {args:?}: {run:?}");
        run.assert_usage();
    }
    // Nothing was issued by any of them.
    assert!(env.list_json(&[]).is_empty());
    assert!(!env.path("x").exists());
}
