//! Object detection with the real YOLOX-Nano model on real COCO photos (tests/data):
//! classes, counts and boxes at input sizes 320, 416 and 640; the output layout detected
//! from the shape; a corrupt or missing model refused with its path named.

use crate::common;

use sentrix::detect::model::{Labeled, Model, load_labels};
use sentrix::detect::{Detection, image};

fn model(side: usize) -> Model {
    let path = common::testdata_dir().join("yolox_nano.onnx");
    Model::load(&path, side, None, load_labels(None).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn photo(name: &str) -> image::RgbImage {
    image::load(&common::testdata_dir().join(name)).unwrap()
}

fn count(dets: &[Labeled], label: &str) -> usize {
    dets.iter().filter(|d| d.label == label).count()
}

fn boxed(x1: f32, y1: f32, x2: f32, y2: f32) -> Detection {
    Detection {
        class: 0,
        score: 1.0,
        x1,
        y1,
        x2,
        y2,
    }
}

/// Every reference box has a detection of its label overlapping it by IoU ≥ `min_iou`.
fn assert_boxes(dets: &[Labeled], reference: &[(&str, Detection)], min_iou: f32) {
    for (label, r) in reference {
        let best = dets
            .iter()
            .filter(|d| d.label == *label)
            .map(|d| d.det.iou(r))
            .fold(0.0, f32::max);
        assert!(
            best >= min_iou,
            "{label} {r:?}: best IoU {best:.2} in {dets:#?}"
        );
    }
}

/// Reference boxes from onnxruntime on the same model, size (416) and preprocessing
/// (`scripts/ort_detect.py tests/data/yolox_nano.onnx 416 IMAGE`): the confident ones.
fn crowd_ref() -> [(&'static str, Detection); 5] {
    [
        ("person", boxed(261.0, 91.0, 357.0, 426.0)),
        ("person", boxed(511.0, 190.0, 639.0, 474.0)),
        ("person", boxed(120.0, 148.0, 197.0, 387.0)),
        ("person", boxed(39.0, 187.0, 110.0, 399.0)),
        ("person", boxed(416.0, 212.0, 522.0, 478.0)),
    ]
}

fn ballgame_ref() -> [(&'static str, Detection); 4] {
    [
        ("person", boxed(173.0, 1.0, 239.0, 120.0)),
        ("person", boxed(324.0, 266.0, 471.0, 443.0)),
        ("person", boxed(373.0, 207.0, 440.0, 370.0)),
        ("person", boxed(273.0, 305.0, 352.0, 447.0)),
    ]
}

#[test]
fn crowd_and_ballgame_at_416() {
    let m = model(416);
    assert_eq!(m.layout, sentrix::detect::Layout::Yolox);
    let crowd = m
        .detect(&photo("coco_000000001000.jpg"), 0.3, 0.45)
        .unwrap();
    eprintln!("crowd: {crowd:#?}");
    // onnxruntime finds 12 people at 0.3; scores near the threshold vary with the resize.
    assert!(
        (10..=14).contains(&count(&crowd, "person")),
        "{} people",
        count(&crowd, "person")
    );
    assert_boxes(&crowd, &crowd_ref(), 0.8);
    let ballgame = m
        .detect(&photo("coco_000000002153.jpg"), 0.3, 0.45)
        .unwrap();
    eprintln!("ballgame: {ballgame:#?}");
    assert_eq!(count(&ballgame, "person"), 4, "{ballgame:#?}");
    assert_eq!(count(&ballgame, "baseball bat"), 1, "{ballgame:#?}");
    assert_boxes(&ballgame, &ballgame_ref(), 0.8);
    assert_boxes(
        &ballgame,
        &[("baseball bat", boxed(414.0, 183.0, 460.0, 220.0))],
        0.7,
    );
}

/// `detect.precision: f16` (for CPUs with half-precision arithmetic) finds the same
/// people as onnxruntime's f32 reference, within IoU 0.8. On x86 f16 is emulated: slow,
/// but the same numbers a Pi 5 computes natively.
#[test]
fn half_precision_finds_the_reference_boxes() {
    let m = Model::load_with(
        &common::testdata_dir().join("yolox_nano.onnx"),
        416,
        None,
        load_labels(None).unwrap(),
        sentrix::detect::Precision::F16,
    )
    .unwrap();
    let ballgame = m
        .detect(&photo("coco_000000002153.jpg"), 0.3, 0.45)
        .unwrap();
    assert_eq!(count(&ballgame, "person"), 4, "{ballgame:#?}");
    assert_boxes(&ballgame, &ballgame_ref(), 0.8);
}

#[test]
fn corrupt_or_missing_model_is_refused_naming_the_path() {
    let dir = common::temp_dir();
    let missing = dir.path().join("nope.onnx");
    let err = Model::load(&missing, 416, None, load_labels(None).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("nope.onnx") && err.contains("no such file"),
        "{err}"
    );
    let corrupt = dir.path().join("corrupt.onnx");
    let mut bytes = std::fs::read(common::testdata_dir().join("yolox_nano.onnx")).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&corrupt, bytes).unwrap();
    let err = Model::load(&corrupt, 416, None, load_labels(None).unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("corrupt.onnx"), "{err}");
    let err = Model::load(
        &common::testdata_dir().join("coco_classes.txt"),
        416,
        None,
        load_labels(None).unwrap(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("coco_classes.txt"), "{err}");
}

#[test]
fn other_input_sizes_find_the_same_objects() {
    for side in [320, 640] {
        let m = model(side);
        let crowd = m
            .detect(&photo("coco_000000001000.jpg"), 0.3, 0.45)
            .unwrap();
        let people = count(&crowd, "person");
        assert!((8..=16).contains(&people), "{side}: {crowd:#?}");
        assert_boxes(&crowd, &crowd_ref()[..3], 0.7);
        let ballgame = m
            .detect(&photo("coco_000000002153.jpg"), 0.3, 0.45)
            .unwrap();
        assert!(
            (3..=5).contains(&count(&ballgame, "person")),
            "{side}: {ballgame:#?}"
        );
        assert_boxes(&ballgame, &ballgame_ref()[..2], 0.7);
    }
}

/// `bench detect --ops`: every node of the plan is timed once per run and counted under
/// its operator kind. YOLOX-nano has 30 depthwise convolutions, and its three pyramid
/// pools run as six 1-D pools after the chaining surgery.
#[test]
fn the_per_op_profile_counts_every_node_under_its_kind() {
    let m = model(320);
    let (tensor, _) = m.preprocess(&photo("coco_000000002153.jpg")).unwrap();
    let kinds = m.time_per_op_kind(tensor, 2).unwrap();
    let nodes = |kind: &str| kinds.iter().find(|k| k.kind == kind).map(|k| k.nodes);
    assert_eq!(nodes("DepthWiseConv"), Some(30), "{kinds:#?}");
    assert_eq!(nodes("OptMaxPool"), Some(6), "{kinds:#?}");
    assert!(kinds.windows(2).all(|w| w[0].mean_ms >= w[1].mean_ms));
    assert!(kinds.iter().all(|k| k.mean_ms >= 0.0 && k.nodes > 0));
    let convolution_ms: f64 = kinds
        .iter()
        .filter(|k| k.kind.contains("Conv") || k.kind.starts_with("OptMatMul"))
        .map(|k| k.mean_ms)
        .sum();
    assert!(convolution_ms > 0.0, "{kinds:#?}");
}
