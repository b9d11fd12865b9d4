//! Secret hygiene beyond `tests/secrets/`: the serde output of every public serializable
//! type, the `Debug` output of every type that carries a secret (payload text, scanned
//! tokens, QR codes, Android payloads and their Wi-Fi password, manifests, key-file errors),
//! and everything logged while the stores work (the crate itself logs nothing; sqlx logs
//! its statements through `log`). None of it may contain a token string, key bytes or the
//! Wi-Fi password.

#[path = "../support/mod.rs"]
mod support;

use std::sync::{Mutex, OnceLock};

use chrono::TimeDelta;
use onboarding_token::android::{AdminExtras, AndroidProvisioning, Wifi, WifiSecurity};
use onboarding_token::bulk::{Manifest, QrFileFormat};
use onboarding_token::keyfile::{self, KeyFileError};
use onboarding_token::payload::{EnrollmentUrl, PayloadConfig, PayloadFormat, extract_token};
use onboarding_token::store::RevokeTarget;
use onboarding_token::*;
use serde::Serialize;
use support::fixture::{hygiene_key as key, t0};
use support::secrets::encodings;

const WIFI_PASSWORD: &str = "Tr0ub4dor&3-wifi-secret";

/// The secrets to look for: token strings, the key in every encoding, the Wi-Fi password.
struct Secrets(Vec<String>);

impl Secrets {
    fn new(tokens: &[&TokenString]) -> Self {
        let mut all: Vec<String> = tokens
            .iter()
            .map(|t| t.expose_secret().to_owned())
            .collect();
        all.extend(encodings(key().expose_secret()));
        all.push(WIFI_PASSWORD.to_owned());
        Self(all)
    }

    /// No 12-character window of any secret occurs in `text`.
    #[track_caller]
    fn assert_absent(&self, what: &str, text: &str) {
        for secret in &self.0 {
            let chars: Vec<char> = secret.chars().collect();
            for w in chars.windows(12.min(chars.len())) {
                let w: String = w.iter().collect();
                assert!(!text.contains(&w), "{what} shows {w:?}: {text}");
            }
        }
    }
}

/// A service with tokens of every kind: single, limited, unlimited, in a batch, redeemed,
/// replayed, revoked.
async fn populated() -> (Onboarding<MemoryStore, ManualClock>, Vec<Issued>) {
    let clock = ManualClock::new(t0());
    let service =
        Onboarding::new(Keyring::new(key()), MemoryStore::new()).with_clock(clock.clone());
    let org = OrgId::new("acme").unwrap();
    let spec = TokenSpec::new(org.clone(), GroupId::new("emea/berlin").unwrap())
        .with_policies([PolicyId::new("wifi").unwrap()])
        .with_usage_limit(UsageLimit::limited(5).unwrap())
        .with_description("Berlin laptops")
        .with_metadata(Metadata::from_pairs([("site", "mitte")]).unwrap())
        .with_not_before(t0() + TimeDelta::minutes(1))
        .with_expiry(ExpirySpec::After(TimeDelta::days(2)));
    let mut issued = vec![
        service.issue(spec.clone()).await.unwrap(),
        service
            .issue(
                TokenSpec::new(org.clone(), GroupId::new("kiosk").unwrap())
                    .with_usage_limit(UsageLimit::Unlimited)
                    .with_expiry(ExpirySpec::Never),
            )
            .await
            .unwrap(),
    ];
    issued.extend(service.issue_many(spec, 3).await.unwrap().tokens);
    clock.advance(TimeDelta::minutes(5));
    for (i, t) in issued.iter().enumerate() {
        let d = DeviceId::new(format!("SN-{i}")).unwrap();
        service.redeem(t.secret.expose_secret(), &d).await.unwrap();
        service.redeem(t.secret.expose_secret(), &d).await.unwrap();
    }
    service
        .revoke(&RevokeTarget::Token(issued[0].token.id()), "lost")
        .await
        .unwrap();
    (service, issued)
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

mod driver_logs;
mod output;
