//! `sentrix-bench crypto`: the cost of sealing clips, measured side by side with a plain
//! write of the same bytes in the same run (both end with fsync), the cost of opening
//! (decrypting) them, the latency of reading a random 64 KiB range from the middle of a
//! large sealed clip, and the time of one PBKDF2 derivation at the configured iterations.

use anyhow::Context;
use sentrix::store::container::{DEFAULT_CHUNK_SIZE, OpenReader, SealWriter};
use sentrix::store::keys::{MasterKey, PBKDF2_ITERATIONS};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

fn random_block(len: usize) -> anyhow::Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    getrandom::getrandom(&mut b)?;
    Ok(b)
}

/// Writes `total` bytes (repeating `block`) through `w`, returns seconds including fsync.
fn timed_write(
    path: &Path,
    total: u64,
    block: &[u8],
    sealed: Option<&MasterKey>,
) -> anyhow::Result<f64> {
    let _ = std::fs::remove_file(path);
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let start = Instant::now();
    let file = match sealed {
        Some(key) => {
            let mut w = SealWriter::new(std::io::BufWriter::new(file), key, DEFAULT_CHUNK_SIZE)?;
            let mut left = total;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                w.write(&block[..n])?;
                left -= n as u64;
            }
            let (buf, _) = w.finish()?;
            buf.into_inner().map_err(|e| e.into_error())?
        }
        None => {
            let mut w = std::io::BufWriter::new(file);
            let mut left = total;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                w.write_all(&block[..n])?;
                left -= n as u64;
            }
            w.into_inner().map_err(|e| e.into_error())?
        }
    };
    file.sync_all()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Which backend the `aes` and `ghash` crates pick at run time on this CPU (they detect
/// the same features): hardware instructions, or constant-time software (bitsliced AES,
/// software carry-less multiply), as on a Raspberry Pi 4, whose A72 lacks the crypto
/// extensions.
pub fn aes_backend() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
        {
            return "AES-NI + PCLMULQDQ";
        }
    }
    // aes and polyval use these instructions only when built with the cfgs that
    // .cargo/config.toml sets.
    #[cfg(all(target_arch = "aarch64", aes_armv8, polyval_armv8))]
    {
        if std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
        {
            return "ARMv8 AES + PMULL";
        }
    }
    "software: bitsliced AES, no hardware carry-less multiply"
}

pub fn crypto(mb: u64, clip_mb: u64, dir: &Path) -> anyhow::Result<()> {
    let key = MasterKey::random()?;
    let block = random_block(1 << 20)?;
    let total = mb << 20;
    let sealed_path = dir.join(format!("sentrix-bench-{}.sealed", std::process::id()));
    let plain_path = dir.join(format!("sentrix-bench-{}.plain", std::process::id()));
    println!(
        "bench crypto: {mb} MB, chunk {} KiB, AES-256-GCM ({}), files in {}",
        DEFAULT_CHUNK_SIZE / 1024,
        aes_backend(),
        dir.display()
    );

    // Alternate the two, three rounds, best of each: the disk's own variance (writeback of
    // the previous file) otherwise decides which one looks faster.
    let (mut plain_s, mut seal_s) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        plain_s = plain_s.min(timed_write(&plain_path, total, &block, None)?);
        seal_s = seal_s.min(timed_write(&sealed_path, total, &block, Some(&key))?);
    }
    let mbs = |s: f64| total as f64 / (1 << 20) as f64 / s;
    println!("plain write + fsync   {:>8.1} MB/s", mbs(plain_s));
    println!(
        "seal write + fsync    {:>8.1} MB/s  ({:.2}x the plain write's time)",
        mbs(seal_s),
        seal_s / plain_s
    );

    let reader = OpenReader::open(std::fs::File::open(&sealed_path)?, &key)?;
    let start = Instant::now();
    let mut sink = std::io::sink();
    reader.copy_to(&mut sink, |_, _| {})?;
    let open_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut plain_read = std::fs::File::open(&plain_path)?;
    std::io::copy(&mut plain_read, &mut sink)?;
    let read_s = start.elapsed().as_secs_f64();
    println!("plain read (cached)   {:>8.1} MB/s", mbs(read_s));
    println!(
        "open (decrypt)        {:>8.1} MB/s  ({:.2}x the plain read's time)",
        mbs(open_s),
        open_s / read_s
    );
    let _ = std::fs::remove_file(&plain_path);
    use super::table::{Figure, add};
    add(Figure::against(
        &format!("seal (AES-256-GCM, {}) + write + fsync", aes_backend()),
        format!("{:.0} MB/s", mbs(seal_s)),
        format!("plain write {:.0} MB/s", mbs(plain_s)),
        seal_s / plain_s,
    ));
    add(Figure::against(
        "decrypt (open) from page cache",
        format!("{:.0} MB/s", mbs(open_s)),
        format!("plain read {:.0} MB/s", mbs(read_s)),
        open_s / read_s,
    ));

    // Random 64 KiB reads in the middle of a large clip.
    let clip_total = clip_mb << 20;
    timed_write(&sealed_path, clip_total, &block, Some(&key))?;
    let reader = OpenReader::open(std::fs::File::open(&sealed_path)?, &key)?;
    let mut lat_ms = Vec::new();
    let mut rng = [0u8; 8 * 200];
    getrandom::getrandom(&mut rng)?;
    for i in 0..200 {
        let r = u64::from_le_bytes(rng[i * 8..i * 8 + 8].try_into()?);
        // Somewhere in the middle half of the clip.
        let offset = clip_total / 4 + r % (clip_total / 2);
        let start = Instant::now();
        let bytes = reader.read_at(offset, 64 * 1024)?;
        lat_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(bytes);
    }
    lat_ms.sort_by(f64::total_cmp);
    println!(
        "random 64 KiB read in a {clip_mb} MB clip: median {:.3} ms, p99 {:.3} ms, max {:.3} ms (page cache warm)",
        lat_ms[lat_ms.len() / 2],
        lat_ms[lat_ms.len() * 99 / 100],
        lat_ms[lat_ms.len() - 1]
    );
    let _ = std::fs::remove_file(&sealed_path);

    let start = Instant::now();
    let derived = MasterKey::from_passphrase(
        b"correct horse battery staple",
        b"0123456789abcdef",
        PBKDF2_ITERATIONS,
    );
    println!(
        "PBKDF2-HMAC-SHA256, {PBKDF2_ITERATIONS} iterations: {:.0} ms (key {})",
        start.elapsed().as_secs_f64() * 1000.0,
        derived.id()
    );
    Ok(())
}
