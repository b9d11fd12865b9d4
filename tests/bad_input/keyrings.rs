//! Keyrings and key files.

use super::*;

#[test]
fn keyring_text_refuses_with_typed_errors_and_no_key_material() {
    let good = Keyring::new(key(1)).with_verify_only(key(2)).unwrap();
    let export = good.export_secret_text();
    let first = export.lines().next().unwrap().to_owned();
    let secret = first.split(' ').nth(2).unwrap().to_owned();
    let id = key(1).id().to_string();
    let malformed = |line: usize| move |e: &KeyringError| matches!(e, KeyringError::Malformed { line: l, .. } if *l == line);
    type Check = Box<dyn Fn(&KeyringError) -> bool>;
    let cases: Vec<(String, Check)> = vec![
        (String::new(), Box::new(|e| *e == KeyringError::NoActiveKey)),
        (
            "  \n\t\n".into(),
            Box::new(|e| *e == KeyringError::NoActiveKey),
        ),
        (
            "# only a comment\n".into(),
            Box::new(|e| *e == KeyringError::NoActiveKey),
        ),
        ("x".repeat(MB), Box::new(malformed(1))),
        (format!("obk2 {id} {secret} active"), Box::new(malformed(1))),
        (format!("OBK1 {id} {secret} active"), Box::new(malformed(1))),
        (format!("obk1 {id} {secret}"), Box::new(malformed(1))),
        (
            format!("obk1 {id} {secret} active extra"),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {} {secret} active", id.to_uppercase()),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id}0 {secret} active"),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id} {} active", &secret[1..]),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id} {secret}AAAA active"),
            Box::new(malformed(1)),
        ),
        (
            format!("obk1 {id} {}+ active", &secret[1..]),
            Box::new(malformed(1)),
        ),
        (format!("obk1 {id} {secret} boss"), Box::new(malformed(1))),
        (format!("\n\n{first}\n{first}\n"), Box::new(malformed(4))),
        (
            format!("{first}\n{}", first.replace("active", "verify")),
            Box::new(move |e| *e == KeyringError::DuplicateKey(key(1).id())),
        ),
        (
            first.replace("active", "verify"),
            Box::new(|e| *e == KeyringError::NoActiveKey),
        ),
    ];
    for (text, check) in cases {
        let err = Keyring::from_secret_text(&text).unwrap_err();
        assert!(check(&err), "{err:?} for {:?}", &text[..text.len().min(80)]);
        assert_clear(&err, &secret);
        for line in export.lines() {
            assert_clear(&err, line.split(' ').nth(2).unwrap());
        }
    }
}

#[cfg(unix)]
#[test]
fn key_files_refuse_bad_files_with_typed_errors_naming_the_path_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ring = Keyring::new(key(1));
    let export = ring.export_secret_text();
    let secret = export.split(' ').nth(2).unwrap().to_owned();
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };

    let missing = dir.path().join("missing.key");
    assert!(matches!(
        keyfile::load(&missing),
        Err(KeyFileError::Missing { .. })
    ));

    for mode in [0o644, 0o640, 0o604, 0o660, 0o606, 0o777] {
        let path = write("open.key", export.as_bytes(), mode);
        let err = keyfile::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::TooOpen { mode: m, .. } if m == mode),
            "{mode:o}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert_clear(&err, &secret);
    }

    let mut huge = export.as_bytes().to_vec();
    huge.resize(keyfile::MAX_KEY_FILE as usize + 1, b'#');
    let path = write("huge.key", &huge, 0o600);
    assert!(matches!(
        keyfile::load(&path),
        Err(KeyFileError::TooLarge { .. })
    ));
    let path = write("mb.key", &vec![b'x'; MB], 0o600);
    assert!(matches!(
        keyfile::load(&path),
        Err(KeyFileError::TooLarge { .. })
    ));

    let mut not_utf8 = export.as_bytes().to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, 0x00]);
    let path = write("binary.key", &not_utf8, 0o600);
    let err = keyfile::load(&path).unwrap_err();
    assert!(matches!(err, KeyFileError::NotText { .. }), "{err:?}");
    assert_clear(&err, &secret);

    for (name, bytes) in [
        ("empty.key", Vec::new()),
        ("blank.key", b"\n  \n".to_vec()),
        ("garbage.key", b"hello world\n".to_vec()),
        ("badrole.key", export.replace("active", "boss").into_bytes()),
        (
            "truncated.key",
            export.as_bytes()[..export.len() - 10].to_vec(),
        ),
    ] {
        let path = write(name, &bytes, 0o600);
        let err = keyfile::load(&path).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Invalid { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert_clear(&err, &secret);
    }

    // A directory is not a key file.
    let sub = dir.path().join("sub.key");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(matches!(keyfile::load(&sub), Err(KeyFileError::Io { .. })));

    // The good file still loads, and refusing never changed it.
    let path = write("good.key", export.as_bytes(), 0o600);
    assert_eq!(
        keyfile::load(&path).unwrap().active_key_id(),
        ring.active_key_id()
    );
    assert_eq!(std::fs::read(&path).unwrap(), export.as_bytes());
}
