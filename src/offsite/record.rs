//! A clip's index record as it is kept in the bucket: the clip row, the events it holds or
//! overlaps, and the SHA-256 and size of the sealed clip object, as JSON sealed in the same
//! container as the clips (AES-256-GCM under the box's key). One record per clip, written
//! after the clip itself, so the bucket's index grows with each upload and a stolen box
//! still leaves a searchable history. `unseal` turns any failure into a message that names
//! the object.

use crate::store::container::{OpenReader, SealWriter};
use crate::store::{ClipError, ClipKind, ClipRecord, ClipState, EventRecord, MasterKey};
use serde::{Deserialize, Serialize};

/// The record's format version.
const RECORD_VERSION: u32 = 1;
/// Records are small: chunks of 4 KiB.
const RECORD_CHUNK_BYTES: u32 = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexRecord {
    pub version: u32,
    /// Hex SHA-256 of the sealed clip object.
    pub sha256: String,
    pub sealed_bytes: u64,
    pub clip: StoredClip,
    pub events: Vec<StoredEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredClip {
    pub id: i64,
    pub camera_id: String,
    pub path: String,
    pub kind: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_ms: i64,
    pub frames: i64,
    pub plain_bytes: i64,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub labels: Vec<String>,
    pub pre_roll_ms: i64,
    pub post_roll_ms: i64,
    pub truncated: bool,
    pub key_id: String,
    pub run_start_ms: Option<i64>,
    pub timescale: u32,
    pub media_ticks: i64,
    pub init_bytes: i64,
    pub tier: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub id: i64,
    pub camera_id: String,
    pub label: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub max_score: f64,
    pub bbox: [f32; 4],
    pub clip_id: Option<i64>,
    pub acknowledged: bool,
    pub keep: bool,
    /// Its sealed snapshot, copied unchanged to `PREFIX/snapshots/ID.sntx`.
    #[serde(default)]
    pub snapshot: Option<StoredObject>,
}

/// An object the record vouches for: the SHA-256 and size of its sealed bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObject {
    pub sha256: String,
    pub sealed_bytes: u64,
}

impl IndexRecord {
    pub fn new(clip: &ClipRecord, events: &[EventRecord], sha256: &str, sealed_bytes: u64) -> Self {
        Self {
            version: RECORD_VERSION,
            sha256: sha256.into(),
            sealed_bytes,
            clip: StoredClip::from(clip),
            events: events.iter().map(StoredEvent::from).collect(),
        }
    }
}

impl From<&ClipRecord> for StoredClip {
    fn from(c: &ClipRecord) -> Self {
        Self {
            id: c.id,
            camera_id: c.camera_id.clone(),
            path: c.path.clone(),
            kind: c.kind.as_str().into(),
            start_ms: c.start_ms,
            end_ms: c.end_ms,
            duration_ms: c.duration_ms,
            frames: c.frames,
            plain_bytes: c.plain_bytes,
            codec: c.codec.clone(),
            width: c.width,
            height: c.height,
            labels: c.labels.clone(),
            pre_roll_ms: c.pre_roll_ms,
            post_roll_ms: c.post_roll_ms,
            truncated: c.state == ClipState::Truncated,
            key_id: c.key_id.clone(),
            run_start_ms: c.run_start_ms,
            timescale: c.timescale,
            media_ticks: c.media_ticks,
            init_bytes: c.init_bytes,
            tier: c.tier,
        }
    }
}

impl StoredClip {
    /// The index row to restore, with the sealed object's size.
    pub fn to_record(&self, sealed_bytes: u64) -> ClipRecord {
        ClipRecord {
            id: self.id,
            camera_id: self.camera_id.clone(),
            path: self.path.clone(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            duration_ms: self.duration_ms,
            frames: self.frames,
            plain_bytes: self.plain_bytes,
            file_bytes: sealed_bytes as i64,
            codec: self.codec.clone(),
            width: self.width,
            height: self.height,
            labels: self.labels.clone(),
            pre_roll_ms: self.pre_roll_ms,
            post_roll_ms: self.post_roll_ms,
            state: if self.truncated {
                ClipState::Truncated
            } else {
                ClipState::Complete
            },
            key_id: self.key_id.clone(),
            damage: String::new(),
            lost_ms: 0,
            kind: if self.kind == "segment" {
                ClipKind::Segment
            } else {
                ClipKind::Event
            },
            run_start_ms: self.run_start_ms,
            timescale: self.timescale,
            media_ticks: self.media_ticks,
            init_bytes: self.init_bytes,
            tier: self.tier,
            offsite: crate::store::OffsiteState::Uploaded,
        }
    }
}

impl From<&EventRecord> for StoredEvent {
    fn from(e: &EventRecord) -> Self {
        Self {
            id: e.id,
            camera_id: e.camera_id.clone(),
            label: e.label.clone(),
            start_ms: e.start_ms,
            end_ms: e.end_ms,
            max_score: e.max_score,
            bbox: e.bbox,
            clip_id: e.clip_id,
            acknowledged: e.acknowledged,
            keep: e.keep,
            snapshot: None,
        }
    }
}

impl StoredEvent {
    pub fn to_record(&self) -> EventRecord {
        EventRecord {
            id: self.id,
            camera_id: self.camera_id.clone(),
            label: self.label.clone(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            max_score: self.max_score,
            bbox: self.bbox,
            clip_id: self.clip_id,
            has_snapshot: false,
            acknowledged: self.acknowledged,
            keep: self.keep,
            // Not kept off-site: a restored event is not marked a scene change.
            scene_change: false,
            // Nor its review item and zones: the next start places it again.
            review_id: None,
            zones: Vec::new(),
        }
    }
}

/// The record as a sealed object.
pub fn seal(record: &IndexRecord, key: &MasterKey) -> std::io::Result<Vec<u8>> {
    let json = zeroize::Zeroizing::new(serde_json::to_vec(record)?);
    let mut w = SealWriter::new(Vec::new(), key, RECORD_CHUNK_BYTES)?;
    w.write(&json)?;
    let (bytes, _) = w.finish()?;
    Ok(bytes)
}

/// The plaintext of a small sealed object (a record, a snapshot), every chunk
/// authenticated; `object` names it in errors.
pub fn open_sealed(
    bytes: &[u8],
    key: &MasterKey,
    object: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    let file = crate::base::fds::memory_file(c"sentrix-record", bytes)
        .map_err(|e| format!("{object}: {e}"))?;
    let reader = OpenReader::open(file, key).map_err(|e| describe(object, &e))?;
    let plain = reader
        .read_at(0, reader.plain_len())
        .map_err(|e| describe(object, &e))?;
    Ok(zeroize::Zeroizing::new(plain))
}

/// Opens the sealed record `object` (its key, for messages).
pub fn unseal(bytes: &[u8], key: &MasterKey, object: &str) -> Result<IndexRecord, String> {
    let json = open_sealed(bytes, key, object)?;
    let record: IndexRecord = serde_json::from_slice(&json)
        .map_err(|e| format!("{object}: not a sentrix index record: {e}"))?;
    if record.version != RECORD_VERSION {
        return Err(format!(
            "{object}: index record version {} is not supported (this sentrix reads {RECORD_VERSION})",
            record.version
        ));
    }
    Ok(record)
}

/// A clip error on a bucket object, naming it; a wrong key names both key ids.
pub fn describe(object: &str, e: &ClipError) -> String {
    match e {
        ClipError::WrongKey { file, configured } => format!(
            "{object} is sealed with key {file}, but the configured key is {configured}: \
             restore needs the key of the box that uploaded it (`sentrix key-id` there)"
        ),
        ClipError::Tampered { chunk } => format!(
            "{object} is damaged or was tampered with (chunk {chunk} does not authenticate)"
        ),
        ClipError::Truncated(why) => {
            format!("{object} is damaged, cut short or was tampered with ({why})")
        }
        other => format!("{object}: {other}"),
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> IndexRecord {
        let clip = ClipRecord {
            id: 7,
            camera_id: "front".into(),
            path: "front/2026-11-29/1-event.mp4.sntx".into(),
            start_ms: 1000,
            end_ms: 9000,
            duration_ms: 8000,
            frames: 120,
            plain_bytes: 4000,
            file_bytes: 4100,
            codec: "h264".into(),
            width: 640,
            height: 360,
            labels: vec!["person".into()],
            pre_roll_ms: 3000,
            post_roll_ms: 3000,
            state: ClipState::Complete,
            key_id: "00".into(),
            damage: String::new(),
            lost_ms: 0,
            kind: ClipKind::Event,
            run_start_ms: None,
            timescale: 90000,
            media_ticks: 720000,
            init_bytes: 700,
            tier: 1,
            offsite: Default::default(),
        };
        IndexRecord::new(&clip, &[], "ab", 4100)
    }

    #[test]
    fn a_record_round_trips_and_hides_its_labels() -> Result<(), String> {
        let key = MasterKey::from_bytes([7; 32]);
        let sealed = seal(&sample(), &key).map_err(|e| e.to_string())?;
        assert!(!sealed.windows(6).any(|w| w == b"person"));
        assert_eq!(unseal(&sealed, &key, "x")?, sample());
        Ok(())
    }

    #[test]
    fn a_wrong_key_or_a_flipped_byte_names_the_object() -> Result<(), String> {
        let key = MasterKey::from_bytes([7; 32]);
        let mut sealed = seal(&sample(), &key).map_err(|e| e.to_string())?;
        let other = MasterKey::from_bytes([8; 32]);
        let e = unseal(&sealed, &other, "b/index/7.sntx")
            .err()
            .unwrap_or_default();
        assert!(e.contains("b/index/7.sntx is sealed with key"), "{e}");
        assert!(e.contains(&other.id().to_string()), "{e}");
        let last = sealed.len() - 20;
        sealed[last] ^= 1;
        let e = unseal(&sealed, &key, "b/index/7.sntx")
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("b/index/7.sntx is damaged"), "{e}");
        Ok(())
    }
}
