//! What an alarm message carries: its subject and its JPEG pictures, taken from a message
//! already held within `alarms.max_message_mb` (smtp.rs caps it while reading). The MIME
//! structure is parsed by `mail-parser`; attached MP4 or AVI videos are kept whole for
//! video.rs; a message of more than `MAX_PARTS` parts (a MIME
//! bomb) is refused whole, and at most `max_pictures` pictures are taken, each checked by
//! picture.rs before anything decodes it.

use super::picture::{self, Picture, PictureError};

/// The most MIME parts a message may have (cameras send a handful).
pub const MAX_PARTS: usize = 1_000;

#[derive(Debug, Default)]
pub struct Contents {
    pub subject: Option<String>,
    pub pictures: Vec<Picture>,
    /// Pictures refused (bad header, too large), with why, for the log and the audit.
    pub refused: Vec<PictureError>,
    /// Pictures beyond `max_pictures`, ignored.
    pub ignored: usize,
    /// Attached videos (MP4 or AVI), at most `MAX_VIDEOS`.
    pub videos: Vec<Vec<u8>>,
}

/// Videos taken from one message at most.
pub const MAX_VIDEOS: usize = 2;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MimeError {
    #[error("the message could not be parsed")]
    Unparsable,
    #[error("the message has {0} MIME parts, over the limit of {MAX_PARTS}")]
    TooManyParts(usize),
}

/// The subject and the pictures of `raw`, in order.
pub fn contents(
    raw: &[u8],
    max_pictures: usize,
    max_megapixels: f64,
) -> Result<Contents, MimeError> {
    let message = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or(MimeError::Unparsable)?;
    if message.parts.len() > MAX_PARTS {
        return Err(MimeError::TooManyParts(message.parts.len()));
    }
    let mut out = Contents {
        subject: message.subject().map(str::to_string),
        ..Contents::default()
    };
    for part in &message.parts {
        let body = part.contents();
        if super::video::looks_like_video(body) && is_binary(part) {
            match out.videos.len() < MAX_VIDEOS {
                true => out.videos.push(body.to_vec()),
                false => out.ignored += 1,
            }
            continue;
        }
        if !is_picture(part, body) {
            continue;
        }
        if out.pictures.len() >= max_pictures {
            out.ignored += 1;
            continue;
        }
        match picture::check(body.to_vec(), max_megapixels) {
            Ok(p) => out.pictures.push(p),
            Err(e) => out.refused.push(e),
        }
    }
    Ok(out)
}

/// A binary part typed `image/jpeg` (or `image/jpg`), or any binary part that starts like
/// a JPEG (cameras label attachments `application/octet-stream`).
fn is_picture(part: &mail_parser::MessagePart<'_>, body: &[u8]) -> bool {
    use mail_parser::MimeHeaders;
    if !is_binary(part) {
        return false;
    }
    let typed_jpeg = part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("image")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("jpeg") || s.eq_ignore_ascii_case("jpg"))
    });
    typed_jpeg || body.starts_with(&[0xFF, 0xD8])
}

fn is_binary(part: &mail_parser::MessagePart<'_>) -> bool {
    use mail_parser::PartType;
    matches!(part.body, PartType::Binary(_) | PartType::InlineBinary(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bomb_of_parts_is_refused_whole() {
        let mut m = String::from(
            "Subject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
        );
        for _ in 0..(MAX_PARTS + 10) {
            m.push_str("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        m.push_str("--b--\r\n");
        let e = contents(m.as_bytes(), 20, 40.0).unwrap_err();
        assert!(
            matches!(e, MimeError::TooManyParts(n) if n > MAX_PARTS),
            "{e}"
        );
    }

    #[test]
    fn deep_nesting_is_parsed_or_refused_without_a_crash() {
        let mut m = String::from("Subject: deep\r\nMIME-Version: 1.0\r\n");
        for i in 0..10_000 {
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            ));
        }
        m.push_str("Content-Type: text/plain\r\n\r\nx\r\n");
        let started = std::time::Instant::now();
        let r = contents(m.as_bytes(), 20, 40.0);
        assert!(r.is_err() || r.is_ok_and(|c| c.pictures.is_empty()));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_message_without_pictures_has_none() {
        let m = "Subject: Motion at gate\r\n\r\nhello\r\n";
        let c = contents(m.as_bytes(), 20, 40.0).unwrap();
        assert_eq!(c.subject.as_deref(), Some("Motion at gate"));
        assert!(c.pictures.is_empty());
    }
}
