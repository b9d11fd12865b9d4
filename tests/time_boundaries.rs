//! Validity windows at their exact edges, through the service on a `ManualClock`, on every
//! backend: exactly at not-before and exactly at expiry, with and without leeway; a clock
//! that moves backwards (an expired token becomes redeemable again, as SECURITY.md says);
//! replays across the edges; which rejection wins at an edge; and window edges finer than a
//! microsecond.
//!
//! The window is `[not_before - leeway, expires_at + leeway)`. Statuses are checked both
//! through `inspect` (computed in Rust) and through `list` with a status filter (computed by
//! the backend, in SQL for the SQL stores).
//!
//! Backends: memory always; SQLite with feature `sqlite`; PostgreSQL (both redemption
//! strategies) with feature `postgres` and `DATABASE_URL` (without it those tests fail,
//! saying so).

mod support;

use chrono::{DateTime, TimeDelta, Utc};
use onboarding_token::store::RevokeTarget;
use onboarding_token::*;
use support::fixture::{dev as device, keyring, t0};

fn us(n: i64) -> TimeDelta {
    TimeDelta::microseconds(n)
}

/// The window used throughout: opens an hour after t0, closes a day later.
fn nb() -> DateTime<Utc> {
    t0() + TimeDelta::hours(1)
}

fn exp() -> DateTime<Utc> {
    nb() + TimeDelta::days(1)
}

const LEEWAY: TimeDelta = TimeDelta::seconds(30);

struct Case<S: TokenStore> {
    service: Onboarding<S, ManualClock>,
    clock: ManualClock,
}

impl<S: TokenStore> Case<S> {
    fn new(store: S, leeway: Leeway) -> Self {
        let clock = ManualClock::new(t0());
        let service = Onboarding::new(keyring(*b"time", [3; 32]), store)
            .with_clock(clock.clone())
            .with_leeway(leeway);
        Self { service, clock }
    }

    /// Issues a token (at the clock's current time) with the window and `limit`.
    async fn issue(
        &self,
        not_before: DateTime<Utc>,
        expiry: DateTime<Utc>,
        limit: u32,
    ) -> (TokenId, String) {
        let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap())
            .with_not_before(not_before)
            .with_expiry(ExpirySpec::At(expiry))
            .with_usage_limit(UsageLimit::limited(limit).unwrap());
        let issued = self.service.issue(spec).await.unwrap();
        (issued.token.id(), issued.secret.expose_secret().to_owned())
    }

    async fn redeem_at(
        &self,
        at: DateTime<Utc>,
        text: &str,
        device: &DeviceId,
    ) -> Result<Enrollment, Rejection> {
        self.clock.set(at);
        self.service
            .redeem(text, device)
            .await
            .map_err(|e| match e {
                RedeemError::Rejected(r) => r,
                other => panic!("store failure: {other:?}"),
            })
    }

    async fn uses(&self, id: TokenId) -> u64 {
        self.service.get(id).await.unwrap().unwrap().uses()
    }

    /// The status at `at`, through `inspect` and through every `list` status filter.
    async fn assert_status(&self, at: DateTime<Utc>, text: &str, id: TokenId, expected: Status) {
        self.clock.set(at);
        let (_, status) = self.service.inspect(text).await.unwrap();
        assert_eq!(status, expected, "inspect at {at}");
        for s in Status::ALL {
            let page = self
                .service
                .list(&self.service.query().with_status(s))
                .await
                .unwrap();
            let listed = page.tokens.iter().any(|t| t.id() == id);
            assert_eq!(
                listed,
                s == expected,
                "list --status {s} at {at} (expected {expected})"
            );
        }
    }
}

#[track_caller]
fn assert_not_yet_valid(r: Result<Enrollment, Rejection>, at: DateTime<Utc>) {
    match r {
        Err(Rejection::NotYetValid { not_before, now }) => {
            assert_eq!(not_before, nb());
            assert_eq!(now, at);
        }
        other => panic!("expected not yet valid at {at}, got {other:?}"),
    }
}

#[track_caller]
fn assert_expired(r: Result<Enrollment, Rejection>, at: DateTime<Utc>) {
    match r {
        Err(Rejection::Expired { expires_at, now }) => {
            assert_eq!(expires_at, exp());
            assert_eq!(now, at);
        }
        other => panic!("expected expired at {at}, got {other:?}"),
    }
}

/// Exactly at not-before the token opens; a microsecond earlier it does not, and the
/// refusal consumes nothing.
async fn not_before_edge<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    let (id, text) = case.issue(nb(), exp(), 5).await;
    let d = device("a");
    case.assert_status(nb() - us(1), &text, id, Status::Pending)
        .await;
    assert_not_yet_valid(case.redeem_at(nb() - us(1), &text, &d).await, nb() - us(1));
    assert_eq!(case.uses(id).await, 0);
    case.assert_status(nb(), &text, id, Status::Active).await;
    let e = case.redeem_at(nb(), &text, &d).await.unwrap();
    assert_eq!((e.uses, e.replay, e.redeemed_at), (1, false, nb()));
}

/// A microsecond before expiry the token works; exactly at expiry it is expired.
async fn expiry_edge<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    let (id, text) = case.issue(nb(), exp(), 5).await;
    case.assert_status(exp() - us(1), &text, id, Status::Active)
        .await;
    let e = case
        .redeem_at(exp() - us(1), &text, &device("a"))
        .await
        .unwrap();
    assert_eq!(e.uses, 1);
    case.assert_status(exp(), &text, id, Status::Expired).await;
    assert_expired(case.redeem_at(exp(), &text, &device("b")).await, exp());
    assert_eq!(case.uses(id).await, 1);
    case.assert_status(exp() + TimeDelta::days(365), &text, id, Status::Expired)
        .await;
}

/// With leeway L the window is `[not_before - L, expires_at + L)`, to the microsecond.
async fn leeway_edges<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::new(LEEWAY).unwrap());
    let (id, text) = case.issue(nb(), exp(), 5).await;
    let opens = nb() - LEEWAY;
    let closes = exp() + LEEWAY;
    case.assert_status(opens - us(1), &text, id, Status::Pending)
        .await;
    assert_not_yet_valid(
        case.redeem_at(opens - us(1), &text, &device("a")).await,
        opens - us(1),
    );
    case.assert_status(opens, &text, id, Status::Active).await;
    assert_eq!(
        case.redeem_at(opens, &text, &device("a"))
            .await
            .unwrap()
            .uses,
        1
    );
    // At the nominal expiry and until expiry + L the token still works.
    case.assert_status(exp(), &text, id, Status::Active).await;
    assert_eq!(
        case.redeem_at(exp(), &text, &device("b"))
            .await
            .unwrap()
            .uses,
        2
    );
    case.assert_status(closes - us(1), &text, id, Status::Active)
        .await;
    assert_eq!(
        case.redeem_at(closes - us(1), &text, &device("c"))
            .await
            .unwrap()
            .uses,
        3
    );
    case.assert_status(closes, &text, id, Status::Expired).await;
    assert_expired(case.redeem_at(closes, &text, &device("d")).await, closes);
    assert_eq!(case.uses(id).await, 3);
    // The largest leeway is one day; more is refused.
    assert!(Leeway::new(TimeDelta::days(1)).is_some());
    assert!(Leeway::new(TimeDelta::days(1) + us(1)).is_none());
    assert!(Leeway::new(-us(1)).is_none());
}

/// A clock that moves backwards: an expired token becomes redeemable again until the clock
/// catches up (SECURITY.md, "Time"), and an open token becomes not-yet-valid again.
async fn clock_backwards<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    let (id, text) = case.issue(nb(), exp(), 5).await;
    let late = exp() + TimeDelta::hours(1);
    assert_expired(case.redeem_at(late, &text, &device("a")).await, late);
    case.assert_status(late, &text, id, Status::Expired).await;
    // The clock jumps back before the expiry: the token works again (documented).
    let back = exp() - TimeDelta::minutes(5);
    case.assert_status(back, &text, id, Status::Active).await;
    let e = case.redeem_at(back, &text, &device("a")).await.unwrap();
    assert_eq!((e.uses, e.redeemed_at), (1, back));
    // Further back, before not-before: pending again.
    let before = nb() - TimeDelta::minutes(5);
    case.assert_status(before, &text, id, Status::Pending).await;
    assert_not_yet_valid(case.redeem_at(before, &text, &device("b")).await, before);
    // And forward again: expired again, nothing more consumed.
    assert_expired(case.redeem_at(late, &text, &device("b")).await, late);
    assert_eq!(case.uses(id).await, 1);
    // The redemption keeps the (earlier) time it was made at.
    let records = case.service.redemptions(id).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].redeemed_at, back);
}

/// The window is checked before the replay: a device that enrolled just before expiry is
/// refused at expiry (its enrollment stands; it just gets no second answer), and a replay
/// within the window returns the original enrollment.
async fn replays_across_the_edges<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    let (id, text) = case.issue(nb(), exp(), 1).await;
    let d = device("a");
    let first = case.redeem_at(nb(), &text, &d).await.unwrap();
    let replay = case.redeem_at(exp() - us(1), &text, &d).await.unwrap();
    assert!(replay.replay);
    assert_eq!(replay.redeemed_at, first.redeemed_at);
    assert_eq!(replay.uses, 1);
    assert_expired(case.redeem_at(exp(), &text, &d).await, exp());
    // A clock moved back before not-before refuses the replay as not yet valid.
    assert_not_yet_valid(case.redeem_at(nb() - us(1), &text, &d).await, nb() - us(1));
    // Back inside the window it replays again; another device finds it exhausted.
    assert!(case.redeem_at(nb(), &text, &d).await.unwrap().replay);
    assert!(matches!(
        case.redeem_at(nb(), &text, &device("b")).await,
        Err(Rejection::Exhausted { limit: 1 })
    ));
    assert_eq!(case.uses(id).await, 1);
    assert_eq!(case.service.redemptions(id).await.unwrap().len(), 1);
}

/// At an edge, revocation wins over the window, and the window wins over exhaustion.
async fn precedence_at_the_edges<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    // Exhausted, then at expiry: expired.
    let (id, text) = case.issue(nb(), exp(), 1).await;
    case.redeem_at(nb(), &text, &device("a")).await.unwrap();
    case.assert_status(exp() - us(1), &text, id, Status::Exhausted)
        .await;
    assert!(matches!(
        case.redeem_at(exp() - us(1), &text, &device("b")).await,
        Err(Rejection::Exhausted { .. })
    ));
    case.assert_status(exp(), &text, id, Status::Expired).await;
    assert_expired(case.redeem_at(exp(), &text, &device("b")).await, exp());
    // Revoked before it opened: revoked on both sides of both edges.
    case.clock.set(t0());
    let (id2, text2) = case.issue(nb(), exp(), 5).await;
    case.service
        .revoke(&RevokeTarget::Token(id2), "lost")
        .await
        .unwrap();
    for at in [nb() - us(1), nb(), exp() - us(1), exp()] {
        case.assert_status(at, &text2, id2, Status::Revoked).await;
        assert!(matches!(
            case.redeem_at(at, &text2, &device("c")).await,
            Err(Rejection::Revoked { .. })
        ));
    }
    assert_eq!(case.uses(id2).await, 0);
}

/// At issue: an expiry at the time of issue is refused, a microsecond later accepted; a
/// window of one microsecond works for exactly that microsecond.
async fn issue_time_edges<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    let org = || OrgId::new("acme").unwrap();
    let g = || GroupId::new("g").unwrap();
    let err = case
        .service
        .issue(TokenSpec::new(org(), g()).with_expiry(ExpirySpec::At(t0())))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AdminError::Spec(SpecError::ExpiresBeforeIssue { expires_at, issued_at })
            if expires_at == t0() && issued_at == t0()
    ));
    let err = case
        .service
        .issue(
            TokenSpec::new(org(), g())
                .with_not_before(nb())
                .with_expiry(ExpirySpec::At(nb())),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AdminError::Spec(SpecError::EmptyWindow { .. })
    ));
    let issued = case
        .service
        .issue(TokenSpec::new(org(), g()).with_expiry(ExpirySpec::At(t0() + us(1))))
        .await
        .unwrap();
    let text = issued.secret.expose_secret();
    assert!(case.redeem_at(t0(), text, &device("a")).await.is_ok());
    assert!(matches!(
        case.redeem_at(t0() + us(1), text, &device("b")).await,
        Err(Rejection::Expired { .. })
    ));
    // A window of one microsecond, opening in the future.
    let (id, text) = case.issue(nb(), nb() + us(1), 5).await;
    assert!(matches!(
        case.redeem_at(nb() - us(1), &text, &device("a")).await,
        Err(Rejection::NotYetValid { .. })
    ));
    assert!(case.redeem_at(nb(), &text, &device("a")).await.is_ok());
    assert!(matches!(
        case.redeem_at(nb() + us(1), &text, &device("b")).await,
        Err(Rejection::Expired { .. })
    ));
    assert_eq!(case.uses(id).await, 1);
    // Issued after the window opened: fine, and redeemable at once.
    case.clock.set(nb() + TimeDelta::hours(2));
    let (_, late) = case.issue(nb(), exp(), 1).await;
    assert!(
        case.redeem_at(nb() + TimeDelta::hours(2), &late, &device("z"))
            .await
            .is_ok()
    );
}

/// Window edges given with sub-microsecond precision behave the same on every backend (the
/// SQL stores keep microseconds): a window edge is taken at its microsecond, rounded down.
async fn sub_microsecond_edges<S: TokenStore>(store: S) {
    let case = Case::new(store, Leeway::ZERO);
    let nb_fine = nb() + TimeDelta::nanoseconds(500);
    let exp_fine = exp() + TimeDelta::nanoseconds(500);
    let spec = TokenSpec::new(OrgId::new("acme").unwrap(), GroupId::new("g").unwrap())
        .with_not_before(nb_fine)
        .with_expiry(ExpirySpec::At(exp_fine))
        .with_usage_limit(UsageLimit::limited(5).unwrap());
    let issued = case.service.issue(spec).await.unwrap();
    let (id, text) = (issued.token.id(), issued.secret.expose_secret().to_owned());
    // What the service hands back is what the store keeps.
    let stored = case.service.get(id).await.unwrap().unwrap();
    assert_eq!(
        stored.validity(),
        issued.token.validity(),
        "the record round-trips"
    );
    assert_eq!(stored.validity().not_before, Some(nb()));
    assert_eq!(stored.validity().expiry, Expiry::At(exp()));
    case.assert_status(nb() - us(1), &text, id, Status::Pending)
        .await;
    case.assert_status(nb(), &text, id, Status::Active).await;
    assert!(case.redeem_at(nb(), &text, &device("a")).await.is_ok());
    case.assert_status(exp() - us(1), &text, id, Status::Active)
        .await;
    case.assert_status(exp(), &text, id, Status::Expired).await;
    assert!(case.redeem_at(exp(), &text, &device("b")).await.is_err());
}

macro_rules! backend {
    ($name:ident, $store:expr) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn time_not_before_edge() {
                not_before_edge($store).await;
            }
            #[tokio::test]
            async fn time_expiry_edge() {
                expiry_edge($store).await;
            }
            #[tokio::test]
            async fn time_leeway_edges() {
                leeway_edges($store).await;
            }
            #[tokio::test]
            async fn time_clock_backwards() {
                clock_backwards($store).await;
            }
            #[tokio::test]
            async fn time_replays_across_the_edges() {
                replays_across_the_edges($store).await;
            }
            #[tokio::test]
            async fn time_precedence_at_the_edges() {
                precedence_at_the_edges($store).await;
            }
            #[tokio::test]
            async fn time_issue_time_edges() {
                issue_time_edges($store).await;
            }
            #[tokio::test]
            async fn time_sub_microsecond_edges() {
                sub_microsecond_edges($store).await;
            }
        }
    };
}

backend!(memory, MemoryStore::new());

#[cfg(feature = "sqlite")]
backend!(sqlite, support::sqlite::memory_store().await);

#[cfg(feature = "postgres")]
backend!(postgres, support::postgres::fresh_store().await);

#[cfg(feature = "postgres")]
backend!(
    postgres_locked,
    support::postgres::fresh_locked_store().await
);
