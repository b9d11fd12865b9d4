//! tokenctl: `issue` in every format, its options and bad values, QR output.

use super::*;

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
