//! The encrypted clip container (spec: docs/clip-format.md). A 56-byte header, then the
//! body in fixed-size chunks, each sealed with AES-256-GCM under a per-file key derived by
//! HKDF-SHA256 from the master key and the header's random salt. Chunk nonces are
//! `prefix(7) ‖ counter(4, BE) ‖ last(1)` (the STREAM construction) and every chunk
//! authenticates the whole header as AAD, so truncation, reordering, chunks spliced from
//! another file and bit flips all fail. `SealWriter` streams; `OpenReader::read_at`
//! decrypts only the chunks a byte range touches.

use super::keys::{KeyId, MasterKey};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 8] = b"SENTRIX\x00";
pub const VERSION: u8 = 1;
/// AES-256-GCM, STREAM nonces, HKDF-SHA256 per-file key.
pub const ALG_AES256GCM_STREAM: u8 = 1;
pub const HEADER_LEN: usize = 56;
pub const TAG_LEN: usize = 16;
/// 16 KiB: a short tail to pad when a slow stream's fragment must reach the disk
/// (writer.rs), little tag overhead (0.1 %), and small random reads.
pub const DEFAULT_CHUNK_SIZE: u32 = 16 * 1024;
const HKDF_INFO: &[u8] = b"sentrix clip v1";

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("not a sentrix clip (bad magic)")]
    NotAClip,
    #[error("clip format version {0} is not supported by this sentrix (it reads version 1)")]
    UnsupportedVersion(u8),
    #[error("clip algorithm {0} is not supported")]
    UnsupportedAlgorithm(u8),
    #[error("clip header is invalid: {0}")]
    BadHeader(&'static str),
    #[error("this clip was sealed with key {file}, not the configured one ({configured})")]
    WrongKey { file: KeyId, configured: KeyId },
    #[error("clip is truncated: {0}")]
    Truncated(String),
    #[error("clip is damaged or was tampered with: chunk {chunk} does not authenticate")]
    Tampered { chunk: u64 },
    #[error("range {offset}+{len} is outside the clip ({plain_len} bytes)")]
    OutOfRange {
        offset: u64,
        len: u64,
        plain_len: u64,
    },
    #[error("clip I/O: {0}")]
    Io(#[from] io::Error),
}

/// The parsed, fixed-size header.
#[derive(Clone, Debug)]
struct Header {
    bytes: [u8; HEADER_LEN],
    chunk_size: u32,
    key_id: KeyId,
    salt: [u8; 32],
}

impl Header {
    fn new(key: &MasterKey, chunk_size: u32) -> io::Result<Self> {
        let mut salt = [0u8; 32];
        getrandom::getrandom(&mut salt).map_err(io::Error::other)?;
        let mut bytes = [0u8; HEADER_LEN];
        bytes[..8].copy_from_slice(MAGIC);
        bytes[8] = VERSION;
        bytes[9] = ALG_AES256GCM_STREAM;
        // bytes[10..12]: reserved, zero
        bytes[12..16].copy_from_slice(&chunk_size.to_le_bytes());
        bytes[16..24].copy_from_slice(key.id().as_bytes());
        bytes[24..56].copy_from_slice(&salt);
        Ok(Self {
            bytes,
            chunk_size,
            key_id: key.id(),
            salt,
        })
    }

    fn parse(bytes: [u8; HEADER_LEN]) -> Result<Self, ClipError> {
        if &bytes[..8] != MAGIC {
            return Err(ClipError::NotAClip);
        }
        if bytes[8] != VERSION {
            return Err(ClipError::UnsupportedVersion(bytes[8]));
        }
        if bytes[9] != ALG_AES256GCM_STREAM {
            return Err(ClipError::UnsupportedAlgorithm(bytes[9]));
        }
        if bytes[10..12] != [0, 0] {
            return Err(ClipError::BadHeader("reserved bytes are not zero"));
        }
        let chunk_size = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if !(1024..=16 * 1024 * 1024).contains(&chunk_size) {
            return Err(ClipError::BadHeader("chunk size out of range"));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[16..24]);
        let mut salt = [0u8; 32];
        salt.copy_from_slice(&bytes[24..56]);
        Ok(Self {
            bytes,
            chunk_size,
            key_id: KeyId::from_bytes(id),
            salt,
        })
    }

    /// Reads and checks the header of a `size`-byte file sealed under `key`; returns it
    /// with the file's cipher and nonce prefix.
    fn read(
        file: &File,
        size: u64,
        key: &MasterKey,
    ) -> Result<(Self, Aes256Gcm, [u8; 7]), ClipError> {
        if size < HEADER_LEN as u64 {
            return Err(ClipError::Truncated(format!(
                "{size} bytes is shorter than the header"
            )));
        }
        let mut hb = [0u8; HEADER_LEN];
        file.read_exact_at(&mut hb, 0)?;
        let header = Header::parse(hb)?;
        if header.key_id != key.id() {
            return Err(ClipError::WrongKey {
                file: header.key_id,
                configured: key.id(),
            });
        }
        let (cipher, prefix) = header.cipher(key);
        Ok((header, cipher, prefix))
    }

    /// The per-file AES key and nonce prefix.
    fn cipher(&self, key: &MasterKey) -> (Aes256Gcm, [u8; 7]) {
        let hk = Hkdf::<Sha256>::new(Some(&self.salt), key.secret());
        let mut okm = Zeroizing::new([0u8; 39]);
        // 39 bytes is far below HKDF-SHA256's limit of 8160, so expand cannot fail.
        let _ = hk.expand(HKDF_INFO, okm.as_mut_slice());
        let mut aes_key = Zeroizing::new([0u8; 32]);
        aes_key.copy_from_slice(&okm[..32]);
        let cipher = Aes256Gcm::new(&(*aes_key).into());
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&okm[32..39]);
        (cipher, prefix)
    }
}

fn nonce(prefix: &[u8; 7], counter: u64, last: bool) -> Option<[u8; 12]> {
    let counter = u32::try_from(counter).ok()?;
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = last as u8;
    Some(n)
}

/// What a finished container holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    pub plain_bytes: u64,
    pub file_bytes: u64,
}

/// Streams plaintext into a container. Full chunks are sealed and written as soon as more
/// data follows them; `finish` seals the rest as the last chunk. Dropping without `finish`
/// leaves a container that reads as truncated (recoverable up to its last sealed chunk).
pub struct SealWriter<W: Write> {
    out: W,
    header: Header,
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    buf: Zeroizing<Vec<u8>>,
    counter: u64,
    plain_bytes: u64,
    file_bytes: u64,
}

impl<W: Write> SealWriter<W> {
    pub fn new(mut out: W, key: &MasterKey, chunk_size: u32) -> io::Result<Self> {
        let header = Header::new(key, chunk_size)?;
        out.write_all(&header.bytes)?;
        let (cipher, prefix) = header.cipher(key);
        Ok(Self {
            out,
            cipher,
            prefix,
            buf: Zeroizing::new(Vec::with_capacity(chunk_size as usize + TAG_LEN)),
            header,
            counter: 0,
            plain_bytes: 0,
            file_bytes: HEADER_LEN as u64,
        })
    }

    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        let cs = self.header.chunk_size as usize;
        while !data.is_empty() {
            if self.buf.len() == cs {
                self.seal(false)?;
            }
            let take = (cs - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.plain_bytes += take as u64;
        }
        Ok(())
    }

    fn seal(&mut self, last: bool) -> io::Result<()> {
        let n = nonce(&self.prefix, self.counter, last)
            .ok_or_else(|| io::Error::other("clip too large for one container"))?;
        let tag: Tag = self
            .cipher
            .encrypt_in_place_detached(
                Nonce::from_slice(&n),
                &self.header.bytes,
                self.buf.as_mut_slice(),
            )
            .map_err(|_| io::Error::other("AES-GCM refused to seal a chunk"))?;
        // One write per chunk (its tag follows it in the buffer's spare capacity).
        self.buf.extend_from_slice(&tag);
        self.out.write_all(&self.buf)?;
        self.file_bytes += self.buf.len() as u64;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    /// Plaintext bytes accepted so far.
    pub fn plain_bytes(&self) -> u64 {
        self.plain_bytes
    }

    pub fn chunk_size(&self) -> u32 {
        self.header.chunk_size
    }

    /// Plaintext bytes waiting in the open chunk (lost in a crash until sealed).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Seals the open chunk now if it is full (the writer then knows more data, or an
    /// empty last chunk, follows).
    pub fn seal_full_chunk(&mut self) -> io::Result<()> {
        if self.buf.len() == self.header.chunk_size as usize {
            self.seal(false)?;
        }
        Ok(())
    }

    /// Plaintext bytes already sealed and handed to the writer (safe after a crash once
    /// the writer's data is synced).
    pub fn sealed_plain_bytes(&self) -> u64 {
        self.plain_bytes - self.buf.len() as u64
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Seals the last chunk and returns the writer and the sizes.
    pub fn finish(mut self) -> io::Result<(W, Sealed)> {
        self.seal(true)?;
        self.out.flush()?;
        let sealed = Sealed {
            plain_bytes: self.plain_bytes,
            file_bytes: self.file_bytes,
        };
        Ok((self.out, sealed))
    }
}

/// Random-access reader over a sealed container file.
pub struct OpenReader {
    file: File,
    header: Header,
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    chunks: u64,
    plain_len: u64,
}

impl OpenReader {
    /// Checks the header, the key and the size, and authenticates the first and last chunk,
    /// so a damaged or truncated file is refused before any byte is served.
    pub fn open(file: File, key: &MasterKey) -> Result<Self, ClipError> {
        let size = file.metadata()?.len();
        let (header, cipher, prefix) = Header::read(&file, size, key)?;
        let stride = header.chunk_size as u64 + TAG_LEN as u64;
        let body = size - HEADER_LEN as u64;
        if body == 0 {
            return Err(ClipError::Truncated("no chunk after the header".into()));
        }
        let chunks = body.div_ceil(stride);
        let last_len = body - (chunks - 1) * stride;
        if last_len < TAG_LEN as u64 {
            return Err(ClipError::Truncated(format!(
                "last chunk is {last_len} bytes, shorter than its tag"
            )));
        }
        let plain_len = body - chunks * TAG_LEN as u64;
        let reader = Self {
            file,
            header,
            cipher,
            prefix,
            chunks,
            plain_len,
        };
        // The first chunk vouches for the header (a damaged header fails here, as
        // tampering); the last one for the length (a cut file fails as truncated).
        reader.chunk(0)?;
        reader.chunk(chunks - 1)?;
        Ok(reader)
    }

    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    pub fn key_id(&self) -> KeyId {
        self.header.key_id
    }

    /// Decrypts chunk `i` (the last one with the last flag).
    fn chunk(&self, i: u64) -> Result<Zeroizing<Vec<u8>>, ClipError> {
        let cs = self.header.chunk_size as u64;
        let stride = cs + TAG_LEN as u64;
        let start = HEADER_LEN as u64 + i * stride;
        let plain = if i + 1 == self.chunks {
            self.plain_len - i * cs
        } else {
            cs
        };
        let mut buf = Zeroizing::new(vec![0u8; plain as usize + TAG_LEN]);
        self.file.read_exact_at(&mut buf, start)?;
        let tag = Tag::clone_from_slice(&buf[plain as usize..]);
        buf.truncate(plain as usize);
        let last = i + 1 == self.chunks;
        let n = nonce(&self.prefix, i, last).ok_or(ClipError::BadHeader("too many chunks"))?;
        let aad = &self.header.bytes;
        if self
            .cipher
            .decrypt_in_place_detached(Nonce::from_slice(&n), aad, &mut buf, &tag)
            .is_ok()
        {
            return Ok(buf);
        }
        if last && plain < cs {
            // Only the last chunk may be short, so a cut inside any chunk looks like this.
            return Err(ClipError::Truncated(format!(
                "its last chunk ({i}, {plain} bytes) does not authenticate: the file was cut short or damaged"
            )));
        }
        if last {
            // Sealed as a middle chunk? Then the file was cut at a chunk boundary.
            let mut probe = buf.clone();
            let n = nonce(&self.prefix, i, false).ok_or(ClipError::BadHeader("too many chunks"))?;
            if self
                .cipher
                .decrypt_in_place_detached(Nonce::from_slice(&n), aad, &mut probe, &tag)
                .is_ok()
            {
                return Err(ClipError::Truncated(format!(
                    "ends after chunk {i}, which is not the last one"
                )));
            }
        }
        Err(ClipError::Tampered { chunk: i })
    }

    /// `len` plaintext bytes from `offset`; decrypts only the chunks the range touches.
    pub fn read_at(&self, offset: u64, len: u64) -> Result<Vec<u8>, ClipError> {
        let end = offset
            .checked_add(len)
            .filter(|e| *e <= self.plain_len)
            .ok_or(ClipError::OutOfRange {
                offset,
                len,
                plain_len: self.plain_len,
            })?;
        let cs = self.header.chunk_size as u64;
        let mut out = Vec::with_capacity(len as usize);
        let mut pos = offset;
        while pos < end {
            let i = pos / cs;
            let chunk = self.chunk(i)?;
            let from = (pos - i * cs) as usize;
            let to = ((end - i * cs).min(chunk.len() as u64)) as usize;
            out.extend_from_slice(&chunk[from..to]);
            pos = i * cs + to as u64;
        }
        Ok(out)
    }

    /// Decrypts the whole clip into `out`, chunk by chunk.
    pub fn copy_to(
        &self,
        out: &mut impl Write,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<u64, ClipError> {
        let mut done = 0u64;
        for i in 0..self.chunks {
            let chunk = self.chunk(i)?;
            out.write_all(&chunk)?;
            done += chunk.len() as u64;
            progress(done, self.plain_len);
        }
        Ok(done)
    }

    /// Visits, in order, every chunk of a file that may lack its last chunk (a crashed
    /// write) that authenticates, as a middle chunk or as the real last one; stops at the
    /// first that does not. `visit` returns false to stop early.
    pub fn recover_chunks(
        file: &File,
        key: &MasterKey,
        mut visit: impl FnMut(&[u8]) -> io::Result<bool>,
    ) -> Result<(), ClipError> {
        let size = file.metadata()?.len();
        let (header, cipher, prefix) = Header::read(file, size, key)?;
        let stride = header.chunk_size as u64 + TAG_LEN as u64;
        let open = |i: u64, sealed: &mut Zeroizing<Vec<u8>>, last: bool| -> bool {
            let Some(body_len) = sealed.len().checked_sub(TAG_LEN) else {
                return false;
            };
            let Some(n) = nonce(&prefix, i, last) else {
                return false;
            };
            let tag = Tag::clone_from_slice(&sealed[body_len..]);
            let mut body = Zeroizing::new(sealed[..body_len].to_vec());
            let ok = cipher
                .decrypt_in_place_detached(Nonce::from_slice(&n), &header.bytes, &mut body, &tag)
                .is_ok();
            if ok {
                *sealed = body;
            }
            ok
        };
        for i in 0u64.. {
            let at = HEADER_LEN as u64 + i * stride;
            let len = size.saturating_sub(at).min(stride) as usize;
            if len < TAG_LEN {
                break;
            }
            let mut sealed = Zeroizing::new(vec![0u8; len]);
            file.read_exact_at(&mut sealed, at)?;
            let cloned = sealed.clone();
            if !open(i, &mut sealed, false) {
                sealed = cloned;
                if !open(i, &mut sealed, true) {
                    break;
                }
            }
            if !visit(&sealed)? || (len as u64) < stride {
                break;
            }
        }
        Ok(())
    }
}
