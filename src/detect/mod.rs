//! Object detection: a YOLO ONNX model run on CPU through tract (`model`), the output
//! layouts and NMS (`decode`), still-image I/O (`image`), the motion gate (`motion`),
//! zones and masks (`zones`), the IoU tracker that turns detections into events
//! (`tracker`), box drawing for snapshots (`draw`), and the per-camera detector thread
//! that ties them to the decode branch, the store, the event bus and the recorder
//! (`runner`).

pub mod decode;
pub mod draw;
pub mod image;
pub mod model;
pub mod motion;
pub mod runner;
pub mod surgery;
pub mod tracker;
pub mod zones;

pub use decode::{Detection, Layout};
pub use model::Precision;
pub use model::{Labeled, Model, ModelError};
pub use runner::{DetectorRunner, DetectorSettings, EventBus, EventNotice, InferencePool};

/// Loads the configured model for `run` (None: motion-only detection).
pub fn load_configured_model(config: &crate::config::Config) -> Result<Option<Model>, ModelError> {
    let d = &config.detect;
    let Some(path) = d.model.as_ref().filter(|_| d.enabled) else {
        return Ok(None);
    };
    let labels = model::load_labels(d.labels_file.as_deref())?;
    Model::load_with(path, d.input_size as usize, d.format, labels, d.precision).map(Some)
}
