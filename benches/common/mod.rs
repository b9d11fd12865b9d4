//! What the benches share: the fixture (a keyring, token ids, device ids, one
//! specification), polling a ready future, and running work on several threads at once.
//! Each bench includes this module and uses a part of it.

#![allow(dead_code)]

pub mod targets;
pub mod threads;

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use onboarding_token::chrono::Utc;
use onboarding_token::{
    DeviceId, GroupId, Keyring, MemoryStore, Onboarding, OrgId, PolicyId, SigningKey, SystemRng,
    TokenId, TokenSpec, TokenString, UsageLimit,
};

/// New devices per unlimited token before `redeem_memory` moves on to the next token, so
/// every redemption consumes and the token's device index stays the size of a large site.
/// Also the size of a device pool: device `i % POOL` redeeming token `i / POOL` is new to
/// that token, and a pool of recently parsed ids sits in cache as a server's request does.
pub const DEVICES_PER_TOKEN: usize = 1_000;

/// Polls a future that is ready at once (every `MemoryStore` future is).
pub fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a MemoryStore future was not ready on its first poll"),
    }
}

/// splitmix64: cheap distinct token ids for fixtures (the ids' randomness is not measured).
pub struct IdSource(pub u64);

impl IdSource {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn token_id(&mut self) -> TokenId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        TokenId::from_bytes(bytes)
    }
}

/// Device serial numbers, unique across the whole run.
pub struct Devices(pub Cell<u64>);

impl Devices {
    pub fn take(&self, n: u64) -> Vec<DeviceId> {
        let start = self.0.get();
        self.0.set(start + n);
        (start..start + n)
            .map(|i| DeviceId::new(format!("SN-{i:010}")).expect("valid device id"))
            .collect()
    }
}

pub struct Fixture {
    pub keyring: Keyring,
    /// The active key's secret (for the floor and the JWT).
    pub secret: [u8; SigningKey::LEN],
    pub ids: Cell<IdSource>,
    pub devices: Devices,
    pub org: OrgId,
    pub group: GroupId,
    pub policies: [PolicyId; 2],
}

impl Fixture {
    pub fn new() -> Self {
        let mut rng = SystemRng::default();
        let key = SigningKey::generate(&mut rng);
        Self {
            secret: *key.expose_secret(),
            keyring: Keyring::new(key),
            ids: Cell::new(IdSource(0x5EED)),
            devices: Devices(Cell::new(0)),
            org: OrgId::new("acme").expect("org"),
            group: GroupId::new("emea/berlin").expect("group"),
            policies: [
                PolicyId::new("wifi-corp").expect("policy"),
                PolicyId::new("vpn-always-on").expect("policy"),
            ],
        }
    }

    pub fn spec(&self, limit: UsageLimit) -> TokenSpec {
        TokenSpec::new(self.org.clone(), self.group.clone())
            .with_policies(self.policies.clone())
            .with_usage_limit(limit)
    }

    /// Stores `n` tokens with `limit` in `store` and returns their strings.
    pub fn mint(&self, store: &MemoryStore, n: usize, limit: UsageLimit) -> Vec<TokenString> {
        self.mint_spec(store, n, &self.spec(limit))
    }

    /// Stores `n` tokens from `spec` in `store` and returns their strings.
    pub fn mint_spec(&self, store: &MemoryStore, n: usize, spec: &TokenSpec) -> Vec<TokenString> {
        let now = Utc::now();
        let mut ids = self.ids.replace(IdSource(0));
        let out = (0..n)
            .map(|_| {
                let id = ids.token_id();
                let token = spec
                    .clone()
                    .into_token(id, self.keyring.active_key_id(), now, None)
                    .expect("valid spec");
                store.insert_sync(token).expect("fresh id");
                self.keyring.sign(&id)
            })
            .collect();
        self.ids.set(ids);
        out
    }

    pub fn service(&self, store: MemoryStore) -> Onboarding<MemoryStore> {
        Onboarding::new(self.keyring.clone(), store)
    }
}

/// The strings as a server holds them: text out of a request, as the floor's input is
/// (`TokenString::expose_secret` checks UTF-8 on every call, which is no part of redeeming).
pub fn texts(tokens: &[TokenString]) -> Vec<String> {
    tokens
        .iter()
        .map(|t| t.expose_secret().to_owned())
        .collect()
}

/// Runs `per_thread` on `threads` threads and returns the wall time from a common start
/// until the last one finishes.
///
/// The calling thread does the first share itself and the others run on spawned threads
/// that spin, not sleep, until the start, so every thread is running when the clock
/// starts. (With a sleeping barrier, waking the other virtual CPU took milliseconds on the
/// benchmark VM: a two-thread run of 50,000 redemptions came out 1.16 × one thread, of
/// 700,000 1.92 ×.) Meant for no more threads than cores.
pub fn parallel<T: Sync>(work: &[T], threads: usize, per_thread: impl Fn(&T) + Sync) -> Duration {
    let (first, rest) = work[..threads.min(work.len())]
        .split_first()
        .expect("work for one thread at least");
    let ready = AtomicUsize::new(0);
    let go = AtomicBool::new(false);
    std::thread::scope(|s| {
        let helpers: Vec<_> = rest
            .iter()
            .map(|w| {
                let (ready, go, per_thread) = (&ready, &go, &per_thread);
                s.spawn(move || {
                    ready.fetch_add(1, Ordering::AcqRel);
                    while !go.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                    per_thread(w);
                })
            })
            .collect();
        while ready.load(Ordering::Acquire) < helpers.len() {
            std::thread::yield_now();
        }
        let start = Instant::now();
        go.store(true, Ordering::Release);
        per_thread(first);
        for h in helpers {
            h.join().expect("worker");
        }
        start.elapsed()
    })
}
