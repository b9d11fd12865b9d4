//! The conformance suite against [`MemoryStore`]: one test per behaviour, named
//! `memory::<case>` (and `memory_one_shard::<case>`). Run with
//! `cargo test --features testing --test conformance_memory`.

use onboarding_token::MemoryStore;

onboarding_token::conformance_tests!(memory, async { MemoryStore::new() });

// A single shard serialises every operation through one lock: the same behaviours must hold.
onboarding_token::conformance_tests!(memory_one_shard, async { MemoryStore::with_shards(1) });

/// The suite must fail for stores that break the contract: each deliberately broken store
/// below is caught by the case aimed at its bug.
mod suite_catches_bugs {
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;

    use onboarding_token::rules::RedeemRequest;
    use onboarding_token::store::{PageCursor, RevokeTarget, TokenPage, TokenQuery, TokenStore};
    use onboarding_token::*;

    #[derive(Clone, Copy, PartialEq)]
    enum Bug {
        /// No bug: the control, which must pass every case below.
        None,
        /// Group filter by string prefix: `emea` also lists `emeax`.
        GroupByPrefix,
        /// Paging compares creation times only, dropping ties across pages.
        CursorIgnoresId,
        /// Redemption ignores the leeway.
        IgnoresLeeway,
        /// Reports a token exhausted one use early (limits above 2).
        ExhaustsEarly,
    }

    /// MemoryStore with its listing re-implemented (filters, order, paging), and one bug.
    struct Broken(MemoryStore, Bug);

    impl TokenStore for Broken {
        async fn insert(&self, token: Token) -> Result<(), StoreError> {
            self.0.insert(token).await
        }
        async fn insert_batch(&self, tokens: Vec<Token>) -> Result<(), StoreError> {
            self.0.insert_batch(tokens).await
        }
        async fn get(&self, id: TokenId) -> Result<Option<Token>, StoreError> {
            self.0.get(id).await
        }
        async fn list(&self, query: &TokenQuery) -> Result<TokenPage, StoreError> {
            // The same query without the group filter and the cursor, which this store
            // applies itself (wrongly, for some bugs).
            let mut unfiltered = TokenQuery::new(query.now()).with_leeway(query.leeway());
            if let Some(o) = query.organization() {
                unfiltered = unfiltered.with_organization(o.clone());
            }
            if let Some(p) = query.policy() {
                unfiltered = unfiltered.with_policy(p.clone());
            }
            if let Some(s) = query.status() {
                unfiltered = unfiltered.with_status(s);
            }
            if let Some(b) = query.batch() {
                unfiltered = unfiltered.with_batch(b);
            }
            // The suite's cases store far fewer than MAX_LIMIT tokens.
            let all = self
                .0
                .list(&unfiltered.with_limit(TokenQuery::MAX_LIMIT))
                .await?;
            let in_group = |t: &Token| match (query.group(), self.1) {
                (None, _) => true,
                (Some(g), Bug::GroupByPrefix) => t.group().as_str().starts_with(g.as_str()),
                (Some(g), _) => t.group().is_within(g),
            };
            let after_cursor = |t: &Token| match (query.after(), self.1) {
                (None, _) => true,
                (Some(c), Bug::CursorIgnoresId) => t.created_at() > c.created_at,
                (Some(c), _) => PageCursor::after(t) > c,
            };
            let mut tokens: Vec<Token> = all
                .tokens
                .into_iter()
                .filter(|t| in_group(t) && after_cursor(t))
                .collect();
            tokens.sort_by_key(PageCursor::after);
            tokens.truncate(query.limit() + 1);
            Ok(TokenPage::from_sorted(tokens, query.limit()))
        }
        async fn redeem(&self, request: &RedeemRequest<'_>) -> Result<Enrollment, RedeemError> {
            let mut request = *request;
            if self.1 == Bug::IgnoresLeeway {
                request.leeway = Leeway::ZERO;
            }
            if self.1 == Bug::ExhaustsEarly {
                if let Some(t) = self.0.get(request.token.token_id()).await? {
                    let max = t.usage_limit().max_uses().unwrap_or(u32::MAX);
                    if max > 2 && t.uses() + 1 == u64::from(max) {
                        return Err(Rejection::Exhausted { limit: max }.into());
                    }
                }
            }
            self.0.redeem(&request).await
        }
        async fn revoke(
            &self,
            target: &RevokeTarget,
            revocation: &Revocation,
        ) -> Result<u64, StoreError> {
            self.0.revoke(target, revocation).await
        }
        async fn redemptions(&self, id: TokenId) -> Result<Vec<Redemption>, StoreError> {
            self.0.redemptions(id).await
        }
    }

    /// Whether `case` fails (panics) on a store with `bug`.
    fn fails<Fut: Future<Output = ()>>(bug: Bug, case: fn(Arc<Broken>) -> Fut) -> bool {
        catch_unwind(AssertUnwindSafe(|| {
            testing::run_case(async move { Broken(MemoryStore::new(), bug) }, case)
        }))
        .is_err()
    }

    #[test]
    fn control_without_bug_passes() {
        assert!(!fails(Bug::None, testing::list_filters));
        assert!(!fails(Bug::None, testing::list_paging));
        assert!(!fails(Bug::None, testing::leeway_boundaries));
        assert!(!fails(Bug::None, testing::redeem_to_exhaustion));
        assert!(!fails(Bug::None, testing::concurrent_redeem_exact));
    }

    #[test]
    fn group_filter_by_prefix_is_caught() {
        assert!(fails(Bug::GroupByPrefix, testing::list_filters));
    }

    #[test]
    fn cursor_without_id_is_caught() {
        assert!(fails(Bug::CursorIgnoresId, testing::list_paging));
    }

    #[test]
    fn ignored_leeway_is_caught() {
        assert!(fails(Bug::IgnoresLeeway, testing::leeway_boundaries));
    }

    #[test]
    fn early_exhaustion_is_caught() {
        assert!(fails(Bug::ExhaustsEarly, testing::redeem_to_exhaustion));
    }
}
