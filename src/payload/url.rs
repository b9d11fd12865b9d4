//! Enrollment links ([`EnrollmentUrl`]), and the `http(s)` URL check the Android download
//! location shares.

use zeroize::Zeroizing;

use crate::core::codec::{TOKEN_LEN, TokenString};

use super::secret::SecretText;

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
pub(super) fn percent_decode_lossy(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_invalid_escapes() {
        assert_eq!(percent_decode_lossy("a%5Fb%zz%4"), "a_b%zz%4");
        assert_eq!(percent_decode_lossy("a+b"), "a b");
        assert_eq!(percent_decode_lossy("%"), "%");
    }
}
