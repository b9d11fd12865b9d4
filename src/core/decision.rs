//! What a redemption does to a token's record: the output of the rules.

use chrono::{DateTime, Utc};

/// What a redemption does to the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A new device: take one use, leaving `uses_after`, and record the device.
    Consume {
        /// The use count after this redemption.
        uses_after: u64,
    },
    /// The same device again (a retry): hand back the original enrollment, consume nothing.
    Replay {
        /// When the device first redeemed the token.
        first_redeemed_at: DateTime<Utc>,
    },
}
