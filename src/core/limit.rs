//! [`UsageLimit`]: how many distinct devices may enroll with a token.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

/// How many distinct devices may enroll with a token.
///
/// Single-use is the default. There is no zero or sentinel value for "unlimited".
///
/// ```
/// use onboarding_token::UsageLimit;
/// assert_eq!(UsageLimit::default(), UsageLimit::Once);
/// assert_eq!(UsageLimit::limited(5).unwrap().max_uses(), Some(5));
/// assert!(UsageLimit::limited(0).is_none());
/// assert_eq!(UsageLimit::Unlimited.max_uses(), None);
/// ```
///
/// Two limits are equal when they allow the same number of uses: `Limited(1)` equals `Once`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageLimit {
    /// One device (the default).
    #[default]
    Once,
    /// Up to this many distinct devices.
    Limited(NonZeroU32),
    /// Any number of devices, until the token expires or is revoked.
    Unlimited,
}

impl PartialEq for UsageLimit {
    fn eq(&self, other: &Self) -> bool {
        self.max_uses() == other.max_uses()
    }
}

impl Eq for UsageLimit {}

impl std::hash::Hash for UsageLimit {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.max_uses().hash(state);
    }
}

impl UsageLimit {
    /// A limit of `n` devices; `None` for zero. `limited(1)` is [`UsageLimit::Once`].
    pub fn limited(n: u32) -> Option<Self> {
        match n {
            0 => None,
            1 => Some(Self::Once),
            n => NonZeroU32::new(n).map(Self::Limited),
        }
    }

    /// The maximum number of uses, or `None` when unlimited.
    pub fn max_uses(&self) -> Option<u32> {
        match self {
            Self::Once => Some(1),
            Self::Limited(n) => Some(n.get()),
            Self::Unlimited => None,
        }
    }

    /// Whether a token that has been used `uses` times may be used once more.
    pub fn allows_another(&self, uses: u64) -> bool {
        self.max_uses().is_none_or(|max| uses < u64::from(max))
    }
}
