//! The typed form: a token in groups of four for people to type ([`grouped`],
//! [`grouped_lines`]), read back leniently ([`parse_grouped`]), and the reading rules that
//! extraction applies to free text too.

use crate::core::codec::{DecodeError, PREFIX, TOKEN_LEN, TokenString};

use super::secret::SecretText;
use super::token_text::TokenText;

/// The largest input [`extract_token`](super::extract_token) looks at, in bytes (64 KiB).
pub const MAX_INPUT_LEN: usize = 64 * 1024;

/// Characters per group in the typed form.
pub const GROUP_LEN: usize = 4;

/// Groups per line in [`grouped_lines`].
pub const GROUPS_PER_LINE: usize = 4;

pub(super) const BODY_LEN: usize = TOKEN_LEN - PREFIX.len();

/// Parses the typed form (or a bare token): the whole input must be one token, with the
/// whitespace and hyphen rules of the [module docs](super).
///
/// ```
/// use onboarding_token::payload::{grouped, grouped_lines, parse_grouped};
/// # use onboarding_token::{Keyring, SigningKey, TokenId};
/// # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
/// let typed = grouped(&token);
/// assert_eq!(parse_grouped(typed.expose_secret())?.expose_secret(), token.expose_secret());
/// let lines = grouped_lines(&token);
/// assert_eq!(parse_grouped(lines.expose_secret())?.expose_secret(), token.expose_secret());
/// # Ok::<(), onboarding_token::DecodeError>(())
/// ```
pub fn parse_grouped(input: &str) -> Result<TokenText, DecodeError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(DecodeError::BadLength { len: input.len() });
    }
    let chars: Vec<char> = input.chars().filter(|&c| !is_invisible(c)).collect();
    let mut i = 0;
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    if i == chars.len() {
        return Err(DecodeError::Empty);
    }
    match match_prefix(&chars, i) {
        Some(Prefix::V1(after)) => {
            let rest: String = chars[after..].iter().collect();
            let mut words = Vec::new();
            for word in rest.split(char::is_whitespace).filter(|w| !w.is_empty()) {
                if !word.chars().all(is_body_char) {
                    return Err(DecodeError::BadEncoding);
                }
                words.push(word);
            }
            let body = normalize_body(&words).ok_or_else(|| {
                let len: usize = words.iter().map(|w| w.len()).sum();
                DecodeError::BadLength {
                    len: PREFIX.len() + len,
                }
            })?;
            TokenText::parse(&body)
        }
        Some(Prefix::Other) => Err(DecodeError::UnsupportedVersion),
        None => Err(DecodeError::BadPrefix),
    }
}

/// The typed form on one line: `obt1_` and 12 groups of 4, space-separated.
///
/// ```
/// # use onboarding_token::{Keyring, SigningKey, TokenId};
/// # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
/// let typed = onboarding_token::payload::grouped(&token);
/// assert_eq!(typed.len(), 5 + 12 * 5);
/// assert!(typed.expose_secret().starts_with("obt1_ "));
/// ```
pub fn grouped(token: &TokenString) -> SecretText {
    group_with(token, |_| ' ')
}

/// The typed form on three lines of four groups, the prefix leading the first:
///
/// ```text
/// obt1_ AbCd EfGh IjKl MnOp
/// QrSt UvWx Yz01 2345
/// 6789 -_Ab CdEf GhIj
/// ```
pub fn grouped_lines(token: &TokenString) -> SecretText {
    group_with(token, |i| {
        if i > 0 && i % GROUPS_PER_LINE == 0 {
            '\n'
        } else {
            ' '
        }
    })
}

fn group_with(token: &TokenString, separator_before: impl Fn(usize) -> char) -> SecretText {
    let secret = token.expose_secret();
    let mut out = String::with_capacity(TOKEN_LEN + BODY_LEN / GROUP_LEN + 1);
    out.push_str(PREFIX);
    for (i, group) in secret.as_bytes()[PREFIX.len()..]
        .chunks(GROUP_LEN)
        .enumerate()
    {
        out.push(separator_before(i));
        // Token bytes are ASCII.
        out.extend(group.iter().map(|&b| char::from(b)));
    }
    SecretText::new(out)
}

/// Zero-width and byte-order-mark characters that copy and paste leaves behind.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{00ad}'
    )
}

pub(super) fn is_body_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

pub(super) enum Prefix {
    /// `obt1_`; the body starts at this index.
    V1(usize),
    /// `obt<digits>_` with another version.
    Other,
}

/// Whether a token prefix (case-insensitive `obt`, a version, `_`) starts at `i`.
pub(super) fn match_prefix(chars: &[char], i: usize) -> Option<Prefix> {
    let lower = |k: usize| chars.get(k).map(|c| c.to_ascii_lowercase());
    if lower(i) != Some('o') || lower(i + 1) != Some('b') || lower(i + 2) != Some('t') {
        return None;
    }
    let mut k = i + 3;
    while chars.get(k).is_some_and(char::is_ascii_digit) && k < i + 8 {
        k += 1;
    }
    if k == i + 3 || chars.get(k) != Some(&'_') {
        return None;
    }
    let version: String = chars[i + 3..k].iter().collect();
    Some(if version == "1" {
        Prefix::V1(k + 1)
    } else {
        Prefix::Other
    })
}

/// Joins body words into `obt1_` + 48 characters, applying the hyphen-separator rule.
pub(super) fn normalize_body(words: &[&str]) -> Option<String> {
    let joined: String = words.concat();
    if joined.len() == BODY_LEN {
        return Some(format!("{PREFIX}{joined}"));
    }
    if let Some(body) = strip_regular_hyphens(&joined) {
        return Some(format!("{PREFIX}{body}"));
    }
    // Whitespace standing in for some of the hyphens.
    let dashed = words.join("-");
    strip_regular_hyphens(&dashed).map(|body| format!("{PREFIX}{body}"))
}

/// If `raw` is 48 characters in groups of one length `g`, separated by single hyphens,
/// returns them without the separators. A separator right after the prefix
/// (`obt1_-AbCd-…`) is allowed too, though the body itself may start with `-`: both
/// readings are tried.
fn strip_regular_hyphens(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let candidates = [Some(bytes), bytes.strip_prefix(b"-")];
    for bytes in candidates.into_iter().flatten() {
        for g in [2usize, 3, 4, 6, 8, 12, 16, 24] {
            let groups = BODY_LEN / g;
            if bytes.len() != BODY_LEN + groups - 1 {
                continue;
            }
            if (1..groups).all(|n| bytes[n * (g + 1) - 1] == b'-') {
                let body: String = bytes
                    .chunks(g + 1)
                    .flat_map(|chunk| chunk[..g].iter().map(|&b| char::from(b)))
                    .collect();
                return Some(body);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_hyphens_only() {
        let body = "A".repeat(48);
        let dashed: Vec<String> = body
            .as_bytes()
            .chunks(6)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        assert_eq!(
            strip_regular_hyphens(&dashed.join("-")).as_deref(),
            Some(&*body)
        );
        assert_eq!(strip_regular_hyphens(&format!("{body}-")), None);
    }
}
