//! How fast one core computes SHA1 with the `sha1` crate the emulator uses: hashes 1 GiB (a
//! 64 MiB buffer 16 times, in memory) and prints GiB/s. Every verified upload costs the server
//! this much CPU per byte, on one core, whatever else it does.
//!
//! `cargo run --release -p b2-emulator --example bench_sha1_rate`

use std::time::Instant;

use sha1::{Digest, Sha1};

fn main() {
    let buf: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut sha = Sha1::new();
    sha.update(&buf); // warm the code and the buffer
    let mut sha = Sha1::new();
    let t0 = Instant::now();
    for _ in 0..16 {
        sha.update(&buf);
    }
    let digest = sha.finalize();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{:.2} {secs:.3} {:02x}{:02x}",
        1.0 / secs,
        digest[0],
        digest[1]
    );
}
