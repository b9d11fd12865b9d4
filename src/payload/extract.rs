//! [`extract_token`]: the one token in whatever a device scanned or a person typed.

use zeroize::Zeroizing;

use crate::core::codec::{DecodeError, PREFIX};

use super::android::keys::EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE;
use super::android::nfc::parse_properties;
use super::token_text::TokenText;
use super::typed::{
    BODY_LEN, MAX_INPUT_LEN, Prefix, is_body_char, is_invisible, match_prefix, normalize_body,
};
use super::url::percent_decode_lossy;

/// No single token could be taken from the input. Messages never repeat the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The input was empty or only whitespace.
    #[error("input is empty")]
    Empty,
    /// The input is longer than [`MAX_INPUT_LEN`].
    #[error("input is {len} bytes; at most {max} are read")]
    TooLong {
        /// The input's length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Nothing in the input looks like a token.
    #[error("no onboarding token found in the input")]
    NotFound,
    /// The input holds more than one different token (or a token beside a malformed one).
    #[error("input holds {count} different tokens; expected one")]
    Ambiguous {
        /// How many different candidates were found.
        count: usize,
    },
    /// Something that starts like a token is not one (cut short, a typo, an unknown version).
    #[error("malformed token in the input: {0}")]
    Malformed(#[source] DecodeError),
    /// The input starts like JSON but is not valid JSON.
    #[error("input is not valid JSON (line {line}, column {column})")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The input looks like Android NFC properties but has a malformed `\uXXXX` escape.
    #[error("input has a malformed \\uXXXX escape (properties line {line})")]
    InvalidProperties {
        /// 1-based line of the error.
        line: usize,
    },
}

/// Takes the token out of whatever a scanner or a person produced.
///
/// Accepts a bare token, the typed form (see the [module docs](super)), an enrollment URL
/// (percent-encoded or not), the Android provisioning JSON, the Knox KME JSON, the Android NFC
/// properties, or free text around a token; surrounding whitespace is ignored. The same
/// token found several times counts once. Inputs over [`MAX_INPUT_LEN`] are refused.
///
/// The token is not verified: see [`TokenText`].
///
/// ```
/// use onboarding_token::payload::{extract_token, ExtractError};
/// assert_eq!(extract_token("  ").unwrap_err(), ExtractError::Empty);
/// assert_eq!(extract_token("hello").unwrap_err(), ExtractError::NotFound);
/// assert!(matches!(extract_token("obt1_tooShort"), Err(ExtractError::Malformed(_))));
/// ```
pub fn extract_token(input: &str) -> Result<TokenText, ExtractError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(ExtractError::TooLong {
            len: input.len(),
            max: MAX_INPUT_LEN,
        });
    }
    let text = input.trim_matches(|c: char| c.is_whitespace() || is_invisible(c));
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    let mut found = Found::default();
    if text.starts_with('{') || text.starts_with('[') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ExtractError::InvalidJson {
                line: e.line(),
                column: e.column(),
            })?;
        scan_json(&value, &mut found);
    } else if looks_like_url(text) {
        let decoded = Zeroizing::new(percent_decode_lossy(text));
        scan_text(&decoded, &mut found);
    } else if looks_like_properties(text) {
        let pairs =
            parse_properties(text).map_err(|line| ExtractError::InvalidProperties { line })?;
        for (key, value) in &pairs {
            if key == EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE {
                let nested = parse_properties(value)
                    .map_err(|line| ExtractError::InvalidProperties { line })?;
                for (_, inner) in &nested {
                    scan_text(inner, &mut found);
                }
            } else {
                scan_text(value, &mut found);
            }
        }
    } else {
        scan_text(text, &mut found);
    }
    found.finish()
}

fn looks_like_url(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    !rest.is_empty()
        && scheme.len() <= 32
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

fn looks_like_properties(text: &str) -> bool {
    text.lines().any(|line| {
        line.trim_start_matches([' ', '\t', '\u{c}'])
            .starts_with("android.app.extra.")
    })
}

/// Candidates found so far.
#[derive(Default)]
struct Found {
    tokens: Vec<TokenText>,
    malformed: Option<DecodeError>,
    malformed_count: usize,
}

impl Found {
    fn add(&mut self, token: TokenText) {
        if !self.tokens.contains(&token) {
            self.tokens.push(token);
        }
    }

    fn add_malformed(&mut self, err: DecodeError) {
        self.malformed.get_or_insert(err);
        self.malformed_count += 1;
    }

    fn finish(mut self) -> Result<TokenText, ExtractError> {
        match (self.tokens.len(), self.malformed) {
            (0, None) => Err(ExtractError::NotFound),
            (0, Some(err)) => Err(ExtractError::Malformed(err)),
            (1, None) => Ok(self.tokens.remove(0)),
            (n, _) => Err(ExtractError::Ambiguous {
                count: n + self.malformed_count,
            }),
        }
    }
}

fn scan_json(value: &serde_json::Value, found: &mut Found) {
    match value {
        serde_json::Value::String(s) => scan_text(s, found),
        serde_json::Value::Array(items) => items.iter().for_each(|v| scan_json(v, found)),
        serde_json::Value::Object(map) => map.values().for_each(|v| scan_json(v, found)),
        _ => {}
    }
}

/// The most raw body characters (hyphen separators included) worth trying.
const MAX_RAW_BODY: usize = BODY_LEN * 2;

/// Finds every token in free text.
fn scan_text(text: &str, found: &mut Found) {
    let chars: Vec<char> = text
        .chars()
        .filter(|&c| !is_invisible(c))
        .map(|c| match c {
            // Hyphen and non-breaking hyphen, as word processors and PDFs produce.
            '\u{2010}' | '\u{2011}' => '-',
            c => c,
        })
        .collect();
    let mut i = 0;
    while i < chars.len() {
        let at_boundary = i == 0 || !is_body_char(chars[i - 1]);
        let prefix = if at_boundary {
            match_prefix(&chars, i)
        } else {
            None
        };
        match prefix {
            None => i += 1,
            Some(Prefix::Other) => {
                found.add_malformed(DecodeError::UnsupportedVersion);
                i += 4;
            }
            Some(Prefix::V1(start)) => {
                let (result, end) = read_body(&chars, start);
                match result {
                    Ok(token) => found.add(token),
                    Err(err) => found.add_malformed(err),
                }
                i = end.max(i + 1);
            }
        }
    }
}

/// Reads the body after a prefix: whitespace-separated words of token characters. Returns
/// the token (or why not) and the index after what was consumed.
fn read_body(chars: &[char], start: usize) -> (Result<TokenText, DecodeError>, usize) {
    // Words (runs of body characters) separated only by whitespace; anything else ends the
    // run. Enough words for the longest grouped form, and no more.
    let mut words: Vec<(String, usize)> = Vec::new();
    let mut raw = 0;
    let mut k = start;
    while raw <= MAX_RAW_BODY && words.len() <= BODY_LEN {
        let mut w = k;
        while w < chars.len() && chars[w].is_whitespace() {
            w += 1;
        }
        let word_start = w;
        while w < chars.len() && is_body_char(chars[w]) {
            w += 1;
        }
        // A run ends where a word is not token characters or starts another token.
        if w == word_start || (!words.is_empty() && match_prefix(chars, word_start).is_some()) {
            break;
        }
        raw += w - word_start;
        words.push((chars[word_start..w].iter().collect(), w));
        k = w;
    }
    // The fewest words that make a token win, so trailing words stay out.
    let mut total = 0;
    for n in 1..=words.len() {
        total += words[n - 1].0.len();
        if total < BODY_LEN {
            continue;
        }
        let refs: Vec<&str> = words[..n].iter().map(|(w, _)| w.as_str()).collect();
        if let Some(body) = normalize_body(&refs) {
            return (TokenText::parse(&body), words[n - 1].1);
        }
    }
    let end = words.last().map_or(start, |w| w.1);
    (
        Err(DecodeError::BadLength {
            len: PREFIX.len() + raw,
        }),
        end,
    )
}
