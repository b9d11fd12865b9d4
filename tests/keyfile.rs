//! Key files: created private (mode 0600), refused when group or others can access them,
//! written atomically, and never quoting key material in errors.

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use onboarding_token::keyfile::{self, KeyFileError, MAX_KEY_FILE};
use onboarding_token::{KeyId, Keyring, SigningKey, SystemRng, TokenId};
use proptest::prelude::*;
#[cfg(unix)]
use support::files::{chmod, mode};

fn keyring() -> Keyring {
    Keyring::new(SigningKey::generate(&mut SystemRng::default()))
}

fn key_ids(ring: &Keyring) -> Vec<KeyId> {
    ring.key_ids().collect()
}

/// Whether two keyrings hold the same keys: same ids and roles, and the same signatures.
fn same_keys(a: &Keyring, b: &Keyring) -> bool {
    let id = TokenId::from_bytes(*b"0123456789abcdef");
    key_ids(a) == key_ids(b)
        && a.key_ids().all(|k| {
            a.sign_with(k, &id)
                .map(|t| t.expose_secret().to_owned())
                .ok()
                == b.sign_with(k, &id)
                    .map(|t| t.expose_secret().to_owned())
                    .ok()
        })
}

/// Every secret of the keyring, as it appears in the file.
fn secrets(ring: &Keyring) -> Vec<String> {
    ring.export_secret_text()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn key_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("onboarding-token.key")
}

#[test]
fn create_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let ring = keyring();
    keyfile::create(&path, &ring).unwrap();
    let loaded = keyfile::load(&path).unwrap();
    assert!(same_keys(&ring, &loaded));
    // Only the key file is left: no temporary files.
    assert_eq!(entries(dir.path()), ["onboarding-token.key"]);
}

#[cfg(unix)]
#[test]
fn create_makes_the_file_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    keyfile::create(&path, &keyring()).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn create_refuses_an_existing_file_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let first = keyring();
    keyfile::create(&path, &first).unwrap();
    let before = fs::read(&path).unwrap();
    let err = keyfile::create(&path, &keyring()).unwrap_err();
    assert!(matches!(err, KeyFileError::Exists { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"));
    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(entries(dir.path()), ["onboarding-token.key"]);
}

#[test]
fn create_in_a_missing_directory_fails_without_creating_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("key");
    let err = keyfile::create(&path, &keyring()).unwrap_err();
    assert!(matches!(err, KeyFileError::Io { .. }), "{err:?}");
    assert!(entries(dir.path()).is_empty());
}

#[cfg(unix)]
#[test]
fn load_refuses_files_group_or_others_can_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let ring = keyring();
    keyfile::create(&path, &ring).unwrap();
    for bad in [0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601, 0o777] {
        chmod(&path, bad);
        let err = keyfile::load(&path).unwrap_err();
        match &err {
            KeyFileError::TooOpen { mode, .. } => assert_eq!(*mode, bad),
            other => panic!("mode {bad:o}: expected TooOpen, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains("chmod 600"), "{message}");
        assert!(message.contains(&format!("{bad:o}")), "{message}");
        for secret in secrets(&ring) {
            assert!(!message.contains(&secret));
        }
    }
    for good in [0o600, 0o400, 0o700] {
        chmod(&path, good);
        assert!(
            same_keys(&keyfile::load(&path).unwrap(), &ring),
            "mode {good:o}"
        );
    }
}

#[test]
fn load_reports_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let err = keyfile::load(&path).unwrap_err();
    assert!(matches!(err, KeyFileError::Missing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains("tokenctl init"), "{message}");
    assert!(message.contains("onboarding-token.key"), "{message}");
}

/// Writes a private file with arbitrary contents.
fn write_private(path: &Path, contents: &[u8]) {
    fs::write(path, contents).unwrap();
    #[cfg(unix)]
    chmod(path, 0o600);
}

#[test]
fn invalid_contents_are_reported_without_key_material() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let ring = keyring();
    let text = ring.export_secret_text();
    let secret = &secrets(&ring)[0];
    let cases: Vec<(String, &str)> = vec![
        // A real secret, a bad role.
        (text.replace("active", "boss"), "line 1"),
        // A real secret cut short.
        (text.replace(secret.as_str(), &secret[..20]), "line 1"),
        // Two active keys.
        (
            format!(
                "{}{}",
                text.as_str(),
                keyring().export_secret_text().as_str()
            ),
            "line 2",
        ),
        // Only verify-only keys.
        (text.replace("active", "verify"), "no active key"),
        ("hello world\n".to_owned(), "line 1"),
        (String::new(), "no active key"),
    ];
    for (contents, expect) in cases {
        write_private(&path, contents.as_bytes());
        let err = keyfile::load(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Invalid { .. }), "{err:?}");
        let message = err.to_string();
        let debug = format!("{err:?}");
        assert!(message.contains(expect), "{message}");
        assert!(message.contains("not a valid keyring"), "{message}");
        for shown in [&message, &debug] {
            assert!(!shown.contains(&secret[..20]), "key material in {shown}");
            assert!(!shown.contains("hello world"), "file contents in {shown}");
        }
    }
}

#[test]
fn a_directory_is_not_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = keyfile::load(dir.path()).unwrap_err();
    assert!(matches!(err, KeyFileError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("not a regular file"), "{err}");
}

#[test]
fn non_text_and_oversized_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    write_private(&path, &[0xff, 0xfe, 0x00, 0x80]);
    assert!(matches!(
        keyfile::load(&path).unwrap_err(),
        KeyFileError::NotText { .. }
    ));
    write_private(&path, &vec![b'#'; MAX_KEY_FILE as usize + 1]);
    assert!(matches!(
        keyfile::load(&path).unwrap_err(),
        KeyFileError::TooLarge { .. }
    ));
    // Comments and blank lines around a key are fine.
    let ring = keyring();
    let text = format!(
        "# tokenctl keys\n\n{}\n",
        ring.export_secret_text().as_str()
    );
    write_private(&path, text.as_bytes());
    assert!(same_keys(&keyfile::load(&path).unwrap(), &ring));
}

#[test]
fn save_replaces_the_file_atomically_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let mut ring = keyring();
    keyfile::create(&path, &ring).unwrap();
    // A stray temporary file from an earlier crash does not get in the way.
    let stray = dir.path().join("onboarding-token.key.tmp");
    fs::write(&stray, b"stale").unwrap();
    let old = ring.active_key_id();
    ring.rotate(SigningKey::generate(&mut SystemRng::default()))
        .unwrap();
    keyfile::save(&path, &ring).unwrap();
    let loaded = keyfile::load(&path).unwrap();
    assert!(same_keys(&loaded, &ring));
    assert_eq!(key_ids(&loaded)[1], old);
    // No temporary file of this save is left (the stray one may or may not be).
    let left: Vec<String> = entries(dir.path())
        .into_iter()
        .filter(|n| n != "onboarding-token.key.tmp")
        .collect();
    assert_eq!(left, ["onboarding-token.key"]);
}

#[cfg(unix)]
#[test]
fn save_makes_the_file_0600_even_over_a_more_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    fs::write(&path, b"old").unwrap();
    chmod(&path, 0o644);
    let ring = keyring();
    keyfile::save(&path, &ring).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert!(same_keys(&keyfile::load(&path).unwrap(), &ring));
}

#[cfg(unix)]
#[test]
fn save_keeps_a_reader_of_the_old_file_whole() {
    // A reader holding the old file keeps reading the old contents in full: the new
    // keyring arrives by rename, never by rewriting the old file in place.
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let first = keyring();
    keyfile::create(&path, &first).unwrap();
    let mut reader = fs::File::open(&path).unwrap();
    keyfile::save(&path, &keyring()).unwrap();
    let mut old = String::new();
    reader.read_to_string(&mut old).unwrap();
    assert_eq!(old, first.export_secret_text().as_str());
}

#[test]
fn save_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope").join("key");
    let err = keyfile::save(&path, &keyring()).unwrap_err();
    assert!(matches!(err, KeyFileError::Io { .. }), "{err:?}");
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn load_or_create_creates_once_then_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let mut rng = SystemRng::default();
    let (created, was_created) = keyfile::load_or_create(&path, &mut rng).unwrap();
    assert!(was_created);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let (loaded, was_created) = keyfile::load_or_create(&path, &mut rng).unwrap();
    assert!(!was_created);
    assert!(same_keys(&created, &loaded));
}

#[test]
fn load_or_create_never_overwrites_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    write_private(&path, b"not a keyring\n");
    let err = keyfile::load_or_create(&path, &mut SystemRng::default()).unwrap_err();
    assert!(matches!(err, KeyFileError::Invalid { .. }), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), b"not a keyring\n");
}

#[cfg(unix)]
#[test]
fn load_or_create_refuses_an_open_file_without_replacing_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let ring = keyring();
    keyfile::create(&path, &ring).unwrap();
    chmod(&path, 0o644);
    let before = fs::read(&path).unwrap();
    let err = keyfile::load_or_create(&path, &mut SystemRng::default()).unwrap_err();
    assert!(matches!(err, KeyFileError::TooOpen { .. }), "{err:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn errors_name_the_path_and_their_debug_holds_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_path(&dir);
    let ring = keyring();
    keyfile::create(&path, &ring).unwrap();
    let err = keyfile::create(&path, &ring).unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()));
    let debug = format!("{err:?} {ring:?}");
    for secret in secrets(&ring) {
        assert!(!debug.contains(&secret));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any keyring (an active key and up to four verify-only keys, as rotations leave
    /// them) survives save and load with its ids, roles and signatures.
    #[test]
    fn keyrings_round_trip(
        seeds in proptest::collection::vec((any::<[u8; 4]>(), any::<[u8; 32]>()), 1..6),
    ) {
        let mut ids: Vec<[u8; 4]> = seeds.iter().map(|(id, _)| *id).collect();
        ids.sort();
        ids.dedup();
        prop_assume!(ids.len() == seeds.len());
        let mut keys = seeds
            .iter()
            .map(|(id, secret)| SigningKey::from_bytes(KeyId::from_bytes(*id), secret));
        let mut ring = Keyring::new(keys.next().unwrap());
        for key in keys {
            ring.rotate(key).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        keyfile::save(&path, &ring).unwrap();
        let loaded = keyfile::load(&path).unwrap();
        prop_assert!(same_keys(&ring, &loaded));
        prop_assert_eq!(loaded.active_key_id(), ring.active_key_id());
    }

    /// Arbitrary file contents never panic the loader, and its messages never repeat them.
    #[test]
    fn arbitrary_contents_are_rejected_without_echo(
        contents in "[A-Za-z0-9_-]{24,64}( [a-z]{1,8}){0,4}\n?",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(&dir);
        write_private(&path, contents.as_bytes());
        let err = keyfile::load(&path).unwrap_err();
        let first = contents.split_whitespace().next().unwrap_or_default();
        let debug = format!("{err:?}");
        prop_assert!(!err.to_string().contains(first));
        prop_assert!(!debug.contains(first));
    }
}
