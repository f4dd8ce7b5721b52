//! `Math.random`, seeded per process.
//!
//! QuickJS seeds each context's `Math.random` from the clock when the context is made. A
//! context the zygote prepares before forking is inherited by every worker, state included, so
//! with QuickJS's own function every worker's first job would draw the same sequence. The
//! function installed here draws from one generator per process instead, which the worker
//! seeds from the kernel's random source right after the fork ([`reseed`]): two processes never
//! share a sequence, and two jobs in one process continue it rather than repeat it.
//!
//! The generator is xorshift64*, the one QuickJS itself uses, and the number is made the same
//! way (52 random mantissa bits), so the distribution code sees is unchanged. `Math.random` is
//! not meant for secrets; `crypto.getRandomValues` reads the kernel's source on every call.

use std::cell::Cell;

use rquickjs::{Ctx, Function, Object};

thread_local! {
    /// The generator's state; zero means not seeded yet.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Seeds this process's generator from the kernel's random source. The worker calls it first
/// thing after the fork; a process that never calls it is seeded on the first draw.
pub fn reseed() {
    STATE.with(|s| s.set(fresh_seed()));
}

/// Replaces `Math.random` in `ctx` (before the prelude freezes `Math`).
pub fn install(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    let math: Object = ctx.globals().get("Math")?;
    let random = Function::new(ctx.clone(), next)?;
    random.set_name("random")?;
    random.set_length(0)?;
    math.set("random", random)
}

/// The next number in [0, 1).
fn next() -> f64 {
    let v = STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = fresh_seed();
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    });
    f64::from_bits((0x3ff << 52) | (v >> 12)) - 1.0
}

/// A nonzero seed from `getrandom(2)`, or from the clock and the pid should it fail (it does
/// not on any kernel this runs on; the seccomp policy allows it).
fn fresh_seed() -> u64 {
    let mut bytes = [0u8; 8];
    // getrandom(2) through rustix, as nix has no wrapper for it.
    let n = rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty());
    let mut seed = u64::from_ne_bytes(bytes);
    if n != Ok(8) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        seed ^= now ^ (u64::from(std::process::id()) << 32);
    }
    seed.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_in_the_unit_interval_and_vary() {
        reseed();
        let draws: Vec<f64> = (0..1000).map(|_| next()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "mean {mean}");
        let distinct: std::collections::HashSet<u64> = draws.iter().map(|d| d.to_bits()).collect();
        assert_eq!(distinct.len(), draws.len());
    }

    #[test]
    fn a_reseed_starts_another_sequence() {
        reseed();
        let a: Vec<u64> = (0..4).map(|_| next().to_bits()).collect();
        reseed();
        let b: Vec<u64> = (0..4).map(|_| next().to_bits()).collect();
        assert_ne!(a, b);
    }
}
