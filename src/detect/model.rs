//! `Model`: a YOLO ONNX file loaded once through tract with a concrete input shape,
//! optimised, and shared (`run` takes `&self`, so a pool of workers can use one plan).
//! Preprocessing follows the layout: YOLOX wants BGR 0..255 placed top-left and padded
//! with 114; YOLOv5/v8 want RGB 0..1 centred in a letterbox padded with 114/255. Boxes come
//! back in the source image's pixels.

use super::decode::{self, Detection, Layout};
use super::image::{self, RgbImage};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tract_onnx::prelude::*;

/// COCO's 80 class names in the order YOLO models trained on COCO output them.
pub const COCO_LABELS: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("labels file {path}: {reason}")]
    Labels { path: PathBuf, reason: String },
    #[error("inference failed: {0}")]
    Run(String),
    #[error("{0}")]
    Image(String),
}

/// One detection with its label, in source-image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Labeled {
    pub label: String,
    pub det: Detection,
}

/// How a source image was placed in the square input: `input = source * scale + offset`.
#[derive(Debug, Clone, Copy)]
pub struct Letterbox {
    pub scale: f32,
    pub dx: f32,
    pub dy: f32,
    pub width: u32,
    pub height: u32,
}

impl Letterbox {
    fn unmap(&self, d: &Detection) -> Detection {
        let (w, h) = (self.width as f32, self.height as f32);
        let fx = |x: f32| ((x - self.dx) / self.scale).clamp(0.0, w);
        let fy = |y: f32| ((y - self.dy) / self.scale).clamp(0.0, h);
        Detection {
            x1: fx(d.x1),
            y1: fy(d.y1),
            x2: fx(d.x2),
            y2: fy(d.y2),
            ..*d
        }
    }
}

pub use crate::config::choices::Precision;

pub struct Model {
    plan: Arc<TypedRunnableModel>,
    precision: Precision,
    pub side: usize,
    pub layout: Layout,
    labels: Vec<String>,
    output_shape: Vec<usize>,
    /// Time to load and optimise, in ms.
    pub load_ms: f64,
}

/// Reads one label a line; an empty path gives the COCO names.
pub fn load_labels(path: Option<&Path>) -> Result<Vec<String>, ModelError> {
    let Some(path) = path else {
        return Ok(COCO_LABELS.iter().map(|s| s.to_string()).collect());
    };
    let text = std::fs::read_to_string(path).map_err(|e| ModelError::Labels {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let labels: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if labels.is_empty() {
        return Err(ModelError::Labels {
            path: path.to_path_buf(),
            reason: "has no labels".into(),
        });
    }
    Ok(labels)
}

/// Reads the ONNX file at `path` with its pyramid pools chained (`surgery`: exact, and
/// cheaper in tract).
fn read_rewritten(path: &Path) -> TractResult<InferenceModel> {
    let onnx = tract_onnx::onnx();
    let mut proto = onnx.proto_model_for_path(path)?;
    if let Some(graph) = proto.graph.as_mut() {
        super::surgery::chain_max_pools(graph);
    }
    // The file's folder, for weights stored beside it (ONNX external data).
    let folder = path.parent().and_then(Path::to_str);
    let parsed = onnx.parse(&proto, folder)?;
    if !parsed.unresolved_inputs.is_empty() {
        tract_onnx::tract_core::internal::bail!("unresolved inputs {:?}", parsed.unresolved_inputs);
    }
    Ok(parsed.model)
}

/// The decluttered `model`, its floats translated to `precision`.
fn in_precision(model: TypedModel, precision: Precision) -> TractResult<TypedModel> {
    match precision {
        Precision::F32 => Ok(model),
        Precision::F16 => match tract_onnx::tract_core::transform::get_transform("f32_to_f16")? {
            Some(translate) => translate.transform_into(model),
            None => tract_onnx::tract_core::internal::bail!("tract has no f32_to_f16 transform"),
        },
    }
}

/// One kind of operator's share of an inference (`Model::time_per_op_kind`).
#[derive(Debug, Clone)]
pub struct OpKindTime {
    /// tract's name for the operator, e.g. `OptMatMul`, `DepthWiseConv`.
    pub kind: String,
    /// Mean milliseconds per inference spent in nodes of this kind.
    pub mean_ms: f64,
    /// How many nodes of this kind the optimised plan has.
    pub nodes: usize,
}

impl Model {
    /// Loads `path` for a `side` x `side` input (a multiple of 32), in `format` (detected
    /// from the output shape when None), to run in f32.
    pub fn load(
        path: &Path,
        side: usize,
        format: Option<Layout>,
        labels: Vec<String>,
    ) -> Result<Self, ModelError> {
        Self::load_with(path, side, format, labels, Precision::F32)
    }

    /// `load`, running in `precision`.
    pub fn load_with(
        path: &Path,
        side: usize,
        format: Option<Layout>,
        labels: Vec<String>,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let fail = |reason: String| ModelError::Load {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(fail("no such file".into()));
        }
        if side == 0 || !side.is_multiple_of(32) {
            return Err(fail(format!("input size {side} is not a multiple of 32")));
        }
        let start = Instant::now();
        let mut model =
            read_rewritten(path).map_err(|e| fail(format!("not a readable ONNX model ({e})")))?;
        // Exports store intermediate shapes for their own input size; forget them so the
        // graph is re-analysed for this one.
        for node in model.nodes.iter_mut() {
            for outlet in node.outputs.iter_mut() {
                outlet.fact = InferenceFact::default();
            }
        }
        let model = model
            .with_input_fact(0, f32::fact([1, 3, side, side]).into())
            .and_then(|m| m.into_typed())
            .and_then(|m| m.into_decluttered())
            .and_then(|m| in_precision(m, precision))
            .and_then(|m| m.into_optimized())
            .map_err(|e| {
                fail(format!(
                    "cannot prepare the model for input {side}x{side} ({e})"
                ))
            })?;
        let output_shape: Vec<usize> = model
            .output_fact(0)
            .ok()
            .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()))
            .ok_or_else(|| fail("the output shape is not concrete".into()))?;
        let (layout, classes) = match format {
            Some(l) => (l, decode::check_layout(l, &output_shape).map_err(fail)?),
            None => decode::detect_layout(&output_shape, side).map_err(fail)?,
        };
        if classes != labels.len() {
            return Err(fail(format!(
                "the model has {classes} classes but {} labels are loaded",
                labels.len()
            )));
        }
        let plan = model.into_runnable().map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            plan,
            precision,
            side,
            layout,
            labels,
            output_shape,
            load_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Scales and places `img` in the input tensor for this model's layout.
    pub fn preprocess(&self, img: &RgbImage) -> Result<(Tensor, Letterbox), ModelError> {
        let side = self.side;
        let scale = (side as f32 / img.width as f32).min(side as f32 / img.height as f32);
        let (w, h) = (
            ((img.width as f32 * scale).round() as u32).clamp(1, side as u32),
            ((img.height as f32 * scale).round() as u32).clamp(1, side as u32),
        );
        // Frames from the decode branch already fit the input: no second scaling.
        let rescaled;
        let scaled = if (w, h) == (img.width, img.height) {
            img
        } else {
            rescaled = image::scale(img, w, h).map_err(ModelError::Image)?;
            &rescaled
        };
        let (dx, dy, pad, norm, bgr) = match self.layout {
            Layout::Yolox => (0, 0, 114.0, 1.0, true),
            Layout::Yolov5 | Layout::Yolov8 => (
                (side - w as usize) / 2,
                (side - h as usize) / 2,
                114.0 / 255.0,
                1.0 / 255.0,
                false,
            ),
        };
        let plane = side * side;
        let mut data = vec![pad; 3 * plane];
        for y in 0..h as usize {
            for x in 0..w as usize {
                let p = (y * w as usize + x) * 3;
                let at = (y + dy) * side + x + dx;
                for c in 0..3 {
                    let src = if bgr { 2 - c } else { c };
                    data[c * plane + at] = scaled.data[p + src] as f32 * norm;
                }
            }
        }
        let tensor = Tensor::from_shape(&[1, 3, side, side], &data)
            .map_err(|e| ModelError::Run(e.to_string()))?;
        Ok((
            tensor,
            Letterbox {
                scale,
                dx: dx as f32,
                dy: dy as f32,
                width: img.width,
                height: img.height,
            },
        ))
    }

    /// `input` in the arithmetic the plan runs in.
    fn in_plan_precision(&self, input: Tensor) -> TractResult<Tensor> {
        match self.precision {
            Precision::F32 => Ok(input),
            Precision::F16 => Ok(input.cast_to_dt(DatumType::F16)?.into_owned()),
        }
    }

    /// Runs the model on a prepared tensor: raw detections in input pixels.
    pub fn infer(&self, input: Tensor, min_score: f32) -> Result<Vec<Detection>, ModelError> {
        let run_err = |e: TractError| ModelError::Run(e.to_string());
        let input = self.in_plan_precision(input).map_err(run_err)?;
        let out = self.plan.run(tvec!(input.into())).map_err(run_err)?;
        let out = out[0].cast_to_dt(DatumType::F32).map_err(run_err)?;
        let view = out.to_plain_array_view::<f32>().map_err(run_err)?;
        // tract's outputs are contiguous; copy only if one ever is not.
        let owned: Vec<f32>;
        let data = match view.as_slice() {
            Some(d) => d,
            None => {
                owned = view.iter().copied().collect();
                &owned
            }
        };
        Ok(decode::decode(
            self.layout,
            &self.output_shape,
            data,
            self.side,
            min_score,
        ))
    }

    /// Where an inference's time goes: for each kind of operator in the optimised plan,
    /// its mean milliseconds per run over `runs` runs (after one warm-up) and how many
    /// nodes of that kind the plan has, slowest kind first (`bench detect --ops`).
    pub fn time_per_op_kind(&self, input: Tensor, runs: usize) -> TractResult<Vec<OpKindTime>> {
        use tract_onnx::tract_core::plan::{SimpleState, eval};
        let input: TValue = self.in_plan_precision(input)?.into();
        let mut state = SimpleState::new(&self.plan)?;
        let mut ms_by_node: std::collections::HashMap<usize, (String, f64)> = Default::default();
        for run in 0..=runs {
            state.run_plan_with_eval(tvec!(input.clone()), |session, op_state, node, inputs| {
                let start = Instant::now();
                let outputs = eval(session, op_state, node, inputs);
                if run > 0 {
                    let entry = ms_by_node
                        .entry(node.id)
                        .or_insert_with(|| (node.op.name().to_string(), 0.0));
                    entry.1 += start.elapsed().as_secs_f64() * 1000.0 / runs as f64;
                }
                outputs
            })?;
        }
        let mut kinds: Vec<OpKindTime> = Vec::new();
        for (kind, ms) in ms_by_node.into_values() {
            match kinds.iter_mut().find(|k| k.kind == kind) {
                Some(k) => (k.mean_ms, k.nodes) = (k.mean_ms + ms, k.nodes + 1),
                None => kinds.push(OpKindTime {
                    kind,
                    mean_ms: ms,
                    nodes: 1,
                }),
            }
        }
        kinds.sort_by(|a, b| b.mean_ms.total_cmp(&a.mean_ms));
        Ok(kinds)
    }

    /// Detections on `img` with score ≥ `min_score` after class-aware NMS (IoU `iou`).
    pub fn detect(
        &self,
        img: &RgbImage,
        min_score: f32,
        iou: f32,
    ) -> Result<Vec<Labeled>, ModelError> {
        let (tensor, lb) = self.preprocess(img)?;
        let dets = decode::nms(self.infer(tensor, min_score)?, iou);
        Ok(dets
            .iter()
            .map(|d| Labeled {
                label: self
                    .labels
                    .get(d.class)
                    .cloned()
                    .unwrap_or_else(|| format!("class{}", d.class)),
                det: lb.unmap(d),
            })
            .collect())
    }
}
