//! The NFC form: `java.util.Properties` text, written for the device and read back by
//! extraction.

use zeroize::Zeroizing;

use crate::core::codec::TokenString;
use crate::payload::secret::SecretText;

use super::extras::AdminExtras;
use super::keys::{EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, Value};
use super::provisioning::AndroidProvisioning;

/// `DevicePolicyManager.MIME_TYPE_PROVISIONING_NFC`: the NDEF record type for
/// [`AndroidProvisioning::nfc_properties`].
pub const MIME_TYPE_PROVISIONING_NFC: &str = "application/com.android.managedprovisioning";

impl AndroidProvisioning {
    /// The NFC provisioning form: `java.util.Properties` text of the same keys, with the
    /// admin extras bundle serialized as properties text inside its value. Send it as an
    /// NDEF record of type [`MIME_TYPE_PROVISIONING_NFC`].
    pub fn nfc_properties(&self, token: &TokenString) -> SecretText {
        let mut out = Zeroizing::new(String::new());
        for (key, value) in self.entries() {
            match value {
                Value::Str(s) => push_property(&mut out, key, s),
                Value::Bool(b) => push_property(&mut out, key, if b { "true" } else { "false" }),
            }
        }
        let bundle = bundle_properties(self.admin_extras(), token.expose_secret());
        push_property(&mut out, EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, &bundle);
        SecretText::new(std::mem::take(&mut *out))
    }
}

/// The bundle as `java.util.Properties` text (the token first, then the extras).
fn bundle_properties(extras: &AdminExtras, token: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    push_property(&mut out, extras.token_key(), token);
    for (k, v) in extras.extras() {
        push_property(&mut out, k, v);
    }
    out
}

/// Appends one `key=value` line, escaped as `java.util.Properties.store` does: `\`, `=`,
/// `:`, `#`, `!`, tab, line breaks and form feeds escaped; spaces escaped in keys and at the
/// start of values; every character outside printable ASCII as `\uXXXX`.
fn push_property(out: &mut String, key: &str, value: &str) {
    escape_property(out, key, true);
    out.push('=');
    escape_property(out, value, false);
    out.push('\n');
}

fn escape_property(out: &mut String, text: &str, is_key: bool) {
    for (i, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' ' if is_key || i == 0 => out.push_str("\\ "),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{c}' => out.push_str("\\f"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
        }
    }
}

/// Reads `java.util.Properties` text (as `Properties.load` does): comments, continuation
/// lines, `=`/`:`/whitespace separators, escapes. Later duplicates are kept as separate
/// pairs. On a malformed `\uXXXX` escape, returns its 1-based line.
pub(crate) fn parse_properties(text: &str) -> Result<Vec<(String, String)>, usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut pairs = Vec::new();
    let mut i = 0;
    let mut line_no: usize = 1;
    let is_ws = |c: char| matches!(c, ' ' | '\t' | '\u{c}');
    while i < chars.len() {
        // Skip leading whitespace and blank lines.
        while i < chars.len() && (is_ws(chars[i]) || chars[i] == '\n' || chars[i] == '\r') {
            if chars[i] == '\n' {
                line_no += 1;
            }
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start_line = line_no;
        if chars[i] == '#' || chars[i] == '!' {
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                i += 1;
            }
            continue;
        }
        // Gather one logical line: natural lines joined where a line ends in an odd number
        // of backslashes, leading whitespace of the continuation dropped.
        let mut logical: Vec<char> = Vec::new();
        loop {
            let mut backslashes = 0;
            while i < chars.len() && chars[i] != '\n' && chars[i] != '\r' {
                backslashes = if chars[i] == '\\' { backslashes + 1 } else { 0 };
                logical.push(chars[i]);
                i += 1;
            }
            if backslashes % 2 == 1 && i < chars.len() {
                logical.pop();
                if chars[i] == '\r' && chars.get(i + 1) == Some(&'\n') {
                    i += 1;
                }
                i += 1;
                line_no += 1;
                while i < chars.len() && is_ws(chars[i]) {
                    i += 1;
                }
                continue;
            }
            if backslashes % 2 == 1 {
                logical.pop();
            }
            break;
        }
        // Split key and value.
        let mut k = 0;
        let mut escaped = false;
        while k < logical.len() {
            let c = logical[k];
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '=' || c == ':' || is_ws(c) {
                break;
            }
            k += 1;
        }
        let key_end = k;
        while k < logical.len() && is_ws(logical[k]) {
            k += 1;
        }
        if k < logical.len() && (logical[k] == '=' || logical[k] == ':') {
            k += 1;
        }
        while k < logical.len() && is_ws(logical[k]) {
            k += 1;
        }
        let key = unescape_property(&logical[..key_end]).ok_or(start_line)?;
        let value = unescape_property(&logical[k..]).ok_or(start_line)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn unescape_property(chars: &[char]) -> Option<String> {
    let mut out = Vec::<u16>::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            let mut units = [0u16; 2];
            out.extend_from_slice(c.encode_utf16(&mut units));
            continue;
        }
        let Some(&next) = chars.get(i) else {
            break;
        };
        i += 1;
        let unit = match next {
            'u' => {
                let hex: String = chars.get(i..i + 4)?.iter().collect();
                i += 4;
                u16::from_str_radix(&hex, 16).ok()?
            }
            't' => u16::from(b'\t'),
            'r' => u16::from(b'\r'),
            'n' => u16::from(b'\n'),
            'f' => 0x0c,
            other => {
                let mut units = [0u16; 2];
                out.extend_from_slice(other.encode_utf16(&mut units));
                continue;
            }
        };
        out.push(unit);
    }
    Some(String::from_utf16_lossy(&out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_escape_and_parse_agree() {
        let mut out = String::new();
        push_property(&mut out, "a key=:#!", " lead\\ \t\n\r\u{c}é😀=");
        assert_eq!(
            out,
            "a\\ key\\=\\:\\#\\!=\\ lead\\\\ \\t\\n\\r\\f\\u00E9\\uD83D\\uDE00\\=\n"
        );
        let pairs = parse_properties(&out).unwrap();
        assert_eq!(
            pairs,
            vec![("a key=:#!".to_owned(), " lead\\ \t\n\r\u{c}é😀=".to_owned())]
        );
    }

    #[test]
    fn properties_continuations_comments_and_bad_escapes() {
        let text = "# comment\n! other\nkey : first \\\n    second\nk2 v2\n";
        let pairs = parse_properties(text).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("key".to_owned(), "first second".to_owned()),
                ("k2".to_owned(), "v2".to_owned()),
            ]
        );
        assert_eq!(parse_properties("a=1\nb=\\uZZZZ\n"), Err(2));
    }
}
