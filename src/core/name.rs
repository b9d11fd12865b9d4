//! Validated, cheaply clonable names: organizations, groups, policies, devices.
//!
//! Each name is an `Arc<str>` inside, so cloning one (as every redemption does when it
//! hands the group and policies back) bumps a reference count instead of allocating.

use std::sync::Arc;

/// A name (organization, group, policy or device id) did not meet its grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {problem}")]
pub struct InvalidName {
    kind: &'static str,
    problem: NameProblem,
}

impl InvalidName {
    /// Which kind of name was rejected (`"group id"`, `"device id"`, ...).
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// What was wrong with it.
    pub fn problem(&self) -> NameProblem {
        self.problem
    }
}

/// What was wrong with a rejected name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name was empty.
    #[error("it is empty")]
    Empty,
    /// The name was longer than allowed.
    #[error("it is longer than {max} bytes")]
    TooLong {
        /// The maximum length in bytes.
        max: usize,
    },
    /// The name contained a character outside its alphabet.
    #[error("it contains a character outside {allowed}")]
    BadCharacter {
        /// A description of the allowed characters.
        allowed: &'static str,
    },
    /// A hierarchical path had an empty segment (leading, trailing or doubled `/`).
    #[error("it has an empty path segment")]
    EmptySegment,
}

/// The grammar of one kind of name.
pub(crate) struct Grammar {
    pub kind: &'static str,
    pub max_len: usize,
    pub allowed: &'static str,
    pub char_ok: fn(u8) -> bool,
    pub hierarchical: bool,
}

impl Grammar {
    pub(crate) fn check(&self, value: &str) -> Result<(), InvalidName> {
        let fail = |problem| InvalidName {
            kind: self.kind,
            problem,
        };
        if value.is_empty() {
            return Err(fail(NameProblem::Empty));
        }
        if value.len() > self.max_len {
            return Err(fail(NameProblem::TooLong { max: self.max_len }));
        }
        for &b in value.as_bytes() {
            if b == b'/' && self.hierarchical {
                continue;
            }
            if !(self.char_ok)(b) {
                return Err(fail(NameProblem::BadCharacter {
                    allowed: self.allowed,
                }));
            }
        }
        if self.hierarchical && value.split('/').any(str::is_empty) {
            return Err(fail(NameProblem::EmptySegment));
        }
        Ok(())
    }
}

pub(crate) fn plain_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

pub(crate) fn visible_ascii(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// Defines a validated name newtype over `Arc<str>`.
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $grammar:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            const GRAMMAR: $crate::core::name::Grammar = $grammar;

            /// The maximum length in bytes.
            pub const MAX_LEN: usize = Self::GRAMMAR.max_len;

            /// Validates `value` and wraps it.
            pub fn new(value: impl AsRef<str>) -> Result<Self, $crate::core::name::InvalidName> {
                let value = value.as_ref();
                Self::GRAMMAR.check(value)?;
                Ok(Self(std::sync::Arc::from(value)))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::core::name::InvalidName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::core::name::InvalidName;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::core::name::InvalidName;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                Self::new(&*s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use name_type;

name_type!(
    /// The organization (enterprise) a device enrolls into.
    ///
    /// One MDM server often serves many organizations; listing and bulk revocation can be
    /// scoped to one. 1 to 64 bytes of `A-Z a-z 0-9 - _ .`.
    ///
    /// ```
    /// use onboarding_token::OrgId;
    /// let org = OrgId::new("acme").unwrap();
    /// assert_eq!(org.to_string(), "acme");
    /// assert!(OrgId::new("acme corp").is_err());
    /// ```
    OrgId,
    Grammar {
        kind: "organization id",
        max_len: 64,
        allowed: "A-Z a-z 0-9 - _ .",
        char_ok: plain_char,
        hierarchical: false,
    }
);

name_type!(
    /// Identifies an enrolling device: a serial number, an IMEI, a hardware id, a UUID.
    ///
    /// 1 to 256 bytes of visible ASCII (no spaces or control characters). A device that
    /// redeems the same token twice is recognised by this id and gets its original
    /// enrollment back without consuming a second use.
    ///
    /// ```
    /// use onboarding_token::DeviceId;
    /// assert!(DeviceId::new("R58N123ABC").is_ok());
    /// assert!(DeviceId::new("has space").is_err());
    /// ```
    DeviceId,
    Grammar {
        kind: "device id",
        max_len: 256,
        allowed: "visible ASCII",
        char_ok: visible_ascii,
        hierarchical: false,
    }
);

/// An `Arc<str>` shared by every empty description, so that empty strings never allocate.
pub(crate) fn shared_empty() -> Arc<str> {
    static EMPTY: std::sync::OnceLock<Arc<str>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Arc::from("")).clone()
}
