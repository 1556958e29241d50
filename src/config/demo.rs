//! What a `demo://` camera URL asks for (`demo://h265?width=1280&height=720&fps=15&bitrate=2000`),
//! parsed and checked here so `check-config` can name a bad option; ingest/demo.rs serves it.

use crate::base::redact::CameraUrl;
use crate::media::Codec;

/// What a `demo://` URL asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSpec {
    pub codec: Codec,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// videotestsrc pattern: `ball` (a moving ball, compresses well) or `snow` (noise: the
    /// encoder spends the whole bitrate, as a busy real scene does).
    pub pattern: &'static str,
    /// Seconds the picture moves, then seconds it rests (frozen), over and over; 0 rest:
    /// it always moves. A `demo://` URL rests by default (`move=6&rest=14`), so a
    /// newcomer's first minute shows events that start and end, and clips that play
    /// (the `ball` pattern only, unless `rest` is given).
    pub move_s: u32,
    pub rest_s: u32,
}

impl Default for DemoSpec {
    fn default() -> Self {
        Self {
            codec: Codec::H264,
            width: 1280,
            height: 720,
            fps: 15,
            bitrate_kbps: 2000,
            pattern: "ball",
            move_s: 6,
            rest_s: 0,
        }
    }
}

const PATTERNS: [&str; 3] = ["ball", "snow", "smpte"];

impl DemoSpec {
    pub fn from_url(url: &CameraUrl) -> Result<Self, String> {
        // Parse the redacted form: a demo URL has no password, and if it had one we must
        // not use it in a message.
        let url = url::Url::parse(&url.redacted()).map_err(|e| e.to_string())?;
        let codec = match url.host_str().unwrap_or("") {
            "" | "h264" => Codec::H264,
            "h265" => Codec::H265,
            other => return Err(format!("demo codec {other:?} is not h264 or h265")),
        };
        let mut spec = DemoSpec {
            codec,
            ..DemoSpec::default()
        };
        // The ball rests unless told otherwise; noise (a load test) never does.
        let mut rest_s = None;
        for (key, value) in url.query_pairs() {
            if key == "pattern" {
                spec.pattern = PATTERNS
                    .into_iter()
                    .find(|p| *p == value)
                    .ok_or_else(|| format!("demo pattern {value:?} is not one of {PATTERNS:?}"))?;
                continue;
            }
            let (slot, min, max) = match key.as_ref() {
                "width" => (&mut spec.width, 16, 3840),
                "height" => (&mut spec.height, 16, 2160),
                "fps" => (&mut spec.fps, 1, 60),
                "bitrate" => (&mut spec.bitrate_kbps, 50, 50_000),
                "move" => (&mut spec.move_s, 1, 3600),
                "rest" => (rest_s.insert(0), 0, 3600),
                other => {
                    return Err(format!(
                        "unknown demo option {other:?} (width, height, fps, bitrate, pattern, move, rest)"
                    ));
                }
            };
            let n: u32 = value
                .parse()
                .map_err(|_| format!("demo option {key}={value:?} is not a whole number"))?;
            if !(min..=max).contains(&n) {
                return Err(format!(
                    "demo option {key}={n} is out of range {min}..={max}"
                ));
            }
            *slot = n;
        }
        spec.rest_s = rest_s.unwrap_or(if spec.pattern == "ball" { 14 } else { 0 });
        if !spec.width.is_multiple_of(2) || !spec.height.is_multiple_of(2) {
            return Err("demo width and height must be even".into());
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> Result<DemoSpec, String> {
        DemoSpec::from_url(&CameraUrl::parse(url).unwrap())
    }

    #[test]
    fn demo_urls() {
        assert_eq!(spec("demo://").unwrap().codec, Codec::H264);
        let s = spec("demo://h265?width=640&height=360&fps=10&bitrate=500").unwrap();
        assert_eq!(
            (s.codec, s.width, s.height, s.fps, s.bitrate_kbps),
            (Codec::H265, 640, 360, 10, 500)
        );
        assert_eq!((s.move_s, s.rest_s), (6, 14));
        let s = spec("demo://?move=3&rest=0").unwrap();
        assert_eq!((s.move_s, s.rest_s), (3, 0));
        assert!(spec("demo://vp8").unwrap_err().contains("vp8"));
        assert!(spec("demo://?fps=0").unwrap_err().contains("out of range"));
        assert!(
            spec("demo://?colour=red")
                .unwrap_err()
                .contains("unknown demo option")
        );
    }
}
