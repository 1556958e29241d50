//! Media: everything that reads or writes MP4 boxes and the units they carry, in one place
//! below the pipeline stages. `unit` holds the access units and frames that flow between
//! stages, `nal` reads H.264/H.265 NAL units, `boxes` parses and writes the fragmented-MP4
//! boxes playback rewrites, `fmp4` builds init segments and fragments from access units,
//! `mux` groups a clip's units into fragments, `mp4scan` finds where a (crash-cut) file's
//! last complete fragment ends, and `feed` is one camera's live fMP4 feed.

pub mod boxes;
pub mod feed;
pub mod fmp4;
pub mod mp4scan;
pub mod mux;
pub mod nal;
pub mod unit;

pub use unit::{AccessUnit, Codec, Frame, StreamInfo};
