//! End-to-end tests of the `tokenctl` example: every command and error path, each test
//! against its own SQLite file and key file in a temporary directory.
//!
//! The harness (building the binary, running it, checking its exit) is
//! `support::tokenctl`, shared with the hardening tests.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
#[cfg(unix)]
use support::files::{chmod, mode};
use support::qr::decode_png;
use support::tokenctl::{Env, Run};

fn is_token(text: &str) -> bool {
    text.len() == 53
        && text.starts_with("obt1_")
        && text[5..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

const COMPONENT: &str = "com.example.dpc/.AdminReceiver";
const CHECKSUM: &str = "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w";
const DOWNLOAD: &str = "https://mdm.example.com/dpc/latest.apk";
const ANDROID: [&str; 6] = [
    "--android-component",
    COMPONENT,
    "--android-checksum",
    CHECKSUM,
    "--android-download",
    DOWNLOAD,
];

// ---------------------------------------------------------------------------------------
// init, key file, global options

#[test]
fn init_is_idempotent_and_creates_a_private_key_file() {
    let env = Env::new();
    let first = env.ok(&["init"]);
    assert!(first.stdout.contains("created key file"), "{first:?}");
    assert!(first.stdout.contains("created database"), "{first:?}");
    assert!(env.db().exists() && env.key().exists());
    #[cfg(unix)]
    assert_eq!(mode(&env.key()), 0o600);
    let key_before = fs::read(env.key()).unwrap();

    let second = env.ok(&["init"]);
    assert!(second.stdout.contains("exists"), "{second:?}");
    assert!(second.stdout.contains("schema up to date"), "{second:?}");
    assert_eq!(fs::read(env.key()).unwrap(), key_before, "key file kept");

    // The output names the key id but never the secret.
    let secret_text = String::from_utf8(key_before).unwrap();
    let secret = secret_text.split_whitespace().nth(2).unwrap();
    for run in [&first, &second] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }

    // Tokens survive a second init.
    let (_, token) = env.issue(&["--group", "g"]);
    env.ok(&["init"]);
    assert_eq!(env.redeem(&token, "d1").code, 0);
}

#[test]
fn commands_before_init_say_to_run_init() {
    let env = Env::new();
    env.run(&["list"]).assert_error("tokenctl init");
    env.run(&["issue", "--group", "g"])
        .assert_error("tokenctl init");
    env.run(&["keys", "list"]).assert_error("tokenctl init");
    // With a key file but no database, commands other than init do not create one.
    env.ok(&["init"]);
    fs::remove_file(env.db()).unwrap();
    env.run(&["list"]).assert_error("does not exist");
    assert!(!env.db().exists());
}

#[cfg(unix)]
#[test]
fn a_key_file_others_can_read_is_refused() {
    let env = Env::init();
    let (_, token) = env.issue(&["--group", "g"]);
    for bad in [0o644, 0o640, 0o604] {
        chmod(&env.key(), bad);
        for args in [
            vec!["list"],
            vec!["issue", "--group", "g"],
            vec!["redeem", token.as_str(), "--device", "d"],
            vec!["keys", "list"],
            vec!["keys", "rotate"],
            vec!["init"],
        ] {
            let run = env.run(&args);
            run.assert_error("accessible by group or others");
            assert!(run.stderr.contains("chmod 600"), "{run:?}");
        }
    }
    chmod(&env.key(), 0o600);
    assert_eq!(env.redeem(&token, "d").code, 0);
}

#[test]
fn an_invalid_key_file_is_refused_without_echoing_it() {
    let env = Env::new();
    fs::write(env.key(), "obk1 0a0b0c0d c2VjcmV0c2VjcmV0c2VjcmV0 boss\n").unwrap();
    #[cfg(unix)]
    chmod(&env.key(), 0o600);
    let run = env.run(&["init"]);
    run.assert_error("not a valid keyring");
    assert!(!run.stderr.contains("c2VjcmV0"), "{run:?}");
}

#[test]
fn environment_variables_and_default_paths() {
    let env = Env::new();
    // No --db/--key: the defaults in the working directory.
    let run = Run::from(env.bare().arg("init").output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    assert!(env.path("onboarding-tokens.db").exists());
    assert!(env.path("onboarding-token.key").exists());

    // The environment names the database, key and organization.
    let mut cmd = env.bare();
    cmd.env("ONBOARDING_TOKEN_DB", env.db())
        .env("ONBOARDING_TOKEN_KEY", env.key())
        .env("ONBOARDING_TOKEN_ORG", "acme")
        .arg("init");
    assert_eq!(Run::from(cmd.output().unwrap()).code, 0);
    let mut cmd = env.bare();
    cmd.env("ONBOARDING_TOKEN_DB", env.db())
        .env("ONBOARDING_TOKEN_KEY", env.key())
        .env("ONBOARDING_TOKEN_ORG", "acme")
        .args(["issue", "--group", "g", "--json"]);
    let issued = Run::from(cmd.output().unwrap()).json();
    assert_eq!(issued["organization"], "acme");
    // The default organization does not see it; --org acme does.
    assert!(env.list_json(&[]).is_empty());
    assert_eq!(env.list_json(&["--org", "acme"]).len(), 1);
    // The last of a repeated option wins (wrappers can be overridden).
    let run = Run::from(
        env.bare()
            .args(["--db", "elsewhere.db", "--key"])
            .arg(env.key())
            .arg("--db")
            .arg(env.db())
            .args(["--org", "acme", "list", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json().as_array().unwrap().len(), 1);
    assert!(!env.path("elsewhere.db").exists());
    // Global options also work after the command.
    let run = Run::from(
        env.bare()
            .args(["list", "--json", "--org", "acme", "--db"])
            .arg(env.db())
            .arg("--key")
            .arg(env.key())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json().as_array().unwrap().len(), 1);
}

#[test]
fn sqlite_urls_are_accepted() {
    let env = Env::new();
    let url = format!("sqlite://{}", env.path("url.db").display());
    let run = Run::from(
        env.bare()
            .args(["--db", &url, "--key"])
            .arg(env.key())
            .arg("init")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(env.path("url.db").exists());
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_urls_need_the_postgres_feature() {
    let env = Env::new();
    let run = Run::from(
        env.bare()
            .args(["--db", "postgres://app:hunter2@localhost/mdm", "--key"])
            .arg(env.key())
            .arg("init")
            .output()
            .unwrap(),
    );
    run.assert_error("postgres");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
}

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

// ---------------------------------------------------------------------------------------
// Usage errors (exit 2)

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

// ---------------------------------------------------------------------------------------
// issue

#[test]
fn issue_prints_only_the_token_on_stdout() {
    let env = Env::init();
    let run = env.ok(&["issue", "--group", "emea/berlin"]);
    let token = run.stdout.strip_suffix('\n').expect("one line");
    assert!(is_token(token), "{run:?}");
    // The summary on stderr names the id, never the token.
    assert!(run.stderr.contains("issued token "), "{run:?}");
    assert!(!run.stderr.contains(token));
    assert!(!run.stderr.contains(&token[5..]));
    assert_eq!(env.redeem(token, "d").code, 0);
}

#[test]
fn issue_json_in_every_format_redeems() {
    let env = Env::init();
    let url_base = "https://mdm.example.com/enroll?site=berlin";
    let formats: Vec<(&str, Vec<&str>)> = vec![
        ("token", vec![]),
        ("grouped", vec![]),
        ("url", vec!["--url-base", url_base]),
        ("android", ANDROID.to_vec()),
        ("kme", vec!["--android-extra", "tenant=acme"]),
        ("nfc", ANDROID.to_vec()),
    ];
    for (format, extra) in formats {
        let mut args = vec!["issue", "--json", "--group", "g", "--format", format];
        args.extend(extra);
        let json = env.ok(&args).json();
        let id = json["id"].as_str().unwrap();
        let token = json["token"].as_str().unwrap();
        let payload = json["payload"].as_str().unwrap();
        assert!(is_id(id), "{json}");
        assert!(is_token(token), "{json}");
        assert_eq!(json["format"], format);
        assert_eq!(json["group"], "g");
        assert_eq!(json["status"], "active");
        match format {
            "token" => assert_eq!(payload, token),
            "grouped" => {
                assert!(payload.starts_with("obt1_ "), "{payload}");
                assert_eq!(payload.replace(' ', ""), token);
            }
            "url" => assert_eq!(payload, format!("{url_base}&token={token}")),
            "android" => {
                let android: Value = serde_json::from_str(payload).unwrap();
                assert_eq!(
                    android["android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"],
                    COMPONENT
                );
                assert_eq!(
                    android["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"],
                    token
                );
            }
            "kme" => {
                let kme: Value = serde_json::from_str(payload).unwrap();
                assert_eq!(
                    kme["com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"],
                    token
                );
                assert_eq!(kme["tenant"], "acme");
            }
            "nfc" => {
                assert!(payload.contains(&format!(
                    "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME={COMPONENT}"
                )));
                assert!(payload.contains(token));
            }
            _ => unreachable!(),
        }
        // The payload itself is what a device hands in.
        let redeemed = env.redeem(payload, &format!("device-{format}"));
        assert_eq!(redeemed.code, 0, "{format}: {redeemed:?}");
        assert_eq!(redeemed.json()["token_id"], id);
    }
}

#[test]
fn issue_plain_output_in_a_format_is_the_payload() {
    let env = Env::init();
    let run = env.ok(&[
        "issue",
        "--group",
        "g",
        "--format",
        "url",
        "--url-base",
        "https://mdm.example.com/e",
        "--url-param",
        "t",
    ]);
    let link = run.stdout.trim_end();
    assert!(
        link.starts_with("https://mdm.example.com/e?t=obt1_"),
        "{run:?}"
    );
    assert_eq!(env.redeem(link, "d").code, 0);
}

#[test]
fn issue_records_every_option() {
    let env = Env::init();
    let (id, _) = env.issue(&[
        "--group",
        "emea/berlin",
        "--policy",
        "wifi-corp",
        "--policy",
        "vpn",
        "--max-uses",
        "25",
        "--not-before",
        "2030-01-01T09:00:00+01:00",
        "--expires-at",
        "2030-02-01T00:00:00Z",
        "--description",
        "Berlin laptops, 2nd floor",
        "--meta",
        "site=berlin",
        "--meta",
        "cost=4711=x",
    ]);
    let shown = env.ok(&["show", &id, "--json"]).json();
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["group"], "emea/berlin");
    assert_eq!(shown["policies"], serde_json::json!(["wifi-corp", "vpn"]));
    assert_eq!(shown["limit"], 25);
    assert_eq!(shown["uses"], 0);
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["not_before"], "2030-01-01T08:00:00Z");
    assert_eq!(shown["expires"], "2030-02-01T00:00:00Z");
    assert_eq!(shown["description"], "Berlin laptops, 2nd floor");
    assert_eq!(shown["metadata"]["site"], "berlin");
    assert_eq!(shown["metadata"]["cost"], "4711=x");
    assert_eq!(shown["redemptions"], serde_json::json!([]));

    let (id, _) = env.issue(&["--group", "g", "--unlimited", "--never-expires"]);
    let shown = env.ok(&["show", &id, "--json"]).json();
    assert_eq!(shown["limit"], "unlimited");
    assert_eq!(shown["expires"], "never");

    let (id, _) = env.issue(&["--group", "g", "--expires-in", "90m"]);
    let shown = env.ok(&["show", &id, "--json"]).json();
    assert_eq!(shown["limit"], 1);
    let created =
        chrono::DateTime::parse_from_rfc3339(shown["created_at"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(shown["expires"].as_str().unwrap()).unwrap();
    assert_eq!(expires - created, chrono::TimeDelta::minutes(90));
}

#[test]
fn issue_bad_values_exit_1_naming_the_option_and_issue_nothing() {
    let env = Env::init();
    // Every command closes the database cleanly: no write-ahead log is left behind, so
    // the file itself shows whether anything was written.
    assert!(!env.path("tokens.db-wal").exists());
    let db_before = fs::read(env.db()).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--group", "emea//berlin"], "--group"),
        (&["--group", "g", "--policy", "bad policy"], "--policy"),
        (&["--group", "g", "--policy", "p", "--policy", "p"], "twice"),
        (&["--group", "g", "--expires-in", "7x"], "--expires-in"),
        (
            &["--group", "g", "--expires-at", "tomorrow"],
            "--expires-at",
        ),
        (
            &["--group", "g", "--expires-at", "2001-01-01T00:00:00Z"],
            "expiry",
        ),
        (
            &["--group", "g", "--not-before", "2030-13-01T00:00:00Z"],
            "--not-before",
        ),
        (
            &[
                "--group",
                "g",
                "--not-before",
                "2030-01-02T00:00:00Z",
                "--expires-at",
                "2030-01-01T00:00:00Z",
            ],
            "window",
        ),
        (&["--group", "g", "--meta", "novalue"], "--meta"),
        (&["--group", "g", "--meta", "k=1", "--meta", "k=2"], "twice"),
        (
            &["--group", "g", "--description", &"x".repeat(2000)],
            "description",
        ),
        (
            &["--group", "g", "--format", "url", "--url-base", "ftp://x"],
            "--url-base",
        ),
        (
            &[
                "--group",
                "g",
                "--format",
                "android",
                "--android-component",
                COMPONENT,
                "--android-checksum",
                "not+base64/",
                "--android-download",
                DOWNLOAD,
            ],
            "checksum",
        ),
        (
            &[
                "--group",
                "g",
                "--format",
                "android",
                "--android-component",
                COMPONENT,
                "--android-checksum",
                CHECKSUM,
                "--android-download",
                "http://insecure/x.apk",
            ],
            "https",
        ),
        (
            &[
                "--group",
                "g",
                "--format",
                "android",
                "--android-component",
                COMPONENT,
                "--android-checksum",
                CHECKSUM,
                "--android-download",
                DOWNLOAD,
                "--wifi-ssid",
                "corp",
                "--wifi-security",
                "WPA",
                "--wifi-password",
                "short",
            ],
            "Wi-Fi",
        ),
        (
            &["--group", "g", "--out", "/nonexistent-dir/x/token.txt"],
            "nonexistent-dir",
        ),
    ];
    for (args, needle) in cases {
        let mut all = vec!["issue"];
        all.extend_from_slice(args);
        env.run(&all).assert_error(needle);
    }
    assert_eq!(
        fs::read(env.db()).unwrap(),
        db_before,
        "the database is untouched"
    );
    assert!(env.list_json(&["--all"]).is_empty(), "nothing issued");
    let mut cmd = env.cmd();
    cmd.env("ONBOARDING_TOKEN_NOW", "yesterday")
        .args(["issue", "--group", "g"]);
    Run::from(cmd.output().unwrap()).assert_error("ONBOARDING_TOKEN_NOW");
}

#[test]
fn issue_android_payload_with_wifi_and_awkward_characters() {
    let env = Env::init();
    let mut args = vec!["issue", "--json", "--group", "g", "--format", "android"];
    args.extend(ANDROID);
    args.extend([
        "--android-extras-key",
        "com.example.dpc.TOKEN",
        "--android-extra",
        "server_url=https://mdm.example.com/api?a=1&b=\"2\"",
        "--android-locale",
        "de_DE",
        "--android-time-zone",
        "Europe/Berlin",
        "--android-skip-encryption",
        "--wifi-ssid",
        "Café \"Corp\" \\ 5G",
        "--wifi-password",
        "correct horse \"battery\"",
        "--wifi-hidden",
    ]);
    let json = env.ok(&args).json();
    let android: Value = serde_json::from_str(json["payload"].as_str().unwrap()).unwrap();
    let key = |k: &str| android[format!("android.app.extra.PROVISIONING_{k}")].clone();
    assert_eq!(key("WIFI_SSID"), "Café \"Corp\" \\ 5G");
    assert_eq!(key("WIFI_PASSWORD"), "correct horse \"battery\"");
    assert_eq!(key("WIFI_SECURITY_TYPE"), "WPA");
    assert_eq!(key("WIFI_HIDDEN"), true);
    assert_eq!(key("LOCALE"), "de_DE");
    assert_eq!(key("TIME_ZONE"), "Europe/Berlin");
    assert_eq!(key("SKIP_ENCRYPTION"), true);
    // Written padded; the same digest.
    assert_eq!(
        key("DEVICE_ADMIN_SIGNATURE_CHECKSUM")
            .as_str()
            .unwrap()
            .trim_end_matches('='),
        CHECKSUM
    );
    assert_eq!(key("DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION"), DOWNLOAD);
    let extras = key("ADMIN_EXTRAS_BUNDLE");
    assert_eq!(extras["com.example.dpc.TOKEN"], json["token"]);
    assert_eq!(
        extras["server_url"],
        "https://mdm.example.com/api?a=1&b=\"2\""
    );
    // The Wi-Fi password may also come from the environment (out of the process list).
    let mut cmd = env.cmd();
    cmd.env("ONBOARDING_TOKEN_WIFI_PASSWORD", "from the environment")
        .args(["issue", "--json", "--group", "g", "--format", "android"])
        .args(ANDROID)
        .args(["--wifi-ssid", "corp"]);
    let run = Run::from(cmd.output().unwrap());
    assert_eq!(run.code, 0, "{run:?}");
    let android: Value = serde_json::from_str(run.json()["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        android["android.app.extra.PROVISIONING_WIFI_PASSWORD"],
        "from the environment"
    );
}

#[test]
fn issue_qr_png_file_decodes_to_the_payload() {
    let env = Env::init();
    // The bare token.
    let out = env.path("token.png");
    let json = env
        .ok(&[
            "issue",
            "--group",
            "g",
            "--json",
            "--qr",
            "png",
            "--out",
            out.to_str().unwrap(),
        ])
        .json();
    #[cfg(unix)]
    assert_eq!(mode(&out), 0o600);
    assert_eq!(
        decode_png(&fs::read(&out).unwrap()),
        [json["token"].as_str().unwrap()]
    );
    assert_eq!(json["out"], out.to_str().unwrap());

    // The Android payload, exactly as --json reports it.
    let out = env.path("android.png");
    let mut args = vec![
        "issue",
        "--group",
        "g",
        "--json",
        "--format",
        "android",
        "--qr",
        "png",
        "--png-scale",
        "4",
    ];
    args.extend(ANDROID);
    args.extend([
        "--wifi-ssid",
        "Corp Setup",
        "--wifi-password",
        "correct horse",
        "--out",
    ]);
    args.push(out.to_str().unwrap());
    let json = env.ok(&args).json();
    let decoded = decode_png(&fs::read(&out).unwrap());
    assert_eq!(decoded, [json["payload"].as_str().unwrap()]);
    let android: Value = serde_json::from_str(&decoded[0]).unwrap();
    assert_eq!(
        android["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"],
        json["token"]
    );
    assert_eq!(env.redeem(&decoded[0], "scanner").code, 0);
    // No temporary files are left beside the outputs.
    let names: BTreeSet<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn issue_qr_to_stdout_and_to_files() {
    let env = Env::init();
    // PNG through a pipe.
    let run = env.ok(&["issue", "--group", "g", "--qr", "png"]);
    assert!(run.stdout.is_empty() || !run.stdout.contains("obt1_"));
    let output = env
        .cmd()
        .args(["issue", "--group", "g", "--qr", "png"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(&output.stdout[1..4], b"PNG");
    assert_eq!(decode_png(&output.stdout).len(), 1);
    assert!(is_token(&decode_png(&output.stdout)[0]));

    let svg = env.ok(&["issue", "--group", "g", "--qr", "svg"]);
    assert!(svg.stdout.starts_with("<svg"), "{svg:?}");
    assert!(!svg.stdout.contains("obt1_"));

    let terminal = env.ok(&["issue", "--group", "g", "--qr", "terminal"]);
    assert!(
        terminal.stdout.contains('█') || terminal.stdout.contains('▀'),
        "{terminal:?}"
    );
    assert!(!terminal.stdout.contains("obt1_"));

    // Text to a file: the file holds the token, stdout nothing.
    let out = env.path("token.txt");
    let run = env.ok(&["issue", "--group", "g", "--out", out.to_str().unwrap()]);
    assert_eq!(run.stdout, "");
    let text = fs::read_to_string(&out).unwrap();
    assert!(is_token(text.trim_end()));
    #[cfg(unix)]
    assert_eq!(mode(&out), 0o600);
    assert!(run.stderr.contains("wrote"));
}

// ---------------------------------------------------------------------------------------
// redeem

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

// ---------------------------------------------------------------------------------------
// list, show

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

// ---------------------------------------------------------------------------------------
// revoke

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

// ---------------------------------------------------------------------------------------
// bulk

fn manifest(dir: &Path) -> Vec<Value> {
    let json: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    json["tokens"].as_array().unwrap().clone()
}

#[test]
fn bulk_from_a_template_writes_manifest_sheet_and_png_qr_files_that_redeem() {
    let env = Env::init();
    let out = env.path("sheets/berlin");
    let run = env.ok(&[
        "bulk",
        "--group",
        "emea/berlin",
        "--count",
        "3",
        "--policy",
        "wifi-corp",
        "--max-uses",
        "2",
        "--description",
        "Berlin <laptops> & co",
        "--out-dir",
        out.to_str().unwrap(),
        "--qr",
        "png",
        "--json",
    ]);
    assert_eq!(run.stderr, "", "no progress bar without a terminal");
    let summary = run.json();
    assert_eq!(summary["count"], 3);
    let batch = summary["batch"].as_str().unwrap();
    assert!(is_id(batch));
    assert!(!run.stdout.contains("obt1_"));

    let entries = manifest(&out);
    assert_eq!(entries.len(), 3);
    let mut names: BTreeSet<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in ["manifest.csv", "manifest.json", "sheet.html"] {
        assert!(names.remove(name), "{name} missing");
    }
    let sheet = fs::read_to_string(out.join("sheet.html")).unwrap();
    let csv = fs::read_to_string(out.join("manifest.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(csv.starts_with(
        "id,batch,group,policies,not_before,expires,limit,description,token,qr_file\n"
    ));
    assert!(sheet.contains("Berlin &lt;laptops&gt; &amp; co"));
    for entry in &entries {
        let id = entry["id"].as_str().unwrap();
        let token = entry["token"].as_str().unwrap();
        let qr_file = entry["qr_file"].as_str().unwrap();
        assert_eq!(qr_file, format!("{id}.png"));
        assert!(names.remove(qr_file), "{qr_file} missing");
        assert_eq!(entry["batch"], batch);
        assert_eq!(entry["group"], "emea/berlin");
        assert_eq!(entry["limit"], 2);
        assert_eq!(decode_png(&fs::read(out.join(qr_file)).unwrap()), [token]);
        assert!(csv.contains(token) && csv.contains(id));
        assert!(sheet.contains(&id[..8]));
        assert_eq!(env.redeem(token, "scanned").code, 0, "{id}");
    }
    assert!(names.is_empty(), "unexpected files: {names:?}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&out), 0o700);
        for entry in fs::read_dir(&out).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
    }
    // No staging directory is left beside it.
    let siblings: Vec<_> = fs::read_dir(env.path("sheets")).unwrap().collect();
    assert_eq!(siblings.len(), 1);
    assert_eq!(env.list_json(&["--batch", batch]).len(), 3);

    // The human summary.
    let human = env.ok(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "1",
        "--out-dir",
        env.path("h").to_str().unwrap(),
    ]);
    assert!(
        human.stdout.contains("issued 1 tokens in batch"),
        "{human:?}"
    );
    assert!(human.stdout.contains("manifest.csv"));
}

#[test]
fn bulk_from_a_csv_spec() {
    let env = Env::init();
    let spec = env.path("spec.csv");
    fs::write(
        &spec,
        "group,policies,count,limit,expires,description,metadata\n\
         emea/berlin,wifi-corp;vpn,2,3,7d,Berlin laptops,site=berlin\n\
         # kiosks\n\
         amer/nyc,,1,unlimited,never,\"Kiosks, lobby\",\n",
    )
    .unwrap();
    let out = env.path("out");
    let run = env.ok(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--format",
        "url",
        "--url-base",
        "https://mdm.example.com/enroll",
        "--qr",
        "png",
    ]);
    assert!(run.stdout.contains("issued 3 tokens"), "{run:?}");
    let entries = manifest(&out);
    let groups: Vec<&str> = entries
        .iter()
        .map(|e| e["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["emea/berlin", "emea/berlin", "amer/nyc"]);
    assert_eq!(
        entries[0]["policies"],
        serde_json::json!(["wifi-corp", "vpn"])
    );
    assert_eq!(entries[0]["limit"], 3);
    assert_eq!(entries[2]["limit"], "unlimited");
    assert_eq!(entries[2]["expires"], "never");
    assert_eq!(entries[2]["description"], "Kiosks, lobby");
    for entry in &entries {
        let token = entry["token"].as_str().unwrap();
        // The QR codes hold the link, per --format.
        let decoded = decode_png(&fs::read(out.join(entry["qr_file"].as_str().unwrap())).unwrap());
        assert_eq!(
            decoded,
            [format!("https://mdm.example.com/enroll?token={token}")]
        );
        assert_eq!(env.redeem(&decoded[0], "d").code, 0);
    }
    let berlin = env
        .ok(&["show", entries[0]["id"].as_str().unwrap(), "--json"])
        .json();
    assert_eq!(berlin["metadata"]["site"], "berlin");

    // SVG is the default file format.
    let svg_out = env.path("svg");
    env.ok(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        svg_out.to_str().unwrap(),
    ]);
    for entry in manifest(&svg_out) {
        let name = entry["qr_file"].as_str().unwrap();
        assert!(name.ends_with(".svg"));
        assert!(
            fs::read_to_string(svg_out.join(name))
                .unwrap()
                .starts_with("<svg")
        );
    }
}

#[test]
fn bulk_with_a_bad_csv_exits_1_naming_line_and_column_and_issues_nothing() {
    let env = Env::init();
    let spec = env.path("spec.csv");
    fs::write(
        &spec,
        "group,count,limit\n\
         emea/berlin,2,1\n\
         amer/nyc,many,1\n\
         apac//tokyo,1,0\n",
    )
    .unwrap();
    let out = env.path("out");
    let run = env.run(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    run.assert_error("nothing was issued");
    assert!(run.stderr.contains("line 3, column `count`"), "{run:?}");
    assert!(run.stderr.contains("line 4, column `group`"), "{run:?}");
    assert!(run.stderr.contains("line 4, column `limit`"), "{run:?}");
    assert!(
        run.stderr.lines().all(|l| l.starts_with("tokenctl: ")),
        "{run:?}"
    );
    assert!(!out.exists());
    assert!(env.list_json(&["--all"]).is_empty());

    // Unknown columns, missing files, non-UTF-8 files.
    fs::write(&spec, "group,count,colour\ng,1,red\n").unwrap();
    env.run(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("colour");
    env.run(&[
        "bulk",
        "--spec",
        "missing.csv",
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("missing.csv");
    fs::write(&spec, b"group,count\n\xff\xfe,1\n").unwrap();
    env.run(&[
        "bulk",
        "--spec",
        spec.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("UTF-8");
    assert!(!out.exists());
    assert!(env.list_json(&["--all"]).is_empty());
}

#[test]
fn bulk_refuses_a_non_empty_directory_and_bad_template_values() {
    let env = Env::init();
    let out = env.path("out");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("old.txt"), "keep me").unwrap();
    env.run(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "2",
        "--out-dir",
        out.to_str().unwrap(),
    ])
    .assert_error("not empty");
    assert_eq!(fs::read_to_string(out.join("old.txt")).unwrap(), "keep me");
    env.run(&[
        "bulk",
        "--group",
        "g g",
        "--count",
        "2",
        "--out-dir",
        env.path("x").to_str().unwrap(),
    ])
    .assert_error("--group");
    env.run(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "2",
        "--expires-at",
        "2001-01-01T00:00:00Z",
        "--out-dir",
        env.path("x").to_str().unwrap(),
    ])
    .assert_error("expiry");
    assert!(env.list_json(&["--all"]).is_empty());
    assert!(!env.path("x").exists());

    // An existing empty directory is fine.
    let empty = env.path("empty");
    fs::create_dir(&empty).unwrap();
    env.ok(&[
        "bulk",
        "--group",
        "g",
        "--count",
        "2",
        "--out-dir",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(manifest(&empty).len(), 2);
}

// ---------------------------------------------------------------------------------------
// keys

#[test]
fn keys_rotate_keeps_old_tokens_and_list_shows_no_secret() {
    let env = Env::init();
    let (_, old_token) = env.issue(&["--group", "g", "--max-uses", "3"]);
    let before = env.ok(&["keys", "list", "--json"]).json();
    let old_key = before[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        before,
        serde_json::json!([{ "id": old_key, "role": "active" }])
    );

    let rotated = env.ok(&["keys", "rotate", "--json"]).json();
    assert_eq!(rotated["previous"], old_key.as_str());
    let new_key = rotated["active"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    #[cfg(unix)]
    assert_eq!(mode(&env.key()), 0o600);

    let after = env.ok(&["keys", "list", "--json"]).json();
    assert_eq!(
        after,
        serde_json::json!([
            { "id": new_key, "role": "active" },
            { "id": old_key, "role": "verify" },
        ])
    );
    let table = env.ok(&["keys", "list"]);
    assert!(table.stdout.contains(&new_key) && table.stdout.contains("verify only"));
    // No secret from the key file appears in any output.
    let file = fs::read_to_string(env.key()).unwrap();
    for secret in file.lines().filter_map(|l| l.split_whitespace().nth(2)) {
        assert!(!table.stdout.contains(secret));
        assert!(!after.to_string().contains(secret));
        assert!(!rotated.to_string().contains(secret));
    }

    // Old tokens still redeem; new ones are signed with the new key.
    assert_eq!(env.redeem(&old_token, "d1").code, 0);
    let issued = env.ok(&["issue", "--group", "g", "--json"]).json();
    assert_eq!(issued["key_id"], new_key.as_str());
    let new_token = issued["token"].as_str().unwrap().to_owned();

    // Retiring the old key invalidates its tokens only.
    env.run(&["keys", "retire", &new_key])
        .assert_error("active");
    env.ok(&["keys", "retire", &old_key]);
    env.redeem(&old_token, "d2")
        .assert_rejected("invalid token");
    assert_eq!(env.redeem(&new_token, "d2").code, 0);
    env.run(&["keys", "retire", "nothex"])
        .assert_error("key id");
    let leftovers: Vec<String> = fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// The same commands against PostgreSQL (`--db postgres://…`, feature `postgres`), in an
/// organization of this run's own so concurrent runs do not meet.
#[cfg(feature = "postgres")]
#[test]
fn postgres_urls_work_end_to_end() {
    let url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set; run with DATABASE_URL=postgres://postgres@127.0.0.1:5432/test",
    );
    let env = Env::new();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let org = format!("tokenctl-{}-{nanos}", std::process::id());
    let run = |args: &[&str]| {
        Run::from(
            env.bare()
                .args(["--db", &url, "--org", &org, "--key"])
                .arg(env.key())
                .args(args)
                .output()
                .unwrap(),
        )
    };
    let init = run(&["init"]);
    assert_eq!(init.code, 0, "{init:?}");
    assert!(init.stdout.contains("(postgres)"), "{init:?}");
    let issued = run(&["issue", "--json", "--group", "g", "--max-uses", "2"]).json();
    let token = issued["token"].as_str().unwrap();
    let id = issued["id"].as_str().unwrap();
    for device in ["a", "b"] {
        let r = run(&["redeem", token, "--device", device]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    run(&["redeem", token, "--device", "c"]).assert_rejected("exhausted");
    let listed = run(&["list", "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["status"], "exhausted");
    let shown = run(&["show", id]);
    assert!(shown.stdout.contains("redemptions  2"), "{shown:?}");
    assert!(
        run(&["revoke", "--group", "g"])
            .stdout
            .contains("revoked 1 token")
    );
    assert_eq!(run(&["show", id, "--json"]).json()["status"], "revoked");
}
