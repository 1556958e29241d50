//! NAL units of an Annex B (start-code delimited) H.264/H.265 access unit: splitting one
//! into its NAL units, telling picture data (VCL) from parameter sets, and repairing the
//! access units of cameras that send parameter sets again between the slices of one
//! picture.
//!
//! That last shape is common: `rtph264pay config-interval=-1` (and several cameras and
//! restreamers) put SPS/PPS before *every* IDR slice, so a picture coded as four slices
//! arrives as `SPS PPS slice SPS PPS slice …`. A parameter set starts a new access unit
//! by the standard's rules, so the parser downstream cuts the picture into pieces, and
//! every piece after the first has no timestamp and looks like a keyframe. Hoisting the
//! repeated parameter sets in front of the first slice makes the picture one access
//! unit again, with nothing dropped: every distinct parameter set is kept.

use super::Codec;

/// The NAL units of `au`, without their start codes (3- or 4-byte, any mix). Bytes before
/// the first start code are ignored; empty units are skipped.
pub fn split(au: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = first_start(au, 0).map(|(_, body)| body);
    std::iter::from_fn(move || {
        loop {
            let start = at?;
            let (end, next) = match first_start(au, start) {
                Some((code_at, body)) => (code_at, Some(body)),
                None => (au.len(), None),
            };
            at = next;
            // A 4-byte start code leaves its leading zero on the previous unit.
            let nal = trim_trailing_zeros(&au[start..end]);
            if !nal.is_empty() {
                return Some(nal);
            }
        }
    })
}

/// The first NAL unit of `au` from its header to the end of `au`: enough for `kind`
/// without scanning the unit for where it ends (the depayloader hands over one NAL per
/// buffer, so the scan would read every byte of the stream once more).
pub fn first_unit_head(au: &[u8]) -> Option<&[u8]> {
    let (_, body) = first_start(au, 0)?;
    Some(&au[body..]).filter(|nal| !nal.is_empty())
}

/// The first start code at or after `from`: (where it begins, where its NAL body begins).
fn first_start(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= b.len() {
        if b[i + 2] > 1 {
            // No start code can end at or before i + 2 here: skip the three bytes.
            i += 3;
        } else if b[i + 2] == 1 && b[i] == 0 && b[i + 1] == 0 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

fn trim_trailing_zeros(nal: &[u8]) -> &[u8] {
    let keep = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    &nal[..keep]
}

/// What a NAL unit is, as far as access-unit assembly cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalKind {
    /// Coded picture data (a slice).
    Picture,
    /// SPS, PPS, or (H.265) VPS.
    ParameterSet,
    /// Access unit delimiter.
    Delimiter,
    /// SEI and everything else.
    Other,
}

/// The NAL unit type number (5 bits for H.264, 6 for H.265).
pub fn nal_type(codec: Codec, nal: &[u8]) -> Option<u8> {
    let first = *nal.first()?;
    Some(match codec {
        Codec::H264 => first & 0x1f,
        Codec::H265 => (first >> 1) & 0x3f,
    })
}

pub fn kind(codec: Codec, nal: &[u8]) -> NalKind {
    match (codec, nal_type(codec, nal)) {
        (Codec::H264, Some(1..=5)) | (Codec::H265, Some(0..=31)) => NalKind::Picture,
        (Codec::H264, Some(7 | 8)) | (Codec::H265, Some(32..=34)) => NalKind::ParameterSet,
        (Codec::H264, Some(9)) | (Codec::H265, Some(35)) => NalKind::Delimiter,
        _ => NalKind::Other,
    }
}

/// The access unit rebuilt with every parameter set that follows its first slice moved
/// in front of that slice (a copy identical to one already there is dropped), or None
/// when the unit needs no repair — the common case, found by one scan and no copy.
pub fn hoist_parameter_sets(codec: Codec, au: &[u8]) -> Option<Vec<u8>> {
    let mut seen_picture = false;
    let needs_repair = split(au).any(|nal| match kind(codec, nal) {
        NalKind::Picture => {
            seen_picture = true;
            false
        }
        NalKind::ParameterSet => seen_picture,
        _ => false,
    });
    if !needs_repair {
        return None;
    }
    let nals: Vec<&[u8]> = split(au).collect();
    let first_picture = nals
        .iter()
        .position(|n| kind(codec, n) == NalKind::Picture)?;
    let mut head: Vec<&[u8]> = nals[..first_picture].to_vec();
    let mut tail: Vec<&[u8]> = Vec::with_capacity(nals.len());
    for nal in &nals[first_picture..] {
        match kind(codec, nal) {
            NalKind::ParameterSet if !head.contains(nal) => head.push(nal),
            NalKind::ParameterSet => {}
            _ => tail.push(nal),
        }
    }
    let mut out = Vec::with_capacity(au.len());
    for nal in head.iter().chain(&tail) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annexb(nals: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, n) in nals.iter().enumerate() {
            // Mix 3- and 4-byte start codes, as encoders do.
            out.extend_from_slice(if i % 2 == 0 {
                &[0, 0, 0, 1]
            } else {
                &[0, 0, 1]
            });
            out.extend_from_slice(n);
        }
        out
    }

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac];
    const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];
    const IDR1: &[u8] = &[0x65, 0x88, 0x84, 0x21];
    const IDR2: &[u8] = &[0x65, 0x00, 0x6e, 0x22];

    #[test]
    fn the_first_unit_head_is_found_after_either_start_code() {
        let au = annexb(&[PPS, IDR1]);
        assert_eq!(first_unit_head(&au).map(|n| n[0]), Some(PPS[0]));
        assert_eq!(first_unit_head(&au[1..]).map(|n| n[0]), Some(PPS[0]));
        assert_eq!(first_unit_head(&[0, 0, 1]), None);
        assert_eq!(first_unit_head(&[0x65, 0x88]), None);
    }

    #[test]
    fn splits_mixed_start_codes() {
        let au = annexb(&[SPS, PPS, IDR1]);
        let nals: Vec<&[u8]> = split(&au).collect();
        assert_eq!(nals, vec![SPS, PPS, IDR1]);
    }

    #[test]
    fn repeated_sets_between_slices_are_hoisted() {
        let au = annexb(&[SPS, PPS, IDR1, SPS, PPS, IDR2]);
        let fixed = hoist_parameter_sets(Codec::H264, &au).expect("needs repair");
        let nals: Vec<&[u8]> = split(&fixed).collect();
        assert_eq!(nals, vec![SPS, PPS, IDR1, IDR2]);
    }

    #[test]
    fn a_different_pps_after_a_slice_is_kept_in_front() {
        let pps2: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let au = annexb(&[SPS, PPS, IDR1, pps2, IDR2]);
        let fixed = hoist_parameter_sets(Codec::H264, &au).expect("needs repair");
        let nals: Vec<&[u8]> = split(&fixed).collect();
        assert_eq!(nals, vec![SPS, PPS, pps2, IDR1, IDR2]);
    }

    #[test]
    fn a_well_formed_unit_is_left_alone() {
        let aud: &[u8] = &[0x09, 0xf0];
        assert!(hoist_parameter_sets(Codec::H264, &annexb(&[aud, SPS, PPS, IDR1, IDR2])).is_none());
        assert!(hoist_parameter_sets(Codec::H264, &annexb(&[IDR1])).is_none());
        assert!(hoist_parameter_sets(Codec::H264, &[]).is_none());
    }

    #[test]
    fn h265_parameter_sets_are_recognised() {
        let vps: &[u8] = &[0x40, 0x01, 0x0c];
        let sps: &[u8] = &[0x42, 0x01, 0x01];
        let pps: &[u8] = &[0x44, 0x01, 0xc1];
        let idr: &[u8] = &[0x26, 0x01, 0xaf];
        let au = annexb(&[vps, sps, pps, idr, vps, sps, pps, idr]);
        let fixed = hoist_parameter_sets(Codec::H265, &au).expect("needs repair");
        let nals: Vec<&[u8]> = split(&fixed).collect();
        assert_eq!(nals, vec![vps, sps, pps, idr, idr]);
    }
}
