//! Recording: turns access units from ingest into fragmented MP4 clips without
//! re-encoding. `anchor` gives frames their wall-clock time. `ring` keeps the pre-roll, `recorder` is the per-camera state machine
//! (triggers, post-roll, splitting), `mux` writes fragmented MP4, `snapshot` encodes
//! thumbnails, `segmenter` records continuously in gapless segments, `runner` drives one
//! recorder or segmenter per camera on its own thread.

pub mod anchor;
pub mod recorder;
pub mod ring;
pub mod runner;
pub mod segmenter;
pub mod snapshot;
