//! The `extract` fuzz target's checks.

use super::*;

/// Characters that cannot start, continue or end a token, JSON, a URL or properties.
const NEUTRAL: &[char] = &[
    ' ', '\t', '\n', '.', ',', ';', '!', '?', '(', ')', '<', '>', '"', '\'',
];

/// `payload::extract_token` over arbitrary input (as UTF-8 when it is, and as lossy text),
/// and over a genuine token in its every form, wrapped in text made from the input.
pub fn check_extract(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_extract_text(text);
    }
    let lossy = String::from_utf8_lossy(data);
    check_extract_text(&lossy);

    // A genuine token in neutral surroundings is always found.
    let token = token_from(data);
    let split = data.first().map_or(0, |&b| usize::from(b)) % (data.len().max(1));
    let neutral = |bytes: &[u8]| -> String {
        bytes
            .iter()
            .map(|&b| NEUTRAL[usize::from(b) % NEUTRAL.len()])
            .collect()
    };
    let (before, after) = data.split_at(split.min(data.len()));
    let (before, after) = (neutral(before), neutral(after));
    for form in [
        payload::SecretText::from(&token),
        payload::grouped(&token),
        payload::grouped_lines(&token),
    ] {
        let text = format!("{before}{}{after}", form.expose_secret());
        if text.len() > MAX_INPUT_LEN {
            continue;
        }
        let found = extract_token(&text).expect("a genuine token in neutral text is found");
        assert_eq!(found.expose_secret(), token.expose_secret());
    }

    // An enrollment link on any accepted base carries the token back out, unless the base
    // itself holds token-like or percent-encoded text.
    let base = String::from_utf8_lossy(data);
    if let Ok(url) = EnrollmentUrl::new(&base) {
        let lower = base.to_ascii_lowercase();
        if !lower.contains("obt") && !lower.contains('%') {
            let link = url.render(&token);
            let found = extract_token(link.expose_secret()).expect("a link's token is found");
            assert_eq!(found.expose_secret(), token.expose_secret());
        }
    }
    let prefixed = format!("https://mdm.example.com/{}", neutral(data).trim());
    if let Ok(url) = EnrollmentUrl::new(&prefixed) {
        let found = extract_token(url.render(&token).expose_secret()).expect("link");
        assert_eq!(found.expose_secret(), token.expose_secret());
    }
}

fn check_extract_text(text: &str) {
    match extract_token(text) {
        Ok(found) => {
            assert!(text.len() <= MAX_INPUT_LEN);
            let exact = TokenText::parse(found.expose_secret()).expect("a well-formed token");
            assert_eq!(exact.untrusted(), found.untrusted());
            // The result is a fixed point.
            let again = extract_token(found.expose_secret()).expect("a bare token");
            assert_eq!(again.expose_secret(), found.expose_secret());
        }
        Err(e) => {
            assert_eq!(
                matches!(e, ExtractError::TooLong { .. }),
                text.len() > MAX_INPUT_LEN
            );
            assert_no_token_in(&e.to_string());
        }
    }
}
