//! The `keyring_text` fuzz target's checks.

use super::*;

/// `Keyring::from_secret_text` over arbitrary text, and over a real export spliced with the
/// input: a keyring that exports to the same text, or an error that shows no key material.
pub fn check_keyring_text(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_keyring_str(text);
    }
    // Splice the input into a genuine export, so the parser's later stages are reached.
    let export = keyring().export_secret_text();
    let at = data.first().map_or(0, |&b| usize::from(b) * 2) % (export.len() + 1);
    let at = (0..=at)
        .rev()
        .find(|&i| export.is_char_boundary(i))
        .unwrap_or(0);
    let cut = data.get(1).map_or(0, |&b| usize::from(b) % 8);
    let end = (at + cut).min(export.len());
    let insert = String::from_utf8_lossy(data.get(2..).unwrap_or_default());
    let spliced = format!("{}{}{}", &export[..at], insert, &export[end..]);
    check_keyring_str(&spliced);
}

fn check_keyring_str(text: &str) {
    match Keyring::from_secret_text(text) {
        Ok(ring) => {
            let export = ring.export_secret_text();
            let back = Keyring::from_secret_text(&export).expect("an export reads back");
            assert_eq!(back.export_secret_text(), export);
            assert_eq!(
                back.key_ids().collect::<Vec<_>>(),
                ring.key_ids().collect::<Vec<_>>()
            );
            let debug = format!("{ring:?}");
            for line in export.lines() {
                let secret = line.split(' ').nth(2).expect("a secret field");
                assert!(!debug.contains(secret), "Debug of Keyring shows a key");
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            for word in text.split_whitespace().filter(|w| w.len() >= 16) {
                assert!(
                    !message.contains(word),
                    "the error repeats input: {message}"
                );
            }
        }
    }
}
