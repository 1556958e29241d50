//! An incremental scan of a fragmented MP4 as it is written or recovered: where the last
//! complete `moof`+`mdat` pair ends (a crash-cut file is playable up to there), and the
//! media duration and sample count up to that point (from `mdhd` timescale, `trex`/`tfhd`
//! default durations and `trun` entries). Only box headers and the small `moov`/`moof`
//! boxes are buffered; `mdat` payloads are skipped.

const MAX_META_BOX: u64 = 4 * 1024 * 1024;

#[derive(Debug, Default, Clone)]
pub struct Mp4Scan {
    /// Bytes consumed so far.
    pos: u64,
    /// Bytes of the current box still to skip (inside an mdat).
    skip: u64,
    /// Partial box being collected (header, or a whole moov/moof).
    pending: Vec<u8>,
    seen_moov: bool,
    /// The first track's timescale (ticks per second), from its `mdhd`.
    pub timescale: u32,
    /// Where the fragments start: the end of `moov`.
    pub init_end: u64,
    trex_default_duration: u32,
    /// Duration and samples of the moof waiting for its mdat.
    open_fragment: Option<(u64, u64)>,
    /// End offset of the last complete moof+mdat (or of moov when none yet).
    pub complete_end: u64,
    pub duration_ticks: u64,
    pub samples: u64,
    pub fragments: u64,
    /// Sample entry of the first track (`avc1`, `hvc1`, ...) and its coded size.
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// Set when the stream is not a fragmented MP4 we understand.
    pub error: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Children of a container box body: (type, body).
fn children(body: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let size = be32(body, at)? as usize;
        let kind: [u8; 4] = body.get(at + 4..at + 8)?.try_into().ok()?;
        let (hdr, size) = match size {
            1 => (16, be64(body, at + 8)? as usize),
            0 => (8, body.len() - at),
            s => (8, s),
        };
        let b = body.get(at + hdr..at + size)?;
        at += size.max(hdr);
        Some((kind, b))
    })
}

fn find<'a>(body: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let (_, b) = children(body).find(|(k, _)| k == *first)?;
    if rest.is_empty() {
        Some(b)
    } else {
        find(b, rest)
    }
}

impl Mp4Scan {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn duration_ms(&self) -> u64 {
        if self.timescale == 0 {
            0
        } else {
            self.duration_ticks * 1000 / self.timescale as u64
        }
    }

    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.error.is_none() {
            if self.skip > 0 {
                let n = (self.skip).min(data.len() as u64) as usize;
                self.skip -= n as u64;
                self.pos += n as u64;
                data = &data[n..];
                if self.skip == 0 {
                    self.mdat_done();
                }
                continue;
            }
            // Collect at least a header, then the whole box for meta boxes.
            let need_header = if self.pending.len() >= 8 && be32(&self.pending, 0) == Some(1) {
                16
            } else {
                8
            };
            if self.pending.len() < need_header {
                let n = (need_header - self.pending.len()).min(data.len());
                self.pending.extend_from_slice(&data[..n]);
                self.pos += n as u64;
                data = &data[n..];
                continue;
            }
            let size = match be32(&self.pending, 0) {
                Some(1) => be64(&self.pending, 8).unwrap_or(0),
                Some(s) => s as u64,
                None => 0,
            };
            let kind: [u8; 4] = self.pending[4..8].try_into().unwrap_or([0; 4]);
            let header_len = need_header as u64;
            if size < header_len {
                self.error = Some(format!(
                    "box {:?} has size {size}",
                    String::from_utf8_lossy(&kind)
                ));
                return;
            }
            if &kind == b"mdat" {
                self.pending.clear();
                self.skip = size - header_len;
                if self.skip == 0 {
                    self.mdat_done();
                }
                continue;
            }
            if size > MAX_META_BOX {
                self.error = Some(format!(
                    "{} box of {size} bytes is too large",
                    String::from_utf8_lossy(&kind)
                ));
                return;
            }
            let n = ((size as usize) - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            self.pos += n as u64;
            data = &data[n..];
            if self.pending.len() as u64 == size {
                let body = std::mem::take(&mut self.pending);
                self.box_done(&kind, &body[header_len as usize..]);
            }
        }
    }

    fn mdat_done(&mut self) {
        if let Some((ticks, samples)) = self.open_fragment.take() {
            self.duration_ticks += ticks;
            self.samples += samples;
            self.fragments += 1;
            self.complete_end = self.pos;
        }
    }

    fn box_done(&mut self, kind: &[u8; 4], body: &[u8]) {
        match kind {
            b"moov" => {
                self.seen_moov = true;
                self.complete_end = self.pos;
                self.init_end = self.pos;
                if let Some(mdhd) = find(body, &[b"trak", b"mdia", b"mdhd"]) {
                    let at = if mdhd.first() == Some(&1) { 20 } else { 12 };
                    self.timescale = be32(mdhd, at).unwrap_or(0);
                }
                if let Some(stsd) = find(body, &[b"trak", b"mdia", b"minf", b"stbl", b"stsd"]) {
                    // version/flags, entry_count, then the first sample entry box.
                    if let Some(entry) = stsd.get(8..) {
                        self.codec = String::from_utf8_lossy(entry.get(4..8).unwrap_or_default())
                            .into_owned();
                        let dim = |at| {
                            entry
                                .get(at..at + 2)
                                .map(|b| u16::from_be_bytes([b[0], b[1]]) as u32)
                        };
                        self.width = dim(32).unwrap_or(0);
                        self.height = dim(34).unwrap_or(0);
                    }
                }
                if let Some(trex) = find(body, &[b"mvex", b"trex"]) {
                    self.trex_default_duration = be32(trex, 12).unwrap_or(0);
                }
            }
            // Padding between fragments (writer.rs) is part of the playable prefix.
            b"free" | b"skip" if self.open_fragment.is_none() && self.seen_moov => {
                self.complete_end = self.pos;
            }
            b"moof" => {
                if !self.seen_moov {
                    self.error = Some("moof before moov".into());
                    return;
                }
                self.open_fragment = Some(self.fragment_length(body));
            }
            _ => {}
        }
    }

    /// (duration in ticks, samples) of a moof's first track fragment.
    fn fragment_length(&self, moof: &[u8]) -> (u64, u64) {
        let Some(traf) = find(moof, &[b"traf"]) else {
            return (0, 0);
        };
        let mut default_duration = self.trex_default_duration as u64;
        if let Some(tfhd) = find(traf, &[b"tfhd"]) {
            let flags = be32(tfhd, 0).unwrap_or(0) & 0x00ff_ffff;
            let mut at = 8; // version/flags, track_ID
            if flags & 0x01 != 0 {
                at += 8;
            }
            if flags & 0x02 != 0 {
                at += 4;
            }
            if flags & 0x08 != 0 {
                default_duration = be32(tfhd, at).unwrap_or(0) as u64;
            }
        }
        let (mut ticks, mut samples) = (0u64, 0u64);
        for (kind, trun) in children(traf) {
            if &kind != b"trun" {
                continue;
            }
            let flags = be32(trun, 0).unwrap_or(0) & 0x00ff_ffff;
            let count = be32(trun, 4).unwrap_or(0) as u64;
            let mut at =
                8 + if flags & 0x01 != 0 { 4 } else { 0 } + if flags & 0x04 != 0 { 4 } else { 0 };
            let per_sample = [0x100, 0x200, 0x400, 0x800]
                .iter()
                .filter(|f| flags & **f != 0)
                .count()
                * 4;
            for _ in 0..count {
                ticks += if flags & 0x100 != 0 {
                    be32(trun, at).unwrap_or(0) as u64
                } else {
                    default_duration
                };
                at += per_sample;
            }
            samples += count;
        }
        (ticks, samples)
    }
}
