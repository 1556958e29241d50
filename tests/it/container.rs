//! The sealed clip container: round trips of edge sizes, random-access reads, and every
//! kind of tampering refused with a clear error. Real files in temp dirs.

use crate::common;

use sentrix::store::container::{ClipError, HEADER_LEN, OpenReader, SealWriter, TAG_LEN};
use sentrix::store::keys::MasterKey;
use std::fs::File;
use std::path::{Path, PathBuf};

const CS: u32 = 64 * 1024;

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn seal(dir: &Path, name: &str, data: &[u8], key: &MasterKey) -> PathBuf {
    let path = dir.join(name);
    let mut w = SealWriter::new(File::create(&path).unwrap(), key, CS).unwrap();
    // Uneven writes, as a muxer produces them.
    for piece in data.chunks(10_007) {
        w.write(piece).unwrap();
    }
    let (f, sealed) = w.finish().unwrap();
    f.sync_all().unwrap();
    assert_eq!(sealed.plain_bytes, data.len() as u64);
    assert_eq!(sealed.file_bytes, std::fs::metadata(&path).unwrap().len());
    path
}

fn open(path: &Path, key: &MasterKey) -> Result<OpenReader, ClipError> {
    OpenReader::open(File::open(path).unwrap(), key)
}

/// Opens and reads everything; the first error.
fn read_all(path: &Path, key: &MasterKey) -> Result<Vec<u8>, ClipError> {
    let r = open(path, key)?;
    let mut out = Vec::new();
    r.copy_to(&mut out, |_, _| {})?;
    Ok(out)
}

#[test]
fn round_trip_of_edge_sizes_and_random_reads() {
    let dir = common::temp_dir();
    let key = MasterKey::random().unwrap();
    let cs = CS as usize;
    for (i, len) in [0, 1, cs - 1, cs, cs + 1, 3 * cs, 10_000_000]
        .into_iter()
        .enumerate()
    {
        let data = bytes(len, i as u64 + 7);
        let path = seal(dir.path(), &format!("c{i}"), &data, &key);
        let r = open(&path, &key).unwrap();
        assert_eq!(r.plain_len(), len as u64);
        assert_eq!(read_all(&path, &key).unwrap(), data, "size {len}");
        // Random ranges, including ones crossing chunk boundaries and touching the end.
        let offsets = bytes(64 * 8, len as u64 + 1);
        for k in 0..64 {
            if len == 0 {
                break;
            }
            let o =
                u64::from_le_bytes(offsets[k * 8..k * 8 + 8].try_into().unwrap()) as usize % len;
            let n = (1 + (o * 31 + k) % (2 * cs)).min(len - o);
            assert_eq!(
                r.read_at(o as u64, n as u64).unwrap(),
                &data[o..o + n],
                "size {len} range {o}+{n}"
            );
        }
        assert_eq!(r.read_at(len as u64, 0).unwrap(), Vec::<u8>::new());
        assert!(matches!(
            r.read_at(len as u64, 1),
            Err(ClipError::OutOfRange { .. })
        ));
    }
}

fn flip(path: &Path, at: u64) {
    let mut b = std::fs::read(path).unwrap();
    b[at as usize] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

fn copy(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(src, &p).unwrap();
    p
}

#[test]
fn tampering_is_refused() {
    let dir = common::temp_dir();
    let d = dir.path();
    let key = MasterKey::random().unwrap();
    let data = bytes(4 * CS as usize + 1000, 3); // 5 chunks
    let good = seal(d, "good", &data, &key);
    let other = seal(d, "other", &bytes(4 * CS as usize + 1000, 4), &key);
    let stride = CS as u64 + TAG_LEN as u64;
    let chunk_at = |i: u64| HEADER_LEN as u64 + i * stride;
    let size = std::fs::metadata(&good).unwrap().len();

    // One bit in each header field.
    for (name, at) in [
        ("magic", 0),
        ("version", 8),
        ("algorithm", 9),
        ("reserved", 10),
        ("chunk size", 13),
        ("key id", 16),
        ("salt", 40),
    ] {
        let p = copy(&good, d, name);
        flip(&p, at);
        let err = read_all(&p, &key).expect_err(name);
        eprintln!("header {name}: {err}");
    }
    let p = copy(&good, d, "salt-msg");
    flip(&p, 40);
    assert!(matches!(
        read_all(&p, &key),
        Err(ClipError::Tampered { .. })
    ));
    let p = copy(&good, d, "keyid-msg");
    flip(&p, 16);
    assert!(
        read_all(&p, &key)
            .unwrap_err()
            .to_string()
            .contains("sealed with key")
    );

    // A bit in a chunk's ciphertext, and in a tag.
    let p = copy(&good, d, "body");
    flip(&p, chunk_at(2) + 100);
    assert!(matches!(
        read_all(&p, &key),
        Err(ClipError::Tampered { chunk: 2 })
    ));
    let p = copy(&good, d, "tag");
    flip(&p, chunk_at(1) + CS as u64 + 3);
    assert!(matches!(
        read_all(&p, &key),
        Err(ClipError::Tampered { chunk: 1 })
    ));

    // Truncated at a chunk boundary (= the last chunk dropped), and mid-chunk.
    for (name, len) in [
        ("cut-boundary", chunk_at(3)),
        ("drop-last", chunk_at(4)),
        ("cut-mid", chunk_at(2) + 500),
        ("cut-header", 20),
    ] {
        let p = copy(&good, d, name);
        File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len)
            .unwrap();
        let err = read_all(&p, &key).expect_err(name);
        assert!(matches!(err, ClipError::Truncated(_)), "{name}: {err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    assert!(size > chunk_at(4));

    // Two chunks swapped.
    let p = copy(&good, d, "swap");
    let mut b = std::fs::read(&p).unwrap();
    let (a, c) = (chunk_at(1) as usize, chunk_at(2) as usize);
    let first: Vec<u8> = b[a..a + stride as usize].to_vec();
    b.copy_within(c..c + stride as usize, a);
    b[c..c + stride as usize].copy_from_slice(&first);
    std::fs::write(&p, b).unwrap();
    assert!(matches!(
        read_all(&p, &key),
        Err(ClipError::Tampered { chunk: 1 })
    ));

    // A chunk spliced in from another file sealed with the same key.
    let p = copy(&good, d, "splice");
    let mut b = std::fs::read(&p).unwrap();
    let o = std::fs::read(&other).unwrap();
    b[a..a + stride as usize].copy_from_slice(&o[a..a + stride as usize]);
    std::fs::write(&p, b).unwrap();
    assert!(matches!(
        read_all(&p, &key),
        Err(ClipError::Tampered { chunk: 1 })
    ));

    // And the untouched file still reads.
    assert_eq!(read_all(&good, &key).unwrap(), data);
}

#[test]
fn wrong_key_is_named() {
    let dir = common::temp_dir();
    let a = MasterKey::random().unwrap();
    let b = MasterKey::random().unwrap();
    let p = seal(dir.path(), "c", b"some clip bytes", &a);
    let err = read_all(&p, &b).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "this clip was sealed with key {}, not the configured one ({})",
            a.id(),
            b.id()
        )
    );
}
