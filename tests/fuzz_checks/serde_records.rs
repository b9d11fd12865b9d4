//! The `serde_records` fuzz target's checks.

use super::*;

/// serde deserialization of records and specifications from arbitrary JSON: a record that
/// passes every rule and round-trips, or an error.
pub fn check_serde(data: &[u8]) {
    fn rt<T>(bytes: &[u8])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        if let Ok(value) = serde_json::from_slice::<T>(bytes) {
            let text = serde_json::to_string(&value).expect("serializes");
            let back: T = serde_json::from_str(&text).expect("its own JSON reads back");
            assert_eq!(back, value);
        }
    }
    rt::<Token>(data);
    rt::<TokenSpec>(data);
    rt::<Enrollment>(data);
    rt::<Validity>(data);
    rt::<Metadata>(data);
    rt::<UsageLimit>(data);
    rt::<ExpirySpec>(data);
    rt::<Leeway>(data);
    rt::<PageCursor>(data);
    rt::<RevokeTarget>(data);
    if let Ok(token) = serde_json::from_slice::<Token>(data) {
        // Whatever deserializes obeys the record's rules.
        let parts = token.clone().into_parts();
        assert_eq!(Token::from_parts(parts).expect("valid parts"), token);
        if let Some(max) = token.usage_limit().max_uses() {
            assert!(token.uses() <= u64::from(max));
        }
    }
    if let Ok(spec) = serde_json::from_slice::<TokenSpec>(data) {
        let _ = spec.validate(now());
    }
}
