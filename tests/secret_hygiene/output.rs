//! Serde and `Debug` output, key file errors and the crate's own logging: no secret anywhere.

use super::*;

#[tokio::test]
async fn serde_output_of_every_serializable_type_has_no_secret() {
    let (service, issued) = populated().await;
    let tokens: Vec<&TokenString> = issued.iter().map(|i| &i.secret).collect();
    let secrets = Secrets::new(&tokens);
    let d = DeviceId::new("SN-0").unwrap();

    let mut outputs: Vec<(&str, String)> = Vec::new();
    let page = service.list(&service.query()).await.unwrap();
    assert_eq!(page.tokens.len(), issued.len());
    outputs.push(("TokenPage", json(&page)));
    for i in &issued {
        let stored = service.get(i.token.id()).await.unwrap().unwrap();
        outputs.push(("Token", json(&stored)));
        outputs.push(("TokenParts", json(&stored.clone().into_parts())));
        outputs.push(("Validity", json(stored.validity())));
        outputs.push(("Expiry", json(&stored.validity().expiry)));
        outputs.push(("UsageLimit", json(&stored.usage_limit())));
        outputs.push(("Metadata", json(stored.metadata())));
        outputs.push(("Status", json(&service.status(&stored))));
        outputs.push(("TokenId", json(&stored.id())));
        outputs.push(("KeyId", json(&stored.key_id())));
        outputs.push(("BatchId", json(&stored.batch())));
        outputs.push(("OrgId", json(stored.organization())));
        outputs.push(("GroupId", json(stored.group())));
        outputs.push(("PolicyId", json(&stored.policies())));
        outputs.push(("PageCursor", json(&PageCursor::after(&stored))));
        outputs.push(("RevokeTarget", json(&RevokeTarget::Token(stored.id()))));
        if let Some(batch) = stored.batch() {
            outputs.push(("RevokeTarget", json(&RevokeTarget::Batch(batch))));
        }
        if let Some(r) = stored.revocation() {
            outputs.push(("Revocation", json(r)));
        }
        for r in service.redemptions(i.token.id()).await.unwrap() {
            outputs.push(("Redemption", json(&r)));
            outputs.push(("DeviceId", json(&r.device)));
        }
        let text = i.secret.expose_secret();
        match service.redeem(text, &d).await {
            Ok(e) => outputs.push(("Enrollment", json(&e))),
            Err(e) => outputs.push(("DeviceRejection", json(&e.device_facing()))),
        }
    }
    let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap())
        .with_expiry(ExpirySpec::After(TimeDelta::hours(1)));
    outputs.push(("TokenSpec", json(&spec)));
    outputs.push(("ExpirySpec", json(&ExpirySpec::After(TimeDelta::hours(1)))));
    outputs.push(("Leeway", json(&Leeway::new(TimeDelta::seconds(5)).unwrap())));
    outputs.push((
        "RevokeTarget",
        json(&RevokeTarget::Group {
            organization: OrgId::new("acme").unwrap(),
            group: GroupId::new("emea").unwrap(),
        }),
    ));
    outputs.push((
        "DeviceGroup",
        json(&DeviceGroup::new(GroupId::new("emea").unwrap(), "EMEA")),
    ));
    outputs.push((
        "Policy",
        json(&Policy::new(PolicyId::new("wifi").unwrap(), "Wi-Fi")),
    ));
    for r in [DeviceRejection::InvalidToken, DeviceRejection::Unavailable] {
        outputs.push(("DeviceRejection", json(&r)));
    }
    assert!(outputs.len() > 100);
    for (what, text) in &outputs {
        secrets.assert_absent(what, text);
    }
}

#[test]
fn debug_of_every_secret_carrier_is_redacted() {
    let ring = Keyring::new(key());
    let token = ring.sign(&TokenId::from_bytes([0x5c; 16]));
    let secrets = Secrets::new(&[&token]);
    let wifi = Wifi::new("Corp Setup", WifiSecurity::Wpa, Some(WIFI_PASSWORD)).unwrap();
    let android = AndroidProvisioning::new(
        "com.example.dpc/.AdminReceiver",
        "gJD2YwtOiWJHkSMkkIfLRlj-quNqG1fb6v100QmzM9w",
        "https://mdm.example.com/dpc.apk",
    )
    .unwrap()
    .with_admin_extras(AdminExtras::new().with_extra("tenant", "acme").unwrap())
    .with_wifi(wifi.clone());
    let config = PayloadConfig::new()
        .with_url(EnrollmentUrl::new("https://mdm.example.com/enroll").unwrap())
        .with_android(android.clone());

    let mut shown: Vec<(String, String)> = vec![
        ("TokenString".into(), format!("{token:?} {token:#?}")),
        ("Wifi".into(), format!("{wifi:?} {wifi:#?}")),
        (
            "AndroidProvisioning".into(),
            format!("{android:?} {android:#?}"),
        ),
        ("PayloadConfig".into(), format!("{config:?} {config:#?}")),
        ("Keyring".into(), format!("{ring:?} {ring:#?}")),
    ];
    for format in PayloadFormat::ALL {
        let text = config.render(format, &token).unwrap();
        // The rendered payload really carries the token (and, for Android, the password)...
        assert!(
            text.expose_secret().contains(token.expose_secret())
                || format == PayloadFormat::Grouped
                || format == PayloadFormat::Nfc
        );
        // ...and its Debug shows neither.
        shown.push((
            format!("SecretText ({format})"),
            format!("{text:?} {text:#?}"),
        ));
        let found = extract_token(text.expose_secret()).unwrap();
        assert_eq!(found.expose_secret(), token.expose_secret());
        shown.push((
            format!("TokenText ({format})"),
            format!("{found:?} {found:#?}"),
        ));
        #[cfg(feature = "qr")]
        {
            let qr = Qr::encode(text.expose_secret()).unwrap();
            shown.push((format!("Qr ({format})"), format!("{qr:?} {qr:#?}")));
        }
    }
    let android_json = android.qr_json(&token);
    assert!(android_json.expose_secret().contains(WIFI_PASSWORD));
    shown.push(("SecretText (android)".into(), format!("{android_json:?}")));
    for (what, text) in &shown {
        secrets.assert_absent(what, text);
    }
}

#[tokio::test]
async fn debug_of_issued_tokens_batches_and_manifests_is_redacted() {
    let (service, issued) = populated().await;
    let tokens: Vec<&TokenString> = issued.iter().map(|i| &i.secret).collect();
    let secrets = Secrets::new(&tokens);
    let batch = service
        .issue_many(
            TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("b").unwrap()),
            2,
        )
        .await
        .unwrap();
    let mut all: Vec<&TokenString> = tokens.clone();
    all.extend(batch.tokens.iter().map(|i| &i.secret));
    let secrets_all = Secrets::new(&all);
    let manifest = Manifest::from_issued(&batch.tokens, Some(QrFileFormat::Png));
    // The manifest's CSV and JSON carry the tokens (they are the hand-over)...
    assert!(
        manifest
            .to_csv()
            .expose_secret()
            .contains(batch.tokens[0].secret.expose_secret())
    );
    // ...its Debug, and that of everything issued, does not.
    for (what, text) in [
        ("Manifest", format!("{manifest:?} {manifest:#?}")),
        ("ManifestEntry", format!("{:?}", manifest.entries())),
        ("IssuedBatch", format!("{batch:?} {batch:#?}")),
        ("Issued", format!("{issued:?}")),
        ("Onboarding", format!("{service:?}")),
        ("SecretText (csv)", format!("{:?}", manifest.to_csv())),
        ("SecretText (json)", format!("{:?}", manifest.to_json())),
    ] {
        secrets.assert_absent(what, &text);
        secrets_all.assert_absent(what, &text);
    }
}

#[cfg(unix)]
#[test]
fn key_file_errors_never_show_key_material() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::new(key());
    let export = ring.export_secret_text();
    let secrets = Secrets::new(&[]);
    let path = dir.path().join("k.key");
    let mut errors: Vec<KeyFileError> = Vec::new();

    keyfile::save(&path, &ring).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), *export);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    errors.push(keyfile::load(&path).unwrap_err());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    errors.push(keyfile::create(&path, &ring).unwrap_err());
    // The key with a broken role, an extra field, a short secret; then not UTF-8.
    for text in [
        export.replace("active", "activ"),
        export.replace(" active", " x active"),
        {
            let secret = export.split(' ').nth(2).unwrap();
            export.replace(secret, &secret[..30])
        },
    ] {
        std::fs::write(&path, text).unwrap();
        errors.push(keyfile::load(&path).unwrap_err());
    }
    let mut bytes = export.as_bytes().to_vec();
    bytes.push(0xff);
    std::fs::write(&path, bytes).unwrap();
    errors.push(keyfile::load(&path).unwrap_err());
    errors.push(keyfile::load(&dir.path().join("missing.key")).unwrap_err());
    errors.push(keyfile::load(dir.path()).unwrap_err());

    assert!(errors.len() >= 7);
    for err in &errors {
        let mut text = format!("{err} | {err:?} | {err:#?}");
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text.push_str(&format!(" | {s} | {s:?}"));
            source = s.source();
        }
        secrets.assert_absent("KeyFileError", &text);
        assert!(
            text.contains("k.key")
                || text.contains("missing.key")
                || text.contains(&dir.path().display().to_string())
        );
    }
}

/// The crate itself never logs or prints: its own dependency list has no logging crate,
/// and its code calls no print or log macro. (With `sqlite`/`postgres`, sqlx depends on
/// `log` and `tracing` and logs statements; see the next test.)
#[test]
fn the_crate_has_no_logging_of_its_own() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let deps = manifest
        .split("\n[dependencies]\n")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("a [dependencies] table");
    for name in ["log", "tracing", "env_logger", "slog", "tracing-subscriber"] {
        assert!(
            !deps
                .lines()
                .any(|l| l.split([' ', '=']).next() == Some(name)),
            "{name} is a dependency"
        );
    }
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Code, not comments (doc examples may print).
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for needle in ["println!", "print!(", "dbg!", "log::", "tracing::"] {
                assert!(
                    !line.contains(needle),
                    "{} uses {needle}: {line}",
                    file.display()
                );
            }
        }
    }
}
