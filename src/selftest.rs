//! `sentrix selftest`: runs a synthetic camera (videotestsrc → encoder, no network) through
//! the same pipeline tail, appsinks and supervisor as a real camera, and checks what comes
//! out: every access unit arrives, PTS strictly increases at the frame interval, the stream
//! starts on a keyframe and no GOP is longer than the encoder's keyframe interval, the caps
//! say what the recorder needs, and the decode branch delivers frames of the asked size.
//! Then the units are muxed to fragmented MP4 (no re-encode), sealed into a clip store in
//! a temp dir under a random key, read back and decrypted, and compared byte for byte; the
//! decrypted MP4's fragments must hold every frame.

use crate::ingest::pipeline::{DecodeSpec, Source, SyntheticSpec};
use crate::ingest::{AccessUnit, CameraSupervisor, Codec, SupervisorConfig};
use std::time::{Duration, Instant};

pub struct SelftestReport {
    pub summary: String,
}

/// Runs the check for one codec.
pub fn run(codec: Codec) -> Result<SelftestReport, String> {
    let spec = SyntheticSpec {
        codec,
        width: 320,
        height: 240,
        fps: 30,
        bitrate_kbps: 500,
        pattern: "ball",
        ..SyntheticSpec::default()
    };
    // Three seconds of video; the source is live, so it paces itself like a camera.
    let expected = 3 * spec.fps as usize;
    let mut config = SupervisorConfig::new(
        &format!("selftest-{}", codec.name()),
        Source::Synthetic(spec.clone()),
    );
    config.decode = Some(DecodeSpec {
        width: 160,
        height: 160,
        fps: 10,
    });
    // Emulated CPUs (qemu) encode slowly: be patient before calling the source dead.
    config.connect_timeout = Duration::from_secs(60);
    config.stall_timeout = Duration::from_secs(30);
    let started = Instant::now();
    let (supervisor, mut outputs) = CameraSupervisor::spawn(config).map_err(|e| e.to_string())?;
    let mut units: Vec<AccessUnit> = Vec::with_capacity(expected);
    let deadline = started + Duration::from_secs(120);
    while units.len() < expected && Instant::now() < deadline {
        match outputs.units.try_recv() {
            Ok(u) => {
                // Any reconnect would restart timestamps: that is a failure by itself.
                if u.stream.session != 1 {
                    return Err(format!("{}: the synthetic source restarted", codec.name()));
                }
                units.push(u);
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
        }
    }
    let status = supervisor.status().snapshot();
    let frame = outputs.frames.borrow().clone();
    supervisor.stop();
    let elapsed_s = started.elapsed().as_secs_f64();

    if units.len() < expected {
        return Err(format!(
            "{}: {} of {expected} access units arrived in {elapsed_s:.1} s (last error: {})",
            codec.name(),
            units.len(),
            status.last_error.as_deref().unwrap_or("none")
        ));
    }
    check_units(&units, &spec)?;
    let Some(frame) = frame else {
        return Err(format!(
            "{}: the decode branch delivered no frame",
            codec.name()
        ));
    };
    if (frame.width, frame.height) != (160, 160) || frame.rgb.size() != 160 * 160 * 3 {
        return Err(format!(
            "{}: decoded frame is {}x{} ({} bytes), expected 160x160 RGB",
            codec.name(),
            frame.width,
            frame.height,
            frame.rgb.size()
        ));
    }
    let clip = store_round_trip(&units).map_err(|e| format!("{}: {e}", codec.name()))?;
    let keyframes = units.iter().filter(|u| u.keyframe).count();
    Ok(SelftestReport {
        summary: format!(
            "{}: {} access units {}x{}, PTS monotonic at {} fps, {keyframes} keyframes, {} decoded frames {}x{}, {clip}, {elapsed_s:.1} s",
            codec.name(),
            units.len(),
            units[0].stream.width,
            units[0].stream.height,
            spec.fps,
            status.decoded_frames,
            frame.width,
            frame.height,
        ),
    })
}

fn check_units(units: &[AccessUnit], spec: &SyntheticSpec) -> Result<(), String> {
    let name = spec.codec.name();
    let first = &units[0];
    if !first.keyframe {
        return Err(format!("{name}: the stream does not start with a keyframe"));
    }
    let caps = first.stream.caps.to_string();
    if !caps.contains("stream-format=(string)byte-stream") || !caps.contains("alignment=(string)au")
    {
        return Err(format!(
            "{name}: access units have caps {caps}, expected byte-stream/au"
        ));
    }
    if (first.stream.width, first.stream.height) != (spec.width, spec.height) {
        return Err(format!(
            "{name}: stream is {}x{}, expected {}x{}",
            first.stream.width, first.stream.height, spec.width, spec.height
        ));
    }
    let frame_ns = 1_000_000_000 / spec.fps as u64;
    let mut since_key = 0u32;
    for (i, pair) in units.windows(2).enumerate() {
        let step = pair[1].pts_ns as i64 - pair[0].pts_ns as i64;
        if step <= 0 {
            return Err(format!(
                "{name}: PTS goes back at unit {}: {} then {}",
                i + 1,
                pair[0].pts_ns,
                pair[1].pts_ns
            ));
        }
        if (step - frame_ns as i64).unsigned_abs() > frame_ns / 2 {
            return Err(format!(
                "{name}: PTS step {step} ns at unit {} is not one frame ({frame_ns} ns)",
                i + 1
            ));
        }
        since_key = if pair[1].keyframe { 0 } else { since_key + 1 };
        if since_key >= spec.fps {
            return Err(format!(
                "{name}: no keyframe for {} units (GOP is {})",
                since_key + 1,
                spec.fps
            ));
        }
    }
    Ok(())
}

/// Muxes `units` (starting at a keyframe) into fragmented MP4 bytes.
pub fn mux_units(units: &[AccessUnit]) -> Result<Vec<u8>, String> {
    let first = units.first().ok_or("no units")?;
    let mut mux = crate::media::mux::Muxer::new(first.stream.clone(), 1000);
    for u in units {
        mux.push(u).map_err(|e| e.to_string())?;
    }
    mux.finish().map_err(|e| e.to_string())
}

/// mux → seal into a temp store → read back → compare. Returns a summary.
fn store_round_trip(units: &[AccessUnit]) -> Result<String, String> {
    use crate::store::{ClipMeta, MasterKey, RetentionPolicy, Store, StoreConfig};
    let mp4 = mux_units(units)?;
    let dir = std::env::temp_dir().join(format!("sentrix-selftest-{}", std::process::id()));
    let result = (|| {
        let key = MasterKey::random().map_err(|e| e.to_string())?;
        let config = StoreConfig {
            recordings_dir: dir.join("recordings"),
            database: dir.join("index.db"),
            chunk_size: 16 * 1024,
            retention: RetentionPolicy::KEEP_ALL,
            offsite_uploaded_first: false,
            review: Default::default(),
        };
        let (store, _) = Store::open(config, key).map_err(|e| e.to_string())?;
        let meta = ClipMeta {
            camera_id: "selftest".into(),
            start_ms: crate::base::clock::wall_ms(),
            ..Default::default()
        };
        let mut writer = store.begin_clip(meta).map_err(|e| e.to_string())?;
        // Feed it in uneven pieces, as a muxer delivers them.
        for piece in mp4.chunks(7777) {
            writer.write(piece).map_err(|e| e.to_string())?;
        }
        let record = writer.finish(None).map_err(|e| e.to_string())?;
        let reader = store.open_clip(record.id).map_err(|e| e.to_string())?;
        let back = reader
            .read_at(0, reader.plain_len())
            .map_err(|e| e.to_string())?;
        if back != mp4 {
            return Err("decrypted clip differs from the muxed MP4".to_string());
        }
        if record.frames as usize != units.len() {
            return Err(format!(
                "clip holds {} frames, {} were muxed",
                record.frames,
                units.len()
            ));
        }
        let on_disk =
            std::fs::read(store.recordings_dir().join(&record.path)).map_err(|e| e.to_string())?;
        if on_disk.windows(4).any(|w| w == b"ftyp" || w == b"moof") {
            return Err("plaintext MP4 boxes found in the sealed file".to_string());
        }
        Ok(format!(
            "clip {} ms {} frames {} bytes sealed and read back",
            record.duration_ms, record.frames, record.plain_bytes
        ))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}
