//! The JSON forms: the setup-screen QR JSON and the flat Knox KME JSON, both ASCII-only.

use std::io;

use serde::ser::{Serialize, SerializeMap, Serializer};
use zeroize::Zeroizing;

use crate::core::codec::TokenString;
use crate::payload::secret::SecretText;

use super::extras::AdminExtras;
use super::keys::{EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE, Value};
use super::provisioning::AndroidProvisioning;

impl AndroidProvisioning {
    /// The JSON an Android device reads from a QR code at the setup screen (tap the welcome
    /// screen six times). ASCII-only; booleans are JSON booleans; the token is in the admin
    /// extras bundle.
    pub fn qr_json(&self, token: &TokenString) -> SecretText {
        to_ascii_json(&QrView {
            android: self,
            token: token.expose_secret(),
        })
    }
}

impl AdminExtras {
    /// The flat Samsung Knox Mobile Enrollment JSON: the token key and the extras at the top
    /// level, for KME's "custom JSON" field (ASCII-only JSON).
    pub fn kme_json(&self, token: &TokenString) -> SecretText {
        to_ascii_json(&ExtrasView {
            extras: self,
            token: token.expose_secret(),
        })
    }
}

struct ExtrasView<'a> {
    extras: &'a AdminExtras,
    token: &'a str,
}

impl Serialize for ExtrasView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.extras.extras().count() + 1))?;
        map.serialize_entry(self.extras.token_key(), self.token)?;
        for (k, v) in self.extras.extras() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct QrView<'a> {
    android: &'a AndroidProvisioning,
    token: &'a str,
}

impl Serialize for QrView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let entries = self.android.entries();
        let mut map = s.serialize_map(Some(entries.len() + 1))?;
        for (key, value) in entries {
            match value {
                Value::Str(v) => map.serialize_entry(key, v)?,
                Value::Bool(v) => map.serialize_entry(key, &v)?,
            }
        }
        map.serialize_entry(
            EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE,
            &ExtrasView {
                extras: self.android.admin_extras(),
                token: self.token,
            },
        )?;
        map.end()
    }
}

/// JSON with every non-ASCII character written as `\uXXXX` (surrogate pairs above U+FFFF).
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if c.is_ascii() {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

fn to_ascii_json<T: Serialize>(value: &T) -> SecretText {
    let mut buf = Zeroizing::new(Vec::with_capacity(2048));
    let mut ser = serde_json::Serializer::with_formatter(&mut *buf, AsciiFormatter);
    // Serializing string maps into memory cannot fail.
    value
        .serialize(&mut ser)
        .expect("serializing string maps into a Vec cannot fail");
    let text = String::from_utf8(std::mem::take(&mut *buf))
        .expect("the ASCII formatter writes ASCII only");
    SecretText::new(text)
}
