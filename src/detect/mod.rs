//! Object detection: a YOLO ONNX model run on CPU through tract (`model`), the output
//! layouts and NMS (`decode`), and still-image I/O (`image`). Motion gating, zones and
//! event tracking build on these.

pub mod decode;
pub mod image;
pub mod model;

pub use decode::{Detection, Layout};
pub use model::{Labeled, Model, ModelError};
