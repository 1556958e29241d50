//! Playback of recorded time: `export` builds one MP4 for any range of a camera from its
//! segments and clips without re-encoding; `fmp4` reads and writes the boxes it rewrites.

pub mod export;

pub use export::{Export, ExportError, MAX_RANGE_MS, SkippedGap};
