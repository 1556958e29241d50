//! One alarm picture, checked before anything decodes it: a JPEG whose frame header
//! (SOF) declares a size within the limit (a 60,000 x 60,000 header is refused from its
//! first bytes, with no decompression bomb), and its capture time from EXIF
//! (`DateTimeOriginal` with `SubSecTimeOriginal`) when it carries one. The capture time is
//! on the camera's clock, so only the differences between pictures are used.

/// A JPEG accepted for an alarm, with what its header says.
#[derive(Debug, Clone)]
pub struct Picture {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// EXIF capture time in ms on the camera's clock (naive, as if UTC).
    pub taken_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PictureError {
    #[error("not a JPEG")]
    NotJpeg,
    #[error("the JPEG has no frame header")]
    NoFrameHeader,
    #[error("the JPEG declares {width}x{height}, over the {max_megapixels} MP limit")]
    TooLarge {
        width: u32,
        height: u32,
        max_megapixels: f64,
    },
    #[error("the JPEG declares an empty picture")]
    Empty,
}

/// Checks `jpeg`'s header against `max_megapixels` and reads its capture time.
pub fn check(jpeg: Vec<u8>, max_megapixels: f64) -> Result<Picture, PictureError> {
    let (width, height) = frame_size(&jpeg)?;
    if width == 0 || height == 0 {
        return Err(PictureError::Empty);
    }
    let pixels = f64::from(width) * f64::from(height);
    if pixels > max_megapixels * 1e6 || width > 16_384 || height > 16_384 {
        return Err(PictureError::TooLarge {
            width,
            height,
            max_megapixels,
        });
    }
    let taken_ms = exif_taken_ms(&jpeg);
    Ok(Picture {
        jpeg,
        width,
        height,
        taken_ms,
    })
}

/// Width and height from the first start-of-frame marker, walking the marker segments
/// from SOI (each has a 2-byte big-endian length) up to the start of scan.
fn frame_size(b: &[u8]) -> Result<(u32, u32), PictureError> {
    if b.len() < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return Err(PictureError::NotJpeg);
    }
    let mut at = 2;
    while at + 4 <= b.len() {
        if b[at] != 0xFF {
            return Err(PictureError::NoFrameHeader);
        }
        let marker = b[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        if marker == 0x01 || (0xD0..=0xD7).contains(&marker) {
            at += 2; // markers without a length
            continue;
        }
        let len = usize::from(u16::from_be_bytes([b[at + 2], b[at + 3]]));
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let seg = b
                .get(at + 4..at + 2 + len)
                .ok_or(PictureError::NoFrameHeader)?;
            if seg.len() < 5 {
                return Err(PictureError::NoFrameHeader);
            }
            let height = u32::from(u16::from_be_bytes([seg[1], seg[2]]));
            let width = u32::from(u16::from_be_bytes([seg[3], seg[4]]));
            return Ok((width, height));
        }
        if marker == 0xDA || len < 2 {
            return Err(PictureError::NoFrameHeader);
        }
        at += 2 + len;
    }
    Err(PictureError::NoFrameHeader)
}

/// The EXIF capture time in ms (DateTimeOriginal, else DateTime, plus the sub-seconds).
fn exif_taken_ms(jpeg: &[u8]) -> Option<i64> {
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .ok()?;
    let ascii = |tag| match exif.get_field(tag, exif::In::PRIMARY).map(|f| &f.value) {
        Some(exif::Value::Ascii(v)) => v.first().map(|s| String::from_utf8_lossy(s).into_owned()),
        _ => None,
    };
    let when = ascii(exif::Tag::DateTimeOriginal).or_else(|| ascii(exif::Tag::DateTime))?;
    let naive = chrono::NaiveDateTime::parse_from_str(when.trim(), "%Y:%m:%d %H:%M:%S").ok()?;
    let mut ms = naive.and_utc().timestamp_millis();
    if let Some(sub) = ascii(exif::Tag::SubSecTimeOriginal) {
        ms += sub_second_ms(sub.trim());
    }
    Some(ms)
}

/// "5" → 500, "25" → 250, "123456" → 123 (a decimal fraction of a second).
fn sub_second_ms(digits: &str) -> i64 {
    let digits: String = digits
        .chars()
        .take_while(char::is_ascii_digit)
        .take(3)
        .collect();
    if digits.is_empty() {
        return 0;
    }
    let scale = 10i64.pow(3 - digits.len() as u32);
    digits.parse::<i64>().unwrap_or(0) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 of 16 bytes, a baseline SOF0 of `w`x`h`, then SOS.
    fn header(w: u16, h: u16) -> Vec<u8> {
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        b.extend_from_slice(&[0u8; 14]);
        b.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
        b.extend_from_slice(&h.to_be_bytes());
        b.extend_from_slice(&w.to_be_bytes());
        b.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
        b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x02]);
        b
    }

    #[test]
    fn the_size_comes_from_the_frame_header() {
        let p = check(header(640, 480), 40.0).unwrap();
        assert_eq!((p.width, p.height), (640, 480));
        assert_eq!(p.taken_ms, None);
    }

    #[test]
    fn a_bomb_is_refused_from_its_header() {
        let e = check(header(60_000, 60_000), 40.0).unwrap_err();
        assert!(
            matches!(e, PictureError::TooLarge { width: 60_000, .. }),
            "{e}"
        );
        assert_eq!(
            check(header(0, 480), 40.0).unwrap_err(),
            PictureError::Empty
        );
    }

    #[test]
    fn what_is_not_a_jpeg_or_has_no_frame_is_refused() {
        assert_eq!(
            check(b"GIF89a".to_vec(), 40.0).unwrap_err(),
            PictureError::NotJpeg
        );
        let mut cut = header(640, 480);
        cut.truncate(22);
        assert_eq!(check(cut, 40.0).unwrap_err(), PictureError::NoFrameHeader);
        let no_sof = vec![0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02, 0x00];
        assert_eq!(
            check(no_sof, 40.0).unwrap_err(),
            PictureError::NoFrameHeader
        );
    }

    #[test]
    fn sub_seconds_are_a_decimal_fraction() {
        assert_eq!(sub_second_ms("5"), 500);
        assert_eq!(sub_second_ms("25"), 250);
        assert_eq!(sub_second_ms("123456"), 123);
        assert_eq!(sub_second_ms(""), 0);
    }
}
