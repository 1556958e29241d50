//! Fragmented MP4 written from ingest's access units with no decoding, for the live view
//! and for recordings: an init segment (`ftyp` + `moov` with the codec configuration
//! taken from a keyframe's parameter sets), then `moof` + `mdat` fragments. The live view
//! sends one picture per fragment (at most a frame behind the camera); the recorder
//! (`record::mux`) groups about a second of pictures. Samples are length-prefixed (the
//! MP4 form); parameter sets and delimiters stay out of them, as `avc1`/`hvc1` require.

use crate::media::boxes::{Sample, build_moof_and_mdat_header, codec_string, put_box};
use crate::media::nal::{self, NalKind};
use crate::media::{AccessUnit, Codec, StreamInfo};

/// Ticks per second of the video track (live and recorded).
pub const TIMESCALE: u32 = 90_000;
const TRACK_ID: u32 = 1;

/// `ns` in track ticks.
pub fn ticks(ns: u64) -> u64 {
    (ns as u128 * TIMESCALE as u128 / 1_000_000_000) as u64
}

/// The init segment of one stream, with what a player needs to know before using it.
#[derive(Debug)]
pub struct LiveInit {
    pub bytes: bytes::Bytes,
    /// RFC 6381 codec string, e.g. `avc1.64001f`, for `MediaSource.isTypeSupported`.
    pub codec: String,
    pub width: u32,
    pub height: u32,
}

/// The init segment for `stream`, configured from the parameter sets in `keyframe`
/// (ingest repeats them at every keyframe); None when they are missing.
pub fn init_segment(stream: &StreamInfo, keyframe: &[u8]) -> Option<LiveInit> {
    let sets = parameter_sets(stream.codec, keyframe);
    let entry = match stream.codec {
        Codec::H264 => avc1(stream, &sets)?,
        Codec::H265 => hvc1(stream, &sets)?,
    };
    let mut bytes = Vec::with_capacity(800);
    put_box(&mut bytes, b"ftyp", |o| {
        o.extend_from_slice(b"iso5");
        o.extend_from_slice(&0u32.to_be_bytes());
        for brand in [b"iso5", b"iso6", b"mp41"] {
            o.extend_from_slice(brand);
        }
    });
    put_box(&mut bytes, b"moov", |o| moov(o, stream, &entry));
    let codec = codec_string(&entry)?;
    Some(LiveInit {
        bytes: bytes.into(),
        codec,
        width: stream.width,
        height: stream.height,
    })
}

fn full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version_flags: u32,
    body: impl FnOnce(&mut Vec<u8>),
) {
    put_box(out, kind, |o| {
        o.extend_from_slice(&version_flags.to_be_bytes());
        body(o);
    });
}

fn put_u32s(o: &mut Vec<u8>, values: &[u32]) {
    for v in values {
        o.extend_from_slice(&v.to_be_bytes());
    }
}

/// The identity matrix of `mvhd` and `tkhd`.
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn moov(o: &mut Vec<u8>, stream: &StreamInfo, entry: &[u8]) {
    full_box(o, b"mvhd", 0, |o| {
        put_u32s(o, &[0, 0, TIMESCALE, 0, 0x0001_0000]); // times, timescale, duration, rate
        o.extend_from_slice(&[0x01, 0x00, 0, 0]); // volume, reserved
        put_u32s(o, &[0, 0]);
        put_u32s(o, &MATRIX);
        put_u32s(o, &[0; 6]);
        put_u32s(o, &[TRACK_ID + 1]);
    });
    put_box(o, b"trak", |o| {
        full_box(o, b"tkhd", 0x0000_0003, |o| {
            // times, track, reserved, duration, reserved x2, layer+group, volume+reserved
            put_u32s(o, &[0, 0, TRACK_ID, 0, 0, 0, 0, 0, 0]);
            put_u32s(o, &MATRIX);
            put_u32s(o, &[stream.width << 16, stream.height << 16]);
        });
        put_box(o, b"mdia", |o| {
            full_box(o, b"mdhd", 0, |o| {
                put_u32s(o, &[0, 0, TIMESCALE, 0]);
                o.extend_from_slice(&[0x55, 0xc4, 0, 0]); // language "und"
            });
            full_box(o, b"hdlr", 0, |o| {
                put_u32s(o, &[0]);
                o.extend_from_slice(b"vide");
                put_u32s(o, &[0, 0, 0]);
                o.extend_from_slice(b"sentrix video\0");
            });
            put_box(o, b"minf", |o| minf(o, entry));
        });
    });
    put_box(o, b"mvex", |o| {
        full_box(o, b"trex", 0, |o| put_u32s(o, &[TRACK_ID, 1, 0, 0, 0]));
    });
}

fn minf(o: &mut Vec<u8>, entry: &[u8]) {
    full_box(o, b"vmhd", 1, |o| put_u32s(o, &[0, 0]));
    put_box(o, b"dinf", |o| {
        full_box(o, b"dref", 0, |o| {
            put_u32s(o, &[1]);
            full_box(o, b"url ", 1, |_| {});
        });
    });
    put_box(o, b"stbl", |o| {
        full_box(o, b"stsd", 0, |o| {
            put_u32s(o, &[1]);
            o.extend_from_slice(entry);
        });
        for kind in [b"stts", b"stsc", b"stco"] {
            full_box(o, kind, 0, |o| put_u32s(o, &[0]));
        }
        full_box(o, b"stsz", 0, |o| put_u32s(o, &[0, 0]));
    });
}

/// A visual sample entry of `kind` holding `config` (avcC or hvcC).
fn visual_entry(kind: &[u8; 4], stream: &StreamInfo, config: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(120 + config.len());
    put_box(&mut out, kind, |o| {
        o.extend_from_slice(&[0; 6]);
        o.extend_from_slice(&1u16.to_be_bytes()); // data reference index
        o.extend_from_slice(&[0; 16]);
        o.extend_from_slice(&(stream.width as u16).to_be_bytes());
        o.extend_from_slice(&(stream.height as u16).to_be_bytes());
        put_u32s(o, &[0x0048_0000, 0x0048_0000, 0]); // 72 dpi, reserved
        o.extend_from_slice(&1u16.to_be_bytes()); // frames per sample
        o.extend_from_slice(&[0; 32]); // compressor name
        o.extend_from_slice(&[0x00, 0x18, 0xff, 0xff]); // depth 24, pre-defined -1
        o.extend_from_slice(&config);
    });
    out
}

fn avc1(stream: &StreamInfo, sets: &[&[u8]]) -> Option<Vec<u8>> {
    let of_type = |t: u8| -> Vec<&[u8]> {
        sets.iter()
            .copied()
            .filter(|n| nal::nal_type(Codec::H264, n) == Some(t))
            .collect()
    };
    let (sps, pps) = (of_type(7), of_type(8));
    let first = sps.first()?;
    if pps.is_empty() || first.len() < 4 {
        return None;
    }
    let mut config = Vec::new();
    put_box(&mut config, b"avcC", |o| {
        o.extend_from_slice(&[1, first[1], first[2], first[3], 0xff]);
        o.push(0xe0 | sps.len().min(31) as u8);
        push_sized(o, &sps[..sps.len().min(31)]);
        o.push(pps.len().min(255) as u8);
        push_sized(o, &pps[..pps.len().min(255)]);
        if matches!(first[1], 100 | 110 | 122 | 144) {
            // High profiles: 4:2:0, 8 bits (what cameras send), no SPS extensions.
            o.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0]);
        }
    });
    Some(visual_entry(b"avc1", stream, config))
}

fn push_sized(o: &mut Vec<u8>, nals: &[&[u8]]) {
    for n in nals {
        o.extend_from_slice(&(n.len() as u16).to_be_bytes());
        o.extend_from_slice(n);
    }
}

fn hvc1(stream: &StreamInfo, sets: &[&[u8]]) -> Option<Vec<u8>> {
    let sps = sets
        .iter()
        .find(|n| nal::nal_type(Codec::H265, n) == Some(33))?;
    // The SPS's profile_tier_level: 12 bytes after the 2-byte header and one byte of ids.
    let rbsp = unescape(sps);
    let ptl = rbsp.get(3..15)?;
    let mut config = Vec::new();
    put_box(&mut config, b"hvcC", |o| {
        o.push(1);
        o.extend_from_slice(ptl);
        o.extend_from_slice(&[0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f]);
        let arrays: Vec<(u8, Vec<&[u8]>)> = [32u8, 33, 34]
            .iter()
            .map(|&t| {
                let of: Vec<&[u8]> = sets
                    .iter()
                    .copied()
                    .filter(|n| nal::nal_type(Codec::H265, n) == Some(t))
                    .collect();
                (t, of)
            })
            .filter(|(_, of)| !of.is_empty())
            .collect();
        o.push(arrays.len() as u8);
        for (t, of) in arrays {
            o.push(0x80 | t); // array complete
            o.extend_from_slice(&(of.len() as u16).to_be_bytes());
            push_sized(o, &of);
        }
    });
    Some(visual_entry(b"hvc1", stream, config))
}

/// A NAL unit without its emulation-prevention bytes (00 00 03 → 00 00).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// One picture as a fragment: `moof` + `mdat`, decoding at `dts_ticks` for
/// `duration_ticks`, presented `cto_ticks` later.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub dts_ticks: u64,
    pub duration_ticks: u32,
    pub cto_ticks: u32,
}

pub fn fragment(sequence: u32, unit: &AccessUnit, t: Timing) -> Option<Vec<u8>> {
    let map = unit.data.map_readable().ok()?;
    // Collected once: the header needs the sample's size before its bytes are written.
    let nals: Vec<&[u8]> = sample_nals(unit.stream.codec, &map).collect();
    let sample = Sample {
        duration: t.duration_ticks,
        size: nals.iter().map(|n| n.len() as u32 + 4).sum(),
        flags: sample_flags(unit.keyframe),
        cto: t.cto_ticks as i32,
    };
    // The samples are written once, straight after the header.
    let mut out = build_moof_and_mdat_header(sequence, TRACK_ID, t.dts_ticks, &[sample]);
    write_sample(nals, &mut out);
    Some(out)
}

/// Appends a fragment of several pictures to `out`: `samples` (durations, sizes, flags,
/// offsets) and their `data` (what `append_sample` wrote for each, in order), decoding
/// from `dts_ticks`.
pub fn append_fragment(
    out: &mut Vec<u8>,
    sequence: u32,
    dts_ticks: u64,
    samples: &[Sample],
    data: &[u8],
) {
    out.extend_from_slice(&build_moof_and_mdat_header(
        sequence, TRACK_ID, dts_ticks, samples,
    ));
    out.extend_from_slice(data);
}

/// The parameter sets (SPS, PPS and, for H.265, VPS) in an Annex B access unit, in order,
/// each once: cameras repeat them between the slices of one picture.
pub fn parameter_sets(codec: Codec, au: &[u8]) -> Vec<&[u8]> {
    let mut sets: Vec<&[u8]> = Vec::new();
    for n in nal::split(au).filter(|n| nal::kind(codec, n) == NalKind::ParameterSet) {
        if !sets.contains(&n) {
            sets.push(n);
        }
    }
    sets
}

/// Appends the MP4 sample of an Annex B access unit to `out`: its slices and SEI, each
/// prefixed with its 4-byte length. Returns the sample's size in bytes.
pub fn append_sample(codec: Codec, au: &[u8], out: &mut Vec<u8>) -> u32 {
    let before = out.len();
    // Straight from the scan, with no list per picture: recording calls this per picture.
    write_sample(sample_nals(codec, au), out);
    (out.len() - before) as u32
}

/// The NAL units of an access unit that belong in its MP4 sample: slices and SEI.
fn sample_nals(codec: Codec, au: &[u8]) -> impl Iterator<Item = &[u8]> {
    nal::split(au).filter(move |n| matches!(nal::kind(codec, n), NalKind::Picture | NalKind::Other))
}

/// Writes `nals`, each prefixed with its 4-byte length.
fn write_sample<'a>(nals: impl IntoIterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    for n in nals {
        out.extend_from_slice(&(n.len() as u32).to_be_bytes());
        out.extend_from_slice(n);
    }
}

/// `trun` sample flags: a sync sample, or one that depends on others and is not sync.
pub fn sample_flags(keyframe: bool) -> u32 {
    if keyframe { 0x0200_0000 } else { 0x0101_0000 }
}
