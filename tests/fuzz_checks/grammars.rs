//! The `grammars` fuzz target's checks.

use super::*;

/// Every small public parser over arbitrary text: durations, expiries, times, limits,
/// metadata, policies, ids, names, cursors, statuses, formats, URLs, checksums. Accepted
/// values round-trip through their text form.
pub fn check_grammars(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();
    match bulk::parse_duration(s) {
        Ok(d) => assert!(d > onboarding_token::chrono::TimeDelta::zero()),
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    match bulk::parse_expiry(s) {
        Ok(ExpirySpec::After(d)) => assert!(d > onboarding_token::chrono::TimeDelta::zero()),
        Ok(_) => {}
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    if let Ok(t) = bulk::parse_time(s) {
        assert_eq!(bulk::parse_time(&t.to_rfc3339()), Ok(t));
    }
    match bulk::parse_usage_limit(s) {
        Ok(limit) => {
            if let Ok(n) = s.parse::<u32>() {
                assert_eq!(limit.max_uses(), Some(n));
            }
        }
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    match bulk::parse_metadata(s) {
        Ok(meta) => {
            let size: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(size <= Metadata::MAX_BYTES);
            assert!(meta.iter().all(|(k, _)| !k.is_empty()));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(policies) = bulk::parse_policies(s) {
        assert!(policies.iter().all(|p| !p.as_str().is_empty()));
    }
    fn round_trip<T>(s: &str)
    where
        T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
        T::Err: std::fmt::Display,
    {
        match s.parse::<T>() {
            Ok(v) => {
                let shown = v.to_string();
                let again: T = shown.parse().ok().expect("Display output parses back");
                assert_eq!(again, v);
            }
            Err(e) => assert_no_token_in(&e.to_string()),
        }
    }
    round_trip::<TokenId>(s);
    round_trip::<BatchId>(s);
    round_trip::<KeyId>(s);
    round_trip::<PageCursor>(s);
    round_trip::<Status>(s);
    round_trip::<OrgId>(s);
    round_trip::<GroupId>(s);
    round_trip::<PolicyId>(s);
    round_trip::<DeviceId>(s);
    round_trip::<PayloadFormat>(s);
    if let Ok(id) = s.parse::<TokenId>() {
        assert_eq!(id.to_string(), s, "ids have one text form");
    }
    if let Ok(id) = s.parse::<KeyId>() {
        assert_eq!(id.to_string(), s, "key ids have one text form");
    }
    let _ = s.parse::<WifiSecurity>();
    match EnrollmentUrl::new(s) {
        Ok(url) => {
            assert_eq!(url.base(), s);
            let token = token_from(data);
            let link = url.render(&token);
            assert!(link.expose_secret().is_ascii());
            assert!(!link.expose_secret().chars().any(char::is_whitespace));
        }
        Err(e) => assert_no_token_in(&e.to_string()),
    }
    let _ = onboarding_token::android::SignatureChecksum::new(s);
    let _ = onboarding_token::android::SignatureChecksum::from_sha256_hex(s);
}
