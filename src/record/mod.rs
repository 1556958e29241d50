//! Recording: turns access units from ingest into fragmented MP4 clips without
//! re-encoding. `mux` wraps GStreamer's mp4mux; the ring buffer and the recorder state
//! machine (pre/post-roll, triggers) build on it.

pub mod mux;
