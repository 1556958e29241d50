//! The few fragmented-MP4 boxes playback rewrites, parsed and written by hand (they are
//! small and fixed by ISO/IEC 14496-12): box headers, `moof` with its `tfdt` and `trun`,
//! the `mehd` duration, and the RFC 6381 codec string of the sample entry (for the
//! browser's Media Source). Everything else passes through as bytes.

#[derive(Debug, thiserror::Error)]
#[error("MP4: {0}")]
pub struct Mp4Error(pub String);

fn bad(what: impl Into<String>) -> Mp4Error {
    Mp4Error(what.into())
}

pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A box's type, header length and total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    pub header_len: u64,
    pub size: u64,
}

/// The header at the start of `b` (8 bytes, or 16 for a 64-bit size). None when `b` is
/// too short; an error for a size smaller than the header or a size-0 box.
pub fn header(b: &[u8]) -> Result<Option<BoxHeader>, Mp4Error> {
    let (Some(size32), Some(kind)) = (be32(b, 0), b.get(4..8)) else {
        return Ok(None);
    };
    let kind: [u8; 4] = kind.try_into().map_err(|_| bad("box type"))?;
    let (header_len, size) = match size32 {
        1 => match be64(b, 8) {
            Some(s) => (16, s),
            None => return Ok(None),
        },
        0 => return Err(bad("a box that runs to the end of the file")),
        s => (8, s as u64),
    };
    if size < header_len {
        return Err(bad(format!("box of {size} bytes")));
    }
    Ok(Some(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// Children of a container's body: (type, start of the child within `body`, its bytes).
pub fn children(body: &[u8]) -> impl Iterator<Item = ([u8; 4], usize, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let h = header(body.get(at..)?).ok()??;
        let start = at;
        let bytes = body.get(at..at + h.size as usize)?;
        at += h.size as usize;
        Some((h.kind, start, bytes))
    })
}

/// The first descendant along `path`: (its offset within `b`, its bytes with header).
pub fn find(b: &[u8], path: &[&[u8; 4]]) -> Option<(usize, usize)> {
    let (first, rest) = path.split_first()?;
    let (_, start, bytes) = children(b).find(|(k, _, _)| k == *first)?;
    let hdr = header(bytes).ok()??.header_len as usize;
    if rest.is_empty() {
        return Some((start, bytes.len()));
    }
    let (inner, len) = find(&bytes[hdr..], rest)?;
    Some((start + hdr + inner, len))
}

/// One sample of a track fragment, every field resolved from its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
    pub cto: i32,
}

impl Sample {
    /// A sync sample (keyframe): `sample_is_non_sync_sample` clear.
    pub fn is_sync(&self) -> bool {
        self.flags & 0x0001_0000 == 0
    }
}

/// The defaults a `trex` gives every fragment of its track.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackDefaults {
    pub duration: u32,
    pub size: u32,
    pub flags: u32,
}

/// A parsed `moof` (one track): its decode time and samples, whose data follow in order
/// from `data_offset` bytes after the moof's start.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub sequence: u32,
    pub track_id: u32,
    pub decode_time: u64,
    pub data_offset: u64,
    pub samples: Vec<Sample>,
}

impl Fragment {
    pub fn ticks(&self) -> u64 {
        self.samples.iter().map(|s| s.duration as u64).sum()
    }

    pub fn data_bytes(&self) -> u64 {
        self.samples.iter().map(|s| s.size as u64).sum()
    }
}

/// The track defaults of an init segment's `moov/mvex/trex`.
pub fn track_defaults(moov_body: &[u8]) -> TrackDefaults {
    let Some((at, len)) = find(moov_body, &[b"mvex", b"trex"]) else {
        return TrackDefaults::default();
    };
    let trex = &moov_body[at + 8..at + len];
    TrackDefaults {
        duration: be32(trex, 12).unwrap_or(0),
        size: be32(trex, 16).unwrap_or(0),
        flags: be32(trex, 20).unwrap_or(0),
    }
}

/// Parses a whole `moof` box (header included).
pub fn parse_moof(moof: &[u8], defaults: TrackDefaults) -> Result<Fragment, Mp4Error> {
    let body = moof.get(8..).ok_or_else(|| bad("short moof"))?;
    let sequence = find(body, &[b"mfhd"])
        .and_then(|(at, _)| be32(body, at + 12))
        .unwrap_or(0);
    let (traf_at, traf_len) = find(body, &[b"traf"]).ok_or_else(|| bad("moof without traf"))?;
    let traf = &body[traf_at + 8..traf_at + traf_len];
    let (tfhd_at, _) = find(traf, &[b"tfhd"]).ok_or_else(|| bad("traf without tfhd"))?;
    let tfhd = &traf[tfhd_at + 8..];
    let flags = be32(tfhd, 0).unwrap_or(0) & 0x00ff_ffff;
    if flags & 0x01 != 0 {
        return Err(bad("explicit base data offsets are not supported"));
    }
    let track_id = be32(tfhd, 4).unwrap_or(0);
    let mut d = defaults;
    let mut at = 8 + if flags & 0x02 != 0 { 4 } else { 0 };
    for (bit, slot) in [
        (0x08, &mut d.duration),
        (0x10, &mut d.size),
        (0x20, &mut d.flags),
    ] {
        if flags & bit != 0 {
            *slot = be32(tfhd, at).ok_or_else(|| bad("short tfhd"))?;
            at += 4;
        }
    }
    let decode_time = match find(traf, &[b"tfdt"]) {
        Some((at, _)) if traf.get(at + 8) == Some(&1) => be64(traf, at + 12),
        Some((at, _)) => be32(traf, at + 12).map(u64::from),
        None => Some(0),
    }
    .ok_or_else(|| bad("short tfdt"))?;
    let (samples, data_offset) = parse_truns(traf, d)?;
    Ok(Fragment {
        sequence,
        track_id,
        decode_time,
        data_offset,
        samples,
    })
}

/// The samples of every `trun` of a `traf` body (they must be contiguous), and where the
/// first one's data starts relative to the moof.
fn parse_truns(traf: &[u8], d: TrackDefaults) -> Result<(Vec<Sample>, u64), Mp4Error> {
    let mut samples = Vec::new();
    let mut data_offset = None;
    for (kind, _, trun) in children(traf) {
        if &kind != b"trun" {
            continue;
        }
        let t = &trun[8..];
        let flags = be32(t, 0).unwrap_or(0) & 0x00ff_ffff;
        let count = be32(t, 4).ok_or_else(|| bad("short trun"))? as usize;
        let mut at = 8;
        if flags & 0x01 != 0 {
            let off = be32(t, at).ok_or_else(|| bad("short trun"))? as i32;
            data_offset.get_or_insert(off.max(0) as u64);
            at += 4;
        }
        let first_flags = if flags & 0x04 != 0 {
            at += 4;
            be32(t, at - 4)
        } else {
            None
        };
        for i in 0..count {
            let mut field = |bit: u32, default: u32| -> Result<u32, Mp4Error> {
                if flags & bit == 0 {
                    return Ok(default);
                }
                at += 4;
                be32(t, at - 4).ok_or_else(|| bad("short trun"))
            };
            let duration = field(0x100, d.duration)?;
            let size = field(0x200, d.size)?;
            let default_flags = if i == 0 {
                first_flags.unwrap_or(d.flags)
            } else {
                d.flags
            };
            let flags_v = field(0x400, default_flags)?;
            let cto = field(0x800, 0)? as i32;
            samples.push(Sample {
                duration,
                size,
                flags: flags_v,
                cto,
            });
        }
    }
    let data_offset = data_offset.ok_or_else(|| bad("trun without a data offset"))?;
    Ok((samples, data_offset))
}

pub fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A new `moof` for `samples` of one track starting at `decode_time`, with the mdat
/// header (8 bytes) of their data appended: the data follows it directly.
pub fn build_moof_and_mdat_header(
    sequence: u32,
    track_id: u32,
    decode_time: u64,
    samples: &[Sample],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(100 + samples.len() * 16);
    let mut data_offset_at = 0;
    put_box(&mut out, b"moof", |o| {
        put_box(o, b"mfhd", |o| {
            o.extend_from_slice(&0u32.to_be_bytes());
            o.extend_from_slice(&sequence.to_be_bytes());
        });
        put_box(o, b"traf", |o| {
            put_box(o, b"tfhd", |o| {
                o.extend_from_slice(&0x0002_0000u32.to_be_bytes()); // default-base-is-moof
                o.extend_from_slice(&track_id.to_be_bytes());
            });
            put_box(o, b"tfdt", |o| {
                o.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // version 1
                o.extend_from_slice(&decode_time.to_be_bytes());
            });
            put_box(o, b"trun", |o| {
                o.extend_from_slice(&0x0000_0f01u32.to_be_bytes());
                o.extend_from_slice(&(samples.len() as u32).to_be_bytes());
                data_offset_at = o.len();
                o.extend_from_slice(&0u32.to_be_bytes());
                for s in samples {
                    for v in [s.duration, s.size, s.flags, s.cto as u32] {
                        o.extend_from_slice(&v.to_be_bytes());
                    }
                }
            });
        });
    });
    let data_offset = (out.len() + 8) as u32;
    out[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    let data: u64 = samples.iter().map(|s| s.size as u64).sum();
    out.extend_from_slice(&((data + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    out
}

/// Adds `shift` ticks to the `tfdt` of a whole `moof`, in place. Errors when the result
/// does not fit the box's field.
pub fn shift_decode_time(moof: &mut [u8], shift: i64) -> Result<(), Mp4Error> {
    let (at, _) = find(&moof[8..], &[b"traf", b"tfdt"]).ok_or_else(|| bad("moof without tfdt"))?;
    let at = at + 8;
    let version = *moof.get(at + 8).ok_or_else(|| bad("short tfdt"))?;
    let field = at + 12;
    let moved = |old: u64| -> Result<u64, Mp4Error> {
        u64::try_from(old as i128 + shift as i128).map_err(|_| bad("decode time before zero"))
    };
    if version == 1 {
        let old = be64(moof, field).ok_or_else(|| bad("short tfdt"))?;
        let new = moved(old)?;
        moof[field..field + 8].copy_from_slice(&new.to_be_bytes());
    } else {
        let old = be32(moof, field).ok_or_else(|| bad("short tfdt"))? as u64;
        let new = u32::try_from(moved(old)?).map_err(|_| bad("decode time overflows tfdt"))?;
        moof[field..field + 4].copy_from_slice(&new.to_be_bytes());
    }
    Ok(())
}

/// Sets the fragmented movie's duration (`moov/mvex/mehd`, in the `mvhd` timescale) of a
/// whole `moov`, in place, when it has one.
pub fn set_movie_duration(moov: &mut [u8], duration_ms: u64) {
    let body = &moov[8..];
    let Some((mvhd_at, _)) = find(body, &[b"mvhd"]) else {
        return;
    };
    let v = body[mvhd_at + 8];
    let Some(timescale) = be32(body, mvhd_at + if v == 1 { 28 } else { 20 }) else {
        return;
    };
    let Some((mehd_at, _)) = find(body, &[b"mvex", b"mehd"]) else {
        return;
    };
    let at = 8 + mehd_at;
    let ticks = duration_ms * timescale as u64 / 1000;
    if moov.get(at + 8) == Some(&1) && moov.len() >= at + 20 {
        moov[at + 12..at + 20].copy_from_slice(&ticks.to_be_bytes());
    } else if moov.len() >= at + 16 {
        let t = u32::try_from(ticks).unwrap_or(u32::MAX);
        moov[at + 12..at + 16].copy_from_slice(&t.to_be_bytes());
    }
}

/// The sample entry of the first track of a `moov` body (`avc1` box and all).
pub fn sample_entry(moov_body: &[u8]) -> Option<&[u8]> {
    let (at, len) = find(moov_body, &[b"trak", b"mdia", b"minf", b"stbl", b"stsd"])?;
    let stsd = &moov_body[at..at + len];
    let entry = stsd.get(16..)?;
    let h = header(entry).ok()??;
    entry.get(..h.size as usize)
}

/// The first track's `mdhd` timescale.
pub fn timescale(moov_body: &[u8]) -> Option<u32> {
    let (at, _) = find(moov_body, &[b"trak", b"mdia", b"mdhd"])?;
    let v = *moov_body.get(at + 8)?;
    be32(moov_body, at + if v == 1 { 28 } else { 20 })
}

/// The RFC 6381 `codecs` value of a sample entry: `avc1.PPCCLL` for H.264, and for
/// H.265 `hvc1.<profile>.<compatibility>.<tier><level>.<constraints>`.
pub fn codec_string(entry: &[u8]) -> Option<String> {
    let kind = std::str::from_utf8(entry.get(4..8)?).ok()?.to_string();
    // Visual sample entry: 8 header + 78 bytes, then its boxes.
    let boxes = entry.get(86..)?;
    match kind.as_str() {
        "avc1" | "avc3" => {
            let (at, _) = find(boxes, &[b"avcC"])?;
            let c = boxes.get(at + 9..at + 12)?;
            Some(format!("{kind}.{:02x}{:02x}{:02x}", c[0], c[1], c[2]))
        }
        "hvc1" | "hev1" => {
            let (at, _) = find(boxes, &[b"hvcC"])?;
            let c = boxes.get(at + 8..at + 8 + 13)?;
            let space = ["", "A", "B", "C"][(c[1] >> 6) as usize];
            let tier = if c[1] & 0x20 != 0 { 'H' } else { 'L' };
            let compat = u32::from_be_bytes([c[2], c[3], c[4], c[5]]).reverse_bits();
            let mut s = format!("{kind}.{space}{}.{compat:x}.{tier}{}", c[1] & 0x1f, c[12]);
            let constraints = &c[6..12];
            let last = constraints.iter().rposition(|b| *b != 0);
            for b in constraints.iter().take(last.map_or(0, |i| i + 1)) {
                s.push_str(&format!(".{b:x}"));
            }
            Some(s)
        }
        _ => Some(kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(n: u32) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                duration: 100,
                size: 10 + i,
                flags: if i == 0 { 0x0200_0000 } else { 0x0101_0000 },
                cto: 0,
            })
            .collect()
    }

    #[test]
    fn a_built_moof_parses_back() -> Result<(), Box<dyn std::error::Error>> {
        let s = samples(5);
        let bytes = build_moof_and_mdat_header(7, 1, 123_456, &s);
        let h = header(&bytes)?.ok_or("no box header")?;
        let frag = parse_moof(&bytes[..h.size as usize], TrackDefaults::default())?;
        assert_eq!(frag.samples, s);
        assert_eq!(frag.decode_time, 123_456);
        assert_eq!(frag.sequence, 7);
        // The data starts right after the mdat header.
        assert_eq!(frag.data_offset, bytes.len() as u64);
        assert!(frag.samples[0].is_sync() && !frag.samples[1].is_sync());
        let mut moof = bytes[..h.size as usize].to_vec();
        shift_decode_time(&mut moof, -456)?;
        assert_eq!(
            parse_moof(&moof, TrackDefaults::default())?.decode_time,
            123_000
        );
        assert!(shift_decode_time(&mut moof, -200_000).is_err());
        Ok(())
    }
}
