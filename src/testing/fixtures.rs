//! Fixtures shared by the conformance cases and the model test: the suite's keys, fixed
//! instants, id and spec builders, and store calls that panic with the failing operation.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::core::codec::VerifiedToken;
use crate::core::enrollment::{Enrollment, Redemption};
use crate::core::error::{RedeemError, Rejection};
use crate::core::keys::{KeyId, Keyring, SigningKey};
use crate::core::name::{DeviceId, OrgId};
use crate::core::policy::{GroupId, PolicyId};
use crate::core::rules::{Leeway, RedeemRequest};
use crate::core::token::{BatchId, ExpirySpec, Revocation, Token, TokenId, TokenSpec, UsageLimit};
use crate::store::{PageCursor, RevokeTarget, TokenQuery, TokenStore};

/// The suite's keyring (fixed keys: an active one and a verify-only one) and helpers to
/// build records and verified requests the way the service does.
pub(super) struct Fixture {
    keyring: Keyring,
    pub(super) active: KeyId,
    pub(super) other: KeyId,
}

impl Fixture {
    pub(super) fn new() -> Self {
        let active = SigningKey::from_bytes(KeyId::from_bytes(*b"sui1"), &[0x11; 32]);
        let other = SigningKey::from_bytes(KeyId::from_bytes(*b"sui2"), &[0x22; 32]);
        let (active_id, other_id) = (active.id(), other.id());
        let keyring = Keyring::new(active)
            .with_verify_only(other)
            .expect("the suite's two keys have distinct ids");
        Self {
            keyring,
            active: active_id,
            other: other_id,
        }
    }

    /// A record with a random id, issued under the active key.
    pub(super) fn issue(
        &self,
        spec: TokenSpec,
        now: DateTime<Utc>,
        batch: Option<BatchId>,
    ) -> Token {
        self.issue_with(random_id(), self.active, spec, now, batch)
    }

    pub(super) fn issue_with(
        &self,
        id: TokenId,
        key: KeyId,
        spec: TokenSpec,
        now: DateTime<Utc>,
        batch: Option<BatchId>,
    ) -> Token {
        spec.into_token(id, key, now, batch)
            .unwrap_or_else(|e| panic!("conformance suite bug: invalid token spec: {e}"))
    }

    /// The token as a device presents it: signed with `key`, verified by the keyring.
    pub(super) fn verified_with(&self, key: KeyId, id: TokenId) -> VerifiedToken {
        let text = self
            .keyring
            .sign_with(key, &id)
            .expect("the suite signs only with its own keys");
        self.keyring
            .verify_str(text.expose_secret())
            .expect("a fresh signature verifies")
    }

    pub(super) fn verified(&self, token: &Token) -> VerifiedToken {
        self.verified_with(token.key_id(), token.id())
    }
}

pub(super) fn random_id() -> TokenId {
    TokenId::generate(&mut rand_core::UnwrapErr(getrandom::SysRng))
}

pub(super) fn random_batch() -> BatchId {
    BatchId::generate(&mut rand_core::UnwrapErr(getrandom::SysRng))
}

/// 2030-01-01T00:00:00Z, the suite's epoch.
pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .expect("2030-01-01 is a valid instant")
}

pub(super) fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

pub(super) const MICRO: TimeDelta = TimeDelta::microseconds(1);

pub(super) fn org(s: &str) -> OrgId {
    OrgId::new(s).expect("suite organization ids are valid")
}

pub(super) fn group(s: &str) -> GroupId {
    GroupId::new(s).expect("suite group ids are valid")
}

pub(super) fn policy(s: &str) -> PolicyId {
    PolicyId::new(s).expect("suite policy ids are valid")
}

pub(super) fn device(name: impl std::fmt::Display) -> DeviceId {
    DeviceId::new(format!("device-{name}")).expect("suite device ids are valid")
}

pub(super) fn limited(n: u32) -> UsageLimit {
    UsageLimit::limited(n).expect("suite limits are positive")
}

pub(super) fn leeway(seconds: i64) -> Leeway {
    Leeway::new(secs(seconds)).expect("suite leeways are in range")
}

pub(super) fn revocation(at: DateTime<Utc>, reason: &str) -> Revocation {
    Revocation::new(at, reason).expect("suite reasons are short")
}

/// A spec for `organization`/`group_id`, single use, expiring a day after issue.
pub(super) fn spec(organization: &str, group_id: &str) -> TokenSpec {
    TokenSpec::new(org(organization), group(group_id)).with_expiry(ExpirySpec::After(secs(86_400)))
}

pub(super) fn ids(tokens: &[Token]) -> Vec<TokenId> {
    tokens.iter().map(Token::id).collect()
}

/// The ids in listing order (created_at, then id).
pub(super) fn ordered(tokens: &[&Token]) -> Vec<TokenId> {
    let mut sorted: Vec<&Token> = tokens.to_vec();
    sorted.sort_by_key(|t| PageCursor::after(t));
    sorted.iter().map(|t| t.id()).collect()
}

pub(super) async fn must_insert<S: TokenStore + ?Sized>(store: &S, token: &Token) {
    if let Err(e) = store.insert(token.clone()).await {
        panic!("inserting token {} failed: {e}", token.id());
    }
}

pub(super) async fn must_insert_batch<S: TokenStore + ?Sized>(store: &S, tokens: &[Token]) {
    if let Err(e) = store.insert_batch(tokens.to_vec()).await {
        panic!("inserting a batch of {} tokens failed: {e}", tokens.len());
    }
}

pub(super) async fn must_get<S: TokenStore + ?Sized>(store: &S, id: TokenId) -> Token {
    match store.get(id).await {
        Ok(Some(token)) => token,
        Ok(None) => panic!("token {id} should be stored, but get returned None"),
        Err(e) => panic!("get({id}) failed: {e}"),
    }
}

pub(super) async fn must_be_absent<S: TokenStore + ?Sized>(store: &S, id: TokenId, why: &str) {
    match store.get(id).await {
        Ok(None) => {}
        Ok(Some(_)) => panic!("token {id} must not be stored: {why}"),
        Err(e) => panic!("get({id}) failed: {e}"),
    }
}

pub(super) async fn must_redemptions<S: TokenStore + ?Sized>(
    store: &S,
    id: TokenId,
) -> Vec<Redemption> {
    store
        .redemptions(id)
        .await
        .unwrap_or_else(|e| panic!("redemptions({id}) failed: {e}"))
}

pub(super) async fn must_revoke<S: TokenStore + ?Sized>(
    store: &S,
    target: &RevokeTarget,
    revocation: &Revocation,
) -> u64 {
    store
        .revoke(target, revocation)
        .await
        .unwrap_or_else(|e| panic!("revoke({target:?}) failed: {e}"))
}

/// Every token matching `query`, following the cursors page by page.
pub(super) async fn must_list<S: TokenStore + ?Sized>(store: &S, query: &TokenQuery) -> Vec<Token> {
    let mut query = query.clone();
    let mut all = Vec::new();
    loop {
        let page = store
            .list(&query)
            .await
            .unwrap_or_else(|e| panic!("list({query:?}) failed: {e}"));
        assert!(
            page.tokens.len() <= query.limit(),
            "list returned {} tokens for a page size of {}",
            page.tokens.len(),
            query.limit()
        );
        let empty = page.tokens.is_empty();
        all.extend(page.tokens);
        match page.next {
            Some(next) => {
                assert!(
                    !empty && query.after() != Some(next),
                    "list returned an empty page or the same cursor again ({next}): paging would never end"
                );
                query = query.clone().with_after(next);
            }
            None => return all,
        }
    }
}

pub(super) async fn list_ids<S: TokenStore + ?Sized>(
    store: &S,
    query: &TokenQuery,
) -> Vec<TokenId> {
    ids(&must_list(store, query).await)
}

pub(super) async fn redeem<S: TokenStore + ?Sized>(
    store: &S,
    fx: &Fixture,
    token: &Token,
    device: &DeviceId,
    now: DateTime<Utc>,
    leeway: Leeway,
) -> Result<Enrollment, RedeemError> {
    let request = RedeemRequest {
        token: fx.verified(token),
        device,
        now,
        leeway,
    };
    store.redeem(&request).await
}

#[track_caller]
pub(super) fn enrolled(result: Result<Enrollment, RedeemError>, what: &str) -> Enrollment {
    match result {
        Ok(enrollment) => enrollment,
        Err(e) => panic!("{what}: expected an enrollment, got error: {e}"),
    }
}

#[track_caller]
pub(super) fn rejected(result: Result<Enrollment, RedeemError>, what: &str) -> Rejection {
    match result {
        Err(RedeemError::Rejected(rejection)) => rejection,
        Err(e) => panic!("{what}: expected a rejection, but the store failed: {e}"),
        Ok(e) => panic!("{what}: expected a rejection, got an enrollment: {e:?}"),
    }
}

#[track_caller]
pub(super) fn assert_enrollment_matches(e: &Enrollment, token: &Token, what: &str) {
    assert_eq!(e.token_id, token.id(), "{what}: enrollment token id");
    assert_eq!(
        e.organization(),
        token.organization(),
        "{what}: organization"
    );
    assert_eq!(e.group(), token.group(), "{what}: group");
    assert_eq!(e.policies(), token.policies(), "{what}: policies");
    assert_eq!(&e.metadata, token.metadata(), "{what}: metadata");
    assert_eq!(e.limit, token.usage_limit(), "{what}: usage limit");
}
