//! `sentrix detect`: runs a YOLO ONNX model on images and prints the detections.

use crate::detect::Layout;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    model: PathBuf,
    /// Square input size in pixels (multiple of 32).
    #[arg(long, default_value_t = 416)]
    size: usize,
    /// The output layout; detected from the output shape when not given.
    #[arg(long, value_enum)]
    format: Option<Layout>,
    #[arg(long)]
    labels_file: Option<PathBuf>,
    #[arg(long, default_value_t = 0.3)]
    min_score: f32,
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(a: Args) -> ExitCode {
    super::report(crate::tools::detect(
        &a.model,
        a.size,
        a.format,
        a.labels_file.as_deref(),
        a.min_score,
        &a.images,
    ))
}
