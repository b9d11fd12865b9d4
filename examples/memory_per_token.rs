//! Measures what a `MemoryStore` costs per token at 1,000,000 tokens, with a counting
//! global allocator: the live heap bytes the store holds, divided by the token count.
//!
//! Run: `cargo run --release --example memory_per_token [TOKENS]`. Exits non-zero when a
//! token without metadata costs more than 320 bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use onboarding_token::chrono::Utc;
use onboarding_token::rules::RedeemRequest;
use onboarding_token::{
    DeviceId, GroupId, Keyring, Leeway, MemoryStore, OrgId, PolicyId, SigningKey, SystemRng, Token,
    TokenId, TokenSpec, UsageLimit,
};

/// Counts live heap bytes (requested sizes: what the program asks for, before the
/// allocator's own per-block overhead).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the counter is a plain atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The bound a `MemoryStore` is held to, in heap bytes per token.
const TARGET: f64 = 320.0;

/// Fills a store with one token from `spec` per id (random ids, as issued) and returns it
/// with the live heap bytes it holds, per token. With `shared`, every token comes from one
/// specification (a batch, or a bulk row), so they share one assignment; without, each is
/// issued from a specification of its own (the same names, its own assignment).
fn fill(ids: &[TokenId], spec: &TokenSpec, key: &Keyring, shared: bool) -> (MemoryStore, f64) {
    let now = Utc::now();
    let before = LIVE.load(Relaxed);
    let store = MemoryStore::new();
    for &id in ids {
        let spec = if shared {
            spec.clone()
        } else {
            TokenSpec::new(spec.organization().clone(), spec.group().clone())
                .with_policies(spec.policies().iter().cloned())
                .with_usage_limit(spec.usage_limit())
        };
        let token = spec
            .into_token(id, key.active_key_id(), now, None)
            .expect("valid spec");
        store.insert_sync(token).expect("fresh id");
    }
    let bytes = LIVE.load(Relaxed) - before;
    (store, bytes as f64 / ids.len() as f64)
}

/// Redeems every token once from its own device and returns the live bytes added, per token.
fn redeem_all(store: &MemoryStore, ids: &[TokenId], key: &Keyring) -> f64 {
    let now = Utc::now();
    let before = LIVE.load(Relaxed);
    for (i, id) in ids.iter().enumerate() {
        let token = key
            .verify_str(key.sign(id).expose_secret())
            .expect("own token");
        let device = DeviceId::new(format!("SN-{i:010}")).expect("device id");
        let request = RedeemRequest {
            token,
            device: &device,
            now,
            leeway: Leeway::ZERO,
        };
        store.redeem_sync(&request).expect("redeems");
    }
    let bytes = LIVE.load(Relaxed) - before;
    bytes as f64 / ids.len() as f64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1_000_000,
    };
    let mut rng = SystemRng::default();
    let keyring = Keyring::new(SigningKey::generate(&mut rng));
    let ids: Vec<TokenId> = (0..n).map(|_| TokenId::generate(&mut rng)).collect();
    let bare = TokenSpec::new(OrgId::new("acme")?, GroupId::new("emea/berlin")?)
        .with_usage_limit(UsageLimit::Once);
    let one_policy = bare.clone().with_policies([PolicyId::new("wifi-corp")?]);
    let two_policies = bare
        .clone()
        .with_policies([PolicyId::new("wifi-corp")?, PolicyId::new("vpn-always-on")?]);

    println!("MemoryStore with {n} single-use tokens, no metadata, no description");
    println!(
        "(Token record {} bytes, a kept redemption {} bytes; heap bytes as requested, before",
        std::mem::size_of::<Token>(),
        std::mem::size_of::<onboarding_token::Redemption>(),
    );
    println!("the allocator's own per-block overhead)");
    let mut measured = Vec::new();
    for (shared, how) in [
        (true, "from one specification (a batch or a bulk row)"),
        (false, "each from its own specification (issued one by one)"),
    ] {
        println!("tokens {how}:");
        for (label, spec) in [
            ("no policies", &bare),
            ("1 policy", &one_policy),
            ("2 policies", &two_policies),
        ] {
            let (store, per_token) = fill(&ids, spec, &keyring, shared);
            println!("  {label:<12} {per_token:7.1} bytes/token");
            if shared && label == "1 policy" {
                let redeemed = redeem_all(&store, &ids, &keyring);
                println!(
                    "  {:<12} {redeemed:+7.1} bytes/token once each is redeemed (its record and the device id it keeps)",
                    ""
                );
            }
            measured.push(per_token);
            drop(store);
        }
    }
    let worst = measured.iter().copied().fold(0.0, f64::max);
    println!("target: at most {TARGET} bytes/token; the largest measured is {worst:.1}");
    if worst > TARGET {
        return Err(format!("{worst:.1} bytes/token is above the {TARGET} target").into());
    }
    Ok(())
}
