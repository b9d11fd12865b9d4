//! The model-based test: random operation sequences applied to a store and to a pure model
//! of the contract, every result compared.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};

use crate::core::enrollment::{Enrollment, Redemption};
use crate::core::error::{RedeemError, Rejection, StoreError};
use crate::core::name::DeviceId;
use crate::core::rules::{self, Decision, Leeway, RedeemRequest};
use crate::core::token::{
    BatchId, ExpirySpec, Revocation, Status, Token, TokenId, TokenSpec, UsageLimit,
};
use crate::store::{PageCursor, RevokeTarget, TokenQuery, TokenStore};
use crate::testing::fixtures::{
    Fixture, device, group, leeway, limited, org, policy, random_id, revocation, secs, t0,
};

const ORGS: [&str; 2] = ["acme", "globex"];
const GROUPS: [&str; 6] = [
    "emea",
    "emea/berlin",
    "emea/berlin/mitte",
    "emeax",
    "lab_1",
    "labX1",
];
const POLICIES: [&str; 2] = ["wifi", "vpn"];
const REASONS: [&str; 3] = ["lost", "leaked", "Gerät 📵"];
const MODEL_LEEWAY: i64 = 30;

#[derive(Debug, Clone, Copy)]
enum Limit {
    Once,
    Limited(u32),
    Unlimited,
}

/// What to issue; instants are whole seconds relative to the model clock, so window
/// boundaries are hit exactly.
#[derive(Debug, Clone)]
struct Issue {
    org: usize,
    group: usize,
    policy: Option<usize>,
    limit: Limit,
    /// Seconds from now to `not_before`.
    not_before: Option<i64>,
    /// Seconds from the window's opening to the expiry; `None` never expires.
    lifetime: Option<i64>,
}

/// A token the operation refers to: the `n`-th stored token (modulo their number), or one
/// that was never stored.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Stored(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum Clash {
    None,
    /// The batch also carries the id of a stored token.
    Stored(usize),
    /// The batch carries its first id twice.
    Internal,
}

#[derive(Debug, Clone)]
enum Target {
    Token(Pick),
    Group {
        org: usize,
        group: usize,
    },
    /// The `n`-th batch attempted (stored or not), or an unknown batch.
    Batch(Option<usize>),
}

#[derive(Debug, Clone)]
enum Op {
    Issue(Issue),
    IssueBatch(Vec<Issue>, Clash),
    /// Insert a record with a stored token's id and other content.
    InsertDuplicate(Pick),
    Redeem {
        token: Pick,
        device: u8,
        leeway: bool,
        wrong_key: bool,
    },
    /// Devices `first..first + count`, one after the other.
    RedeemMany {
        token: Pick,
        first: u8,
        count: u8,
    },
    Revoke(Target, usize),
    /// Move the clock by this many seconds (negative: back).
    Advance(i64),
    Get(Pick),
    List {
        org: Option<usize>,
        group: Option<usize>,
        policy: Option<usize>,
        status: Option<Status>,
        batch: Option<usize>,
        leeway: bool,
        page: usize,
    },
    Redemptions(Pick),
}

fn issue_strategy() -> impl Strategy<Value = Issue> {
    let limit = prop_oneof![
        Just(Limit::Once),
        (2u32..5).prop_map(Limit::Limited),
        Just(Limit::Unlimited),
    ];
    (
        0..ORGS.len(),
        0..GROUPS.len(),
        proptest::option::of(0..POLICIES.len()),
        limit,
        proptest::option::weighted(0.3, -30i64..150),
        proptest::option::weighted(0.8, 1i64..300),
    )
        .prop_map(|(org, group, policy, limit, not_before, lifetime)| Issue {
            org,
            group,
            policy,
            limit,
            not_before,
            lifetime,
        })
}

fn pick_strategy() -> impl Strategy<Value = Pick> {
    prop_oneof![9 => (0usize..64).prop_map(Pick::Stored), 1 => Just(Pick::Unknown)]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let clash = prop_oneof![
        3 => Just(Clash::None),
        1 => (0usize..64).prop_map(Clash::Stored),
        1 => Just(Clash::Internal),
    ];
    let target = prop_oneof![
        3 => pick_strategy().prop_map(Target::Token),
        2 => (0..ORGS.len(), 0..GROUPS.len()).prop_map(|(org, group)| Target::Group { org, group }),
        2 => proptest::option::weighted(0.9, 0usize..16).prop_map(Target::Batch),
    ];
    let list = (
        proptest::option::weighted(0.3, 0..ORGS.len()),
        proptest::option::weighted(0.5, 0..GROUPS.len()),
        proptest::option::weighted(0.2, 0..POLICIES.len()),
        proptest::option::weighted(0.5, proptest::sample::select(Status::ALL.to_vec())),
        proptest::option::weighted(0.2, 0usize..16),
        proptest::bool::weighted(0.4),
        1usize..8,
    )
        .prop_map(
            |(org, group, policy, status, batch, leeway, page)| Op::List {
                org,
                group,
                policy,
                status,
                batch,
                leeway,
                page,
            },
        );
    prop_oneof![
        4 => issue_strategy().prop_map(Op::Issue),
        1 => (proptest::collection::vec(issue_strategy(), 1..5), clash)
            .prop_map(|(issues, clash)| Op::IssueBatch(issues, clash)),
        1 => pick_strategy().prop_map(Op::InsertDuplicate),
        10 => (pick_strategy(), 0u8..6, proptest::bool::weighted(0.4), proptest::bool::weighted(0.05))
            .prop_map(|(token, device, leeway, wrong_key)| Op::Redeem { token, device, leeway, wrong_key }),
        1 => (pick_strategy(), 0u8..32, 1u8..24)
            .prop_map(|(token, first, count)| Op::RedeemMany { token, first, count }),
        2 => (target, 0..REASONS.len()).prop_map(|(t, r)| Op::Revoke(t, r)),
        4 => prop_oneof![5 => 0i64..40, 1 => 40i64..400, 1 => -60i64..0].prop_map(Op::Advance),
        1 => pick_strategy().prop_map(Op::Get),
        2 => list,
        1 => pick_strategy().prop_map(Op::Redemptions),
    ]
}

/// A store failure, compared by variant and id.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Duplicate(TokenId),
    NotFound(TokenId),
    /// Any other error, which the model never produces: always a mismatch.
    Other(String),
}

impl From<&StoreError> for Failure {
    fn from(e: &StoreError) -> Self {
        match e {
            StoreError::Duplicate(id) => Failure::Duplicate(*id),
            StoreError::NotFound(id) => Failure::NotFound(*id),
            other => {
                let mut text = other.to_string();
                let mut source = std::error::Error::source(other);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                Failure::Other(text)
            }
        }
    }
}

/// The observable result of one operation.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done,
    Count(u64),
    Enrolled(Enrollment),
    Rejected(Rejection),
    Failed(Failure),
    Found(Option<Token>),
    Listed(Vec<Token>),
    Redemptions(Vec<Redemption>),
}

fn outcome_of<T>(result: Result<T, StoreError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match result {
        Ok(v) => ok(v),
        Err(e) => Outcome::Failed(Failure::from(&e)),
    }
}

fn redeem_outcome(result: Result<Enrollment, RedeemError>) -> Outcome {
    match result {
        Ok(e) => Outcome::Enrolled(e),
        Err(RedeemError::Rejected(r)) => Outcome::Rejected(r),
        Err(RedeemError::Store(e)) => Outcome::Failed(Failure::from(&e)),
    }
}

/// The pure model: records and their redemptions in a `HashMap`, redeemed through the
/// core's rules.
#[derive(Default)]
struct Model {
    tokens: HashMap<TokenId, (Token, Vec<Redemption>)>,
}

impl Model {
    fn insert(&mut self, token: Token) -> Outcome {
        if self.tokens.contains_key(&token.id()) {
            return Outcome::Failed(Failure::Duplicate(token.id()));
        }
        self.tokens.insert(token.id(), (token, Vec::new()));
        Outcome::Done
    }

    fn insert_batch(&mut self, tokens: Vec<Token>) -> Outcome {
        let mut seen = BTreeSet::new();
        for t in &tokens {
            if !seen.insert(t.id()) || self.tokens.contains_key(&t.id()) {
                return Outcome::Failed(Failure::Duplicate(t.id()));
            }
        }
        for t in tokens {
            self.tokens.insert(t.id(), (t, Vec::new()));
        }
        Outcome::Done
    }

    fn redeem(&mut self, request: &RedeemRequest<'_>) -> Outcome {
        let id = request.token.token_id();
        let Some((token, redemptions)) = self.tokens.get_mut(&id) else {
            return Outcome::Rejected(Rejection::NotFound { id });
        };
        let prior = redemptions
            .iter()
            .find(|r| r.device == *request.device)
            .map(|r| r.redeemed_at);
        match rules::redeem_in_place(token, request, prior) {
            Ok((decision, enrollment)) => {
                if let Decision::Consume { .. } = decision {
                    redemptions.push(Redemption {
                        device: request.device.clone(),
                        redeemed_at: request.now,
                    });
                }
                Outcome::Enrolled(enrollment)
            }
            Err(r) => Outcome::Rejected(r),
        }
    }

    fn revoke(&mut self, target: &RevokeTarget, revocation: &Revocation) -> Outcome {
        let revocation = Arc::new(revocation.clone());
        if let RevokeTarget::Token(id) = target {
            return match self.tokens.get_mut(id) {
                Some((token, _)) => Outcome::Count(u64::from(token.revoke(&revocation))),
                None => Outcome::Failed(Failure::NotFound(*id)),
            };
        }
        let count = self
            .tokens
            .values_mut()
            .filter(|(t, _)| target.matches(t))
            .map(|(t, _)| u64::from(t.revoke(&revocation)))
            .sum();
        Outcome::Count(count)
    }

    fn get(&self, id: TokenId) -> Outcome {
        Outcome::Found(self.tokens.get(&id).map(|(t, _)| t.clone()))
    }

    fn list(&self, query: &TokenQuery) -> Outcome {
        let mut tokens: Vec<Token> = self
            .tokens
            .values()
            .map(|(t, _)| t)
            .filter(|t| query.matches(t))
            .cloned()
            .collect();
        tokens.sort_by_key(PageCursor::after);
        Outcome::Listed(tokens)
    }

    fn redemptions(&self, id: TokenId) -> Outcome {
        match self.tokens.get(&id) {
            Some((_, redemptions)) => {
                let mut r = redemptions.clone();
                r.sort_by_key(|r| r.redeemed_at); // stable: ties keep redemption order
                Outcome::Redemptions(r)
            }
            None => Outcome::Failed(Failure::NotFound(id)),
        }
    }
}

/// Applies one operation sequence to a store and to the model side by side.
struct Harness<'s, S: ?Sized> {
    store: &'s S,
    model: Model,
    fx: Fixture,
    now: DateTime<Utc>,
    salt: [u8; 8],
    counter: u64,
    stored: Vec<TokenId>,
    batches: Vec<BatchId>,
}

impl<'s, S: TokenStore + ?Sized> Harness<'s, S> {
    fn new(store: &'s S) -> Self {
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&random_id().as_bytes()[..8]);
        Self {
            store,
            model: Model::default(),
            fx: Fixture::new(),
            now: t0() + TimeDelta::microseconds(123_456),
            salt,
            counter: 0,
            stored: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// Fresh ids: a random per-run salt and a counter, so runs never collide even on a
    /// shared store, and the sequence alone decides every outcome.
    fn next_bytes(&mut self) -> [u8; 16] {
        self.counter += 1;
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.salt);
        bytes[8..].copy_from_slice(&self.counter.to_be_bytes());
        bytes
    }

    fn unknown_id(&self) -> TokenId {
        let mut bytes = [0xff; 16];
        bytes[..8].copy_from_slice(&self.salt);
        TokenId::from_bytes(bytes)
    }

    fn pick(&self, pick: Pick) -> TokenId {
        match pick {
            Pick::Stored(n) if !self.stored.is_empty() => self.stored[n % self.stored.len()],
            _ => self.unknown_id(),
        }
    }

    fn build(&mut self, issue: &Issue, id: Option<TokenId>, batch: Option<BatchId>) -> Token {
        let now = self.now;
        let limit = match issue.limit {
            Limit::Once => UsageLimit::Once,
            Limit::Limited(n) => limited(n),
            Limit::Unlimited => UsageLimit::Unlimited,
        };
        let mut spec = TokenSpec::new(org(ORGS[issue.org]), group(GROUPS[issue.group]))
            .with_usage_limit(limit)
            .with_description(format!("model token {}", self.counter));
        if let Some(p) = issue.policy {
            spec = spec.with_policies([policy(POLICIES[p])]);
        }
        let mut opens = now;
        if let Some(offset) = issue.not_before {
            opens = now + secs(offset);
            spec = spec.with_not_before(opens);
        }
        spec = spec.with_expiry(match issue.lifetime {
            Some(l) => ExpirySpec::At(opens.max(now) + secs(l)),
            None => ExpirySpec::Never,
        });
        let id = id.unwrap_or_else(|| TokenId::from_bytes(self.next_bytes()));
        self.fx.issue_with(id, self.fx.active, spec, now, batch)
    }

    async fn list_all(&self, query: &TokenQuery) -> Outcome {
        let mut query = query.clone();
        let mut all = Vec::new();
        for _ in 0..=self.stored.len() + 1 {
            let page = match self.store.list(&query).await {
                Ok(page) => page,
                Err(e) => return Outcome::Failed(Failure::from(&e)),
            };
            if page.tokens.len() > query.limit() {
                return Outcome::Failed(Failure::Other(format!(
                    "a page of {} tokens for a page size of {}",
                    page.tokens.len(),
                    query.limit()
                )));
            }
            all.extend(page.tokens);
            match page.next {
                Some(next) => query = query.clone().with_after(next),
                None => return Outcome::Listed(all),
            }
        }
        Outcome::Failed(Failure::Other("paging did not end".into()))
    }

    async fn redeem(
        &mut self,
        id: TokenId,
        device: &DeviceId,
        leeway: bool,
        wrong_key: bool,
    ) -> Result<(), String> {
        let key = if wrong_key {
            self.fx.other
        } else {
            self.fx.active
        };
        let request = RedeemRequest {
            token: self.fx.verified_with(key, id),
            device,
            now: self.now,
            leeway: if leeway {
                self::leeway(MODEL_LEEWAY)
            } else {
                Leeway::ZERO
            },
        };
        let got = redeem_outcome(self.store.redeem(&request).await);
        let want = self.model.redeem(&request);
        compare(got, want)
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Issue(issue) => {
                let token = self.build(issue, None, None);
                let got = outcome_of(self.store.insert(token.clone()).await, |()| Outcome::Done);
                let want = self.model.insert(token.clone());
                compare(got, want)?;
                self.stored.push(token.id());
            }
            Op::IssueBatch(issues, clash) => {
                let batch = BatchId::from_bytes(self.next_bytes());
                self.batches.push(batch);
                let mut tokens: Vec<Token> = issues
                    .iter()
                    .map(|i| self.build(i, None, Some(batch)))
                    .collect();
                let clash_id = match clash {
                    Clash::None => None,
                    Clash::Stored(n) if !self.stored.is_empty() => {
                        Some(self.stored[n % self.stored.len()])
                    }
                    Clash::Stored(_) => None,
                    Clash::Internal => Some(tokens[0].id()),
                };
                if let Some(id) = clash_id {
                    let copy = self.build(&issues[0], Some(id), Some(batch));
                    tokens.push(copy);
                }
                let got = outcome_of(self.store.insert_batch(tokens.clone()).await, |()| {
                    Outcome::Done
                });
                let want = self.model.insert_batch(tokens.clone());
                compare(got, want.clone())?;
                if want == Outcome::Done {
                    self.stored.extend(tokens.iter().map(Token::id));
                }
            }
            Op::InsertDuplicate(pick) => {
                let id = self.pick(*pick);
                let issue = Issue {
                    org: 1,
                    group: 0,
                    policy: None,
                    limit: Limit::Unlimited,
                    not_before: None,
                    lifetime: None,
                };
                let token = self.build(&issue, Some(id), None);
                let got = outcome_of(self.store.insert(token.clone()).await, |()| Outcome::Done);
                let want = self.model.insert(token);
                compare(got, want.clone())?;
                if want == Outcome::Done {
                    self.stored.push(id);
                }
            }
            Op::Redeem {
                token,
                device,
                leeway,
                wrong_key,
            } => {
                let id = self.pick(*token);
                self.redeem(id, &self::device(device), *leeway, *wrong_key)
                    .await?;
            }
            Op::RedeemMany {
                token,
                first,
                count,
            } => {
                let id = self.pick(*token);
                for d in u32::from(*first)..u32::from(*first) + u32::from(*count) {
                    self.redeem(id, &self::device(d), false, false)
                        .await
                        .map_err(|e| format!("device {d}: {e}"))?;
                }
            }
            Op::Revoke(target, reason) => {
                let target = match target {
                    Target::Token(pick) => RevokeTarget::Token(self.pick(*pick)),
                    Target::Group { org: o, group: g } => RevokeTarget::Group {
                        organization: org(ORGS[*o]),
                        group: group(GROUPS[*g]),
                    },
                    Target::Batch(Some(n)) if !self.batches.is_empty() => {
                        RevokeTarget::Batch(self.batches[n % self.batches.len()])
                    }
                    Target::Batch(_) => RevokeTarget::Batch(BatchId::from_bytes([0xee; 16])),
                };
                let rev = revocation(self.now, REASONS[*reason]);
                let got = outcome_of(self.store.revoke(&target, &rev).await, Outcome::Count);
                let want = self.model.revoke(&target, &rev);
                compare(got, want)?;
            }
            Op::Advance(seconds) => self.now += secs(*seconds),
            Op::Get(pick) => {
                let id = self.pick(*pick);
                let got = outcome_of(self.store.get(id).await, Outcome::Found);
                compare(got, self.model.get(id))?;
            }
            Op::List {
                org: o,
                group: g,
                policy: p,
                status,
                batch,
                leeway,
                page,
            } => {
                let mut query = TokenQuery::new(self.now).with_limit(*page);
                if let Some(o) = o {
                    query = query.with_organization(org(ORGS[*o]));
                }
                if let Some(g) = g {
                    query = query.with_group(group(GROUPS[*g]));
                }
                if let Some(p) = p {
                    query = query.with_policy(policy(POLICIES[*p]));
                }
                if let Some(s) = status {
                    query = query.with_status(*s);
                }
                if let (Some(n), false) = (batch, self.batches.is_empty()) {
                    query = query.with_batch(self.batches[n % self.batches.len()]);
                }
                if *leeway {
                    query = query.with_leeway(self::leeway(MODEL_LEEWAY));
                }
                let got = self.list_all(&query).await;
                compare(got, self.model.list(&query))?;
            }
            Op::Redemptions(pick) => {
                let id = self.pick(*pick);
                let got = outcome_of(self.store.redemptions(id).await, Outcome::Redemptions);
                compare(got, self.model.redemptions(id))?;
            }
        }
        Ok(())
    }

    async fn run(mut self, ops: &[Op]) -> Result<(), String> {
        for (i, op) in ops.iter().enumerate() {
            if let Err(mismatch) = self.step(op).await {
                return Err(format!(
                    "step {i} ({op:?}) at {}:\n{mismatch}",
                    self.now
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ));
            }
        }
        Ok(())
    }
}

fn compare(got: Outcome, want: Outcome) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("store: {got:?}\nmodel: {want:?}"))
    }
}

/// Checks a backend against the pure model with `cases` random operation sequences.
///
/// Each case creates a fresh store with `factory`, then applies a random sequence of up to
/// 100 operations (issue tokens and batches with random limits and windows, redeem from
/// several devices including retries and wrong keys, revoke by id, group and batch, move the
/// clock forward and sometimes back, get, list with filters and small pages, read
/// redemptions, insert duplicates) to the store and to a pure model built on
/// [`rules::redeem_in_place`]. Every result must be equal.
///
/// On a mismatch it panics with the shrunk, minimal operation sequence, the step and both
/// results, and proptest saves the case next to the calling file
/// (`<file>.proptest-regressions`, replayed first on later runs: commit it). The
/// `PROPTEST_CASES` environment variable overrides `cases`.
///
/// Call it from a plain `#[test]` (it runs its own multi-threaded tokio runtime); the store
/// ids are salted per case, but give each case a fresh store anyway.
///
/// ```
/// use onboarding_token::{MemoryStore, testing};
/// testing::check_against_model(|| async { MemoryStore::new() }, 8);
/// ```
#[track_caller]
pub fn check_against_model<S, F, Fut>(factory: F, cases: u32)
where
    S: TokenStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.source_file = Some(std::panic::Location::caller().file());
    config.failure_persistence = Some(Box::new(FileFailurePersistence::WithSource(
        "proptest-regressions",
    )));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the model test could not start a tokio runtime");
    let mut runner = TestRunner::new(config);
    let strategy = proptest::collection::vec(op_strategy(), 1..100);
    let result = runner.run(&strategy, |ops| {
        runtime
            .block_on(async {
                let store = factory().await;
                Harness::new(&store).run(&ops).await
            })
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("the store disagrees with the model: {e}");
    }
}
