//! What goes into a QR code, a link or a person's hands, and how a device gets the token
//! back out of whatever it scanned or was typed.
//!
//! # Forms
//!
//! | form | made by | example |
//! |---|---|---|
//! | bare token | [`TokenString::expose_secret`] | `obt1_AbCd…` (53 characters) |
//! | typed text | [`grouped`], [`grouped_lines`] | `obt1_ AbCd EfGh …` |
//! | enrollment link | [`EnrollmentUrl::render`] | `https://mdm.example.com/enroll?token=obt1_…` |
//! | Android QR JSON | [`AndroidProvisioning::qr_json`](crate::android::AndroidProvisioning::qr_json) | `{"android.app.extra.PROVISIONING_…": …}` |
//! | Samsung Knox (KME) JSON | [`AdminExtras::kme_json`](crate::android::AdminExtras::kme_json) | `{"com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN": "obt1_…"}` |
//! | Android NFC properties | [`AndroidProvisioning::nfc_properties`](crate::android::AndroidProvisioning::nfc_properties) | `android.app.extra.PROVISIONING_…=…` |
//!
//! [`PayloadConfig`] holds the settings of every form and renders any [`PayloadFormat`], so a
//! CLI or a server can offer all of them behind one `--format` switch.
//!
//! Every rendered form carries the token and is a credential: it comes back as
//! [`SecretText`], whose `Debug` is redacted and whose bytes are zeroized on drop.
//!
//! # The typed form
//!
//! [`grouped`] writes the prefix `obt1_`, then the 48 body characters in 12 groups of
//! [`GROUP_LEN`] (4), each group preceded by one space:
//!
//! ```text
//! obt1_ AbCd EfGh IjKl MnOp QrSt UvWx Yz01 2345 6789 -_Ab CdEf GhIj
//! ```
//!
//! `-` and `_` are themselves token characters, so the separator is whitespace, never a
//! hyphen. Reading it back ([`parse_grouped`], [`extract_token`]):
//!
//! - all whitespace (spaces, tabs, line breaks, also non-breaking and other Unicode spaces)
//!   is dropped, wherever it is; zero-width characters are dropped too;
//! - the prefix is matched without regard to case (`OBT1_`, `Obt1_`: keyboards capitalise);
//! - if the body is then not 48 characters, hyphens are taken as separators only when they
//!   form a regular pattern: every group between them has the same length `g` (a divisor
//!   of 48 from 2 to 24), as in `obt1_AbCd-EfGh-…-GhIj`. A person's line breaks or spaces
//!   may stand in for some of those hyphens. Any other length is a malformed token.
//!
//! # Device side
//!
//! [`extract_token`] takes whatever a scanner or a person produced (a bare token, a link, the
//! Android or Knox JSON, the NFC properties, the typed form, a sentence around a token) and
//! returns the one token in it as a [`TokenText`], or a typed [`ExtractError`]. It never
//! verifies the signature: hand the result to
//! [`Onboarding::redeem`](crate::Onboarding::redeem), which does.
//!
//! ```
//! use onboarding_token::payload::{extract_token, grouped, EnrollmentUrl};
//! use onboarding_token::{Keyring, SigningKey, TokenId};
//!
//! let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! let keyring = Keyring::new(SigningKey::generate(&mut rng));
//! let token = keyring.sign(&TokenId::generate(&mut rng));
//!
//! let link = EnrollmentUrl::new("https://mdm.example.com/enroll?site=berlin")?.render(&token);
//! let typed = grouped(&token);
//! for input in [link.expose_secret(), typed.expose_secret(), token.expose_secret()] {
//!     assert_eq!(extract_token(input)?.expose_secret(), token.expose_secret());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

use crate::android::{AdminExtras, AndroidProvisioning};
use crate::codec::{DecodeError, PREFIX, TOKEN_LEN, TokenString, UnverifiedToken};

/// The largest input [`extract_token`] looks at, in bytes (64 KiB).
pub const MAX_INPUT_LEN: usize = 64 * 1024;

/// Characters per group in the typed form.
pub const GROUP_LEN: usize = 4;

/// Groups per line in [`grouped_lines`].
pub const GROUPS_PER_LINE: usize = 4;

const BODY_LEN: usize = TOKEN_LEN - PREFIX.len();

/// Text that carries a token (a payload, a link, a manifest): a credential.
///
/// `Debug` shows only the length; the bytes are zeroized on drop. Call
/// [`expose_secret`](SecretText::expose_secret) where the text must really go out (into a QR
/// code, a file, an HTTP response).
///
/// ```
/// use onboarding_token::payload::SecretText;
/// let text = SecretText::new("obt1_secret".to_owned());
/// assert_eq!(format!("{text:?}"), "SecretText { len: 11, secret: \"[redacted]\" }");
/// assert_eq!(text.expose_secret(), "obt1_secret");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretText(Zeroizing<String>);

impl SecretText {
    /// Wraps text that carries a secret.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The text itself. It is a credential: do not log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text as a [`Zeroizing`] string, for callers that need an owned `String`.
    pub fn into_zeroizing(self) -> Zeroizing<String> {
        self.0
    }
}

impl From<&TokenString> for SecretText {
    fn from(token: &TokenString) -> Self {
        Self::new(token.expose_secret().to_owned())
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretText")
            .field("len", &self.0.len())
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A well-formed token string found in scanned or typed input. **Not verified**: only
/// [`Keyring::verify`](crate::Keyring::verify) (through
/// [`Onboarding::redeem`](crate::Onboarding::redeem)) tells whether it is genuine.
///
/// A credential like [`TokenString`]: `Debug` shows only the untrusted ids, the bytes are
/// zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText {
    bytes: [u8; TOKEN_LEN],
    parsed: UnverifiedToken,
}

impl TokenText {
    /// Parses an exact token string (no whitespace, no grouping; see [`parse_grouped`] and
    /// [`extract_token`] for the lenient forms).
    pub fn parse(input: &str) -> Result<Self, DecodeError> {
        let parsed = UnverifiedToken::parse(input)?;
        let mut bytes = [0u8; TOKEN_LEN];
        bytes.copy_from_slice(input.as_bytes());
        Ok(Self { bytes, parsed })
    }

    /// The token string. It is a credential: do not log it.
    pub fn expose_secret(&self) -> &str {
        // Only ever filled from a parsed (ASCII) token string.
        std::str::from_utf8(&self.bytes).unwrap_or("")
    }

    /// The parsed, unverified token (its claimed key id and token id).
    pub fn untrusted(&self) -> &UnverifiedToken {
        &self.parsed
    }
}

impl From<&TokenString> for TokenText {
    fn from(token: &TokenString) -> Self {
        let mut bytes = [0u8; TOKEN_LEN];
        bytes.copy_from_slice(token.expose_secret().as_bytes());
        let parsed = UnverifiedToken::parse(token.expose_secret())
            .expect("a TokenString is always well-formed");
        Self { bytes, parsed }
    }
}

impl Drop for TokenText {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenText")
            .field("untrusted_key_id", &self.parsed.untrusted_key_id())
            .field("untrusted_token_id", &self.parsed.untrusted_token_id())
            .field("secret", &"[redacted]")
            .finish()
    }
}

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
/// Accepts a bare token, the typed form (see the [module docs](self)), an enrollment URL
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
        let pairs = crate::android::parse_properties(text)
            .map_err(|line| ExtractError::InvalidProperties { line })?;
        for (key, value) in &pairs {
            if key == crate::android::EXTRA_PROVISIONING_ADMIN_EXTRAS_BUNDLE {
                let nested = crate::android::parse_properties(value)
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

/// Parses the typed form (or a bare token): the whole input must be one token, with the
/// whitespace and hyphen rules of the [module docs](self).
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

/// The payload forms a token can be rendered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PayloadFormat {
    /// The bare token string.
    #[default]
    Token,
    /// The typed form on one line ([`grouped`]).
    Grouped,
    /// An enrollment link ([`EnrollmentUrl`]).
    Url,
    /// The Android Enterprise provisioning JSON for the setup-screen QR code.
    Android,
    /// The flat Samsung Knox Mobile Enrollment JSON.
    Kme,
    /// The Android NFC provisioning properties.
    Nfc,
}

impl PayloadFormat {
    /// Every format.
    pub const ALL: [PayloadFormat; 6] = [
        Self::Token,
        Self::Grouped,
        Self::Url,
        Self::Android,
        Self::Kme,
        Self::Nfc,
    ];

    /// The lowercase name (`token`, `grouped`, `url`, `android`, `kme`, `nfc`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Grouped => "grouped",
            Self::Url => "url",
            Self::Android => "android",
            Self::Kme => "kme",
            Self::Nfc => "nfc",
        }
    }
}

impl fmt::Display for PayloadFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A payload format name was not recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown payload format; expected token, grouped, url, android, kme or nfc")]
pub struct UnknownFormat;

impl std::str::FromStr for PayloadFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownFormat)
    }
}

/// A payload could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The format needs settings that were not given (an URL base, the Android settings).
    #[error("the {0} format is not configured")]
    NotConfigured(PayloadFormat),
}

/// The settings of every payload form, to render any [`PayloadFormat`] for a token.
///
/// ```
/// use onboarding_token::payload::{EnrollmentUrl, PayloadConfig, PayloadFormat};
/// # use onboarding_token::{Keyring, SigningKey, TokenId};
/// # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
/// let config = PayloadConfig::new().with_url(EnrollmentUrl::new("https://mdm.example.com/e")?);
/// let link = config.render(PayloadFormat::Url, &token)?;
/// assert!(link.expose_secret().starts_with("https://mdm.example.com/e?token=obt1_"));
/// assert!(config.render(PayloadFormat::Android, &token).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PayloadConfig {
    url: Option<EnrollmentUrl>,
    android: Option<AndroidProvisioning>,
    kme: Option<AdminExtras>,
}

impl PayloadConfig {
    /// No settings: only [`PayloadFormat::Token`], [`PayloadFormat::Grouped`] and
    /// [`PayloadFormat::Kme`] (with the default token key) render.
    pub fn new() -> Self {
        Self::default()
    }

    /// The enrollment link settings.
    pub fn with_url(mut self, url: EnrollmentUrl) -> Self {
        self.url = Some(url);
        self
    }

    /// The Android provisioning settings (used by the Android and NFC formats, and by KME
    /// unless [`with_kme`](PayloadConfig::with_kme) is given).
    pub fn with_android(mut self, android: AndroidProvisioning) -> Self {
        self.android = Some(android);
        self
    }

    /// The Knox KME token key and extras.
    pub fn with_kme(mut self, extras: AdminExtras) -> Self {
        self.kme = Some(extras);
        self
    }

    /// Renders `token` in `format`.
    pub fn render(
        &self,
        format: PayloadFormat,
        token: &TokenString,
    ) -> Result<SecretText, PayloadError> {
        let missing = || PayloadError::NotConfigured(format);
        Ok(match format {
            PayloadFormat::Token => SecretText::from(token),
            PayloadFormat::Grouped => grouped(token),
            PayloadFormat::Url => self.url.as_ref().ok_or_else(missing)?.render(token),
            PayloadFormat::Android => self.android.as_ref().ok_or_else(missing)?.qr_json(token),
            PayloadFormat::Nfc => self
                .android
                .as_ref()
                .ok_or_else(missing)?
                .nfc_properties(token),
            PayloadFormat::Kme => match (&self.kme, &self.android) {
                (Some(extras), _) => extras.kme_json(token),
                (None, Some(android)) => android.admin_extras().kme_json(token),
                (None, None) => AdminExtras::new().kme_json(token),
            },
        })
    }
}

/// An enrollment URL base was rejected. Messages do not repeat the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not start with `http://` or `https://`.
    #[error("URL must start with http:// or https://")]
    NotHttp,
    /// An `https://` URL was required.
    #[error("URL must start with https://")]
    NotHttps,
    /// There is no host after the scheme.
    #[error("URL has no host")]
    MissingHost,
    /// The URL contains whitespace, control or non-ASCII characters, or characters not
    /// allowed in its part (percent-encode them first).
    #[error("URL contains a character that is not allowed (percent-encode it)")]
    BadCharacter,
    /// The URL is longer than allowed.
    #[error("URL is longer than {max} bytes")]
    TooLong {
        /// The bound.
        max: usize,
    },
    /// The URL carries a user name or password (`user:pass@host`).
    #[error("URL must not contain a user name or password")]
    Credentials,
    /// The query parameter name is empty or not made of `A-Z a-z 0-9 - . _ ~`.
    #[error("query parameter name must be 1 to 64 characters of A-Z a-z 0-9 - . _ ~")]
    BadParamName,
    /// The base already has a query parameter of that name.
    #[error("the URL already has a query parameter of that name")]
    ParamAlreadyPresent,
}

/// Builds enrollment links: a validated `http(s)` base with the token in a query parameter.
///
/// The base's own query string and fragment are kept: the token parameter is appended to
/// the query, before any `#fragment`. The value is percent-encoded (a token only has
/// unreserved characters, so it appears as is).
///
/// ```
/// use onboarding_token::payload::{EnrollmentUrl, UrlError};
/// # use onboarding_token::{Keyring, SigningKey, TokenId};
/// # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
/// # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
/// let url = EnrollmentUrl::new("https://mdm.example.com/enroll?site=berlin#start")?
///     .with_param("t")?;
/// let link = url.render(&token);
/// assert_eq!(
///     link.expose_secret(),
///     format!("https://mdm.example.com/enroll?site=berlin&t={}#start", token.expose_secret())
/// );
/// assert_eq!(EnrollmentUrl::new("ftp://x").unwrap_err(), UrlError::NotHttp);
/// # Ok::<(), UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentUrl {
    base: String,
    param: String,
}

impl EnrollmentUrl {
    /// The default query parameter name.
    pub const DEFAULT_PARAM: &'static str = "token";
    /// The longest accepted base, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Validates `base` (an `http://` or `https://` URL with a host; ASCII, no whitespace).
    pub fn new(base: &str) -> Result<Self, UrlError> {
        validate_http_url(base, false)?;
        let url = Self {
            base: base.to_owned(),
            param: Self::DEFAULT_PARAM.to_owned(),
        };
        url.check_param_absent()?;
        Ok(url)
    }

    /// Puts the token in the query parameter `name` instead of `token`.
    pub fn with_param(mut self, name: &str) -> Result<Self, UrlError> {
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(UrlError::BadParamName);
        }
        self.param = name.to_owned();
        self.check_param_absent()?;
        Ok(self)
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The query parameter name.
    pub fn param(&self) -> &str {
        &self.param
    }

    fn split(&self) -> (&str, &str) {
        match self.base.find('#') {
            Some(i) => self.base.split_at(i),
            None => (&self.base, ""),
        }
    }

    fn check_param_absent(&self) -> Result<(), UrlError> {
        let (before_fragment, _) = self.split();
        if let Some((_, query)) = before_fragment.split_once('?') {
            let present = query
                .split(['&', ';'])
                .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k))
                .any(|k| percent_decode_lossy(k) == self.param);
            if present {
                return Err(UrlError::ParamAlreadyPresent);
            }
        }
        Ok(())
    }

    /// The link for `token`.
    pub fn render(&self, token: &TokenString) -> SecretText {
        let (before_fragment, fragment) = self.split();
        let mut out = String::with_capacity(self.base.len() + self.param.len() + TOKEN_LEN + 2);
        out.push_str(before_fragment);
        if !before_fragment.contains('?') {
            out.push('?');
        } else if !(before_fragment.ends_with('?') || before_fragment.ends_with('&')) {
            out.push('&');
        }
        out.push_str(&self.param);
        out.push('=');
        percent_encode_into(token.expose_secret(), &mut out);
        out.push_str(fragment);
        SecretText::new(out)
    }
}

/// Validates an absolute `http(s)` URL: scheme, a host, ASCII without whitespace or
/// control characters. With `https_only`, `http://` is refused.
pub(crate) fn validate_http_url(url: &str, https_only: bool) -> Result<(), UrlError> {
    if url.len() > EnrollmentUrl::MAX_LEN {
        return Err(UrlError::TooLong {
            max: EnrollmentUrl::MAX_LEN,
        });
    }
    // Compare bytes: slicing the `str` would panic inside a multi-byte character.
    let lower_starts = |p: &str| {
        url.as_bytes()
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
    };
    let rest = if lower_starts("https://") {
        &url[8..]
    } else if lower_starts("http://") {
        if https_only {
            return Err(UrlError::NotHttps);
        }
        &url[7..]
    } else if https_only {
        return Err(UrlError::NotHttps);
    } else {
        return Err(UrlError::NotHttp);
    };
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UrlError::BadCharacter);
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    // Credentials in a link end up printed on sheets and in browser histories.
    if authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    let host_port = authority;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        match v6.split_once(']') {
            Some((inner, port)) => {
                if !inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return Err(UrlError::BadCharacter);
                }
                check_port(port.strip_prefix(':'), port.is_empty())?;
                inner
            }
            None => return Err(UrlError::BadCharacter),
        }
    } else {
        let (host, port) = match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        };
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b))
        {
            return Err(UrlError::BadCharacter);
        }
        check_port(port, port.is_none())?;
        host
    };
    if host.is_empty() {
        return Err(UrlError::MissingHost);
    }
    let tail = &rest[authority_end..];
    if tail.bytes().any(|b| b"<>\"\\^`{|}".contains(&b)) {
        return Err(UrlError::BadCharacter);
    }
    Ok(())
}

fn check_port(port: Option<&str>, absent_ok: bool) -> Result<(), UrlError> {
    match port {
        None if absent_ok => Ok(()),
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(()),
        _ => Err(UrlError::BadCharacter),
    }
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
fn percent_encode_into(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space); invalid escapes stay as they are, invalid
/// UTF-8 becomes U+FFFD.
fn percent_decode_lossy(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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

/// Zero-width and byte-order-mark characters that copy and paste leaves behind.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{00ad}'
    )
}

fn is_body_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
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

enum Prefix {
    /// `obt1_`; the body starts at this index.
    V1(usize),
    /// `obt<digits>_` with another version.
    Other,
}

/// Whether a token prefix (case-insensitive `obt`, a version, `_`) starts at `i`.
fn match_prefix(chars: &[char], i: usize) -> Option<Prefix> {
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

/// Joins body words into `obt1_` + 48 characters, applying the hyphen-separator rule.
fn normalize_body(words: &[&str]) -> Option<String> {
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
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode_lossy("a%5Fb%zz%4"), "a_b%zz%4");
        assert_eq!(percent_decode_lossy("a+b"), "a b");
        assert_eq!(percent_decode_lossy("%"), "%");
    }

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
