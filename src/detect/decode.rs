//! Turning a YOLO output tensor into boxes. Three layouts are understood, told apart by the
//! output shape for a square input of side S (G = (S/8)² + (S/16)² + (S/32)² grid cells):
//! - YOLOX raw head `[1, G, 5+C]`: per cell `dx, dy, log w, log h, objectness, classes`,
//!   decoded over the stride 8/16/32 grids (`cx = (dx + gx)·s`, `w = e^log w · s`);
//! - YOLOv5 `[1, 3G, 5+C]`: boxes already decoded (`cx, cy, w, h` in input pixels),
//!   objectness and class scores;
//! - YOLOv8/YOLO11 `[1, 4+C, G]`: transposed, `cx, cy, w, h` then class scores, no
//!   objectness.
//!
//! Scores are objectness × class score (or the class score alone for v8). Boxes come back
//! in input-tensor pixels; `Letterbox::unmap` takes them to the source image. Then
//! class-aware non-maximum suppression.

pub use crate::config::choices::Layout;

/// Grid cells over strides 8, 16 and 32 for a `side` x `side` input.
pub fn grid_cells(side: usize) -> usize {
    [8, 16, 32].iter().map(|s| (side / s) * (side / s)).sum()
}

/// The layout an output of `shape` has for a `side` x `side` input, and the class count.
pub fn detect_layout(shape: &[usize], side: usize) -> Result<(Layout, usize), String> {
    let g = grid_cells(side);
    match shape {
        [1, n, k] if *n == g && *k > 5 => Ok((Layout::Yolox, k - 5)),
        [1, n, k] if *n == 3 * g && *k > 5 => Ok((Layout::Yolov5, k - 5)),
        [1, k, n] if *n == g && *k > 4 && k < n => Ok((Layout::Yolov8, k - 4)),
        _ => Err(format!(
            "model output shape {shape:?} is not a YOLOX [1, {g}, 5+C], YOLOv5 [1, {}, 5+C] or YOLOv8 [1, 4+C, {g}] layout for input {side}x{side}; set detect.format if the layout is known",
            3 * g
        )),
    }
}

/// Shape check when the layout is forced by `detect.format`.
pub fn check_layout(layout: Layout, shape: &[usize]) -> Result<usize, String> {
    match (layout, shape) {
        (Layout::Yolox | Layout::Yolov5, [1, _, k]) if *k > 5 => Ok(k - 5),
        (Layout::Yolov8, [1, k, _]) if *k > 4 => Ok(k - 4),
        _ => Err(format!(
            "model output shape {shape:?} does not fit detect.format {layout}"
        )),
    }
}

/// A detection in pixel coordinates (x1, y1, x2, y2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: usize,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl Detection {
    fn from_center(class: usize, score: f32, cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self {
            class,
            score,
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    pub fn iou(&self, o: &Detection) -> f32 {
        let ix = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let iy = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = ix * iy;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

/// The best class of `scores` and its score.
fn best(scores: &[f32]) -> (usize, f32) {
    scores
        .iter()
        .copied()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, s)| if s > b.1 { (i, s) } else { b })
}

/// Decodes a flat output tensor of `shape` (row-major) in `layout`, keeping scores ≥ `min_score`.
pub fn decode(
    layout: Layout,
    shape: &[usize],
    data: &[f32],
    side: usize,
    min_score: f32,
) -> Vec<Detection> {
    let mut out = Vec::new();
    match layout {
        Layout::Yolox | Layout::Yolov5 => {
            let (n, k) = (shape[1], shape[2]);
            let mut cells = Vec::with_capacity(n);
            if layout == Layout::Yolox {
                for s in [8usize, 16, 32] {
                    for gy in 0..side / s {
                        for gx in 0..side / s {
                            cells.push((gx as f32, gy as f32, s as f32));
                        }
                    }
                }
            }
            for i in 0..n.min(data.len() / k) {
                let row = &data[i * k..(i + 1) * k];
                let (class, cls_score) = best(&row[5..]);
                let score = row[4] * cls_score;
                if score < min_score {
                    continue;
                }
                let d = match (layout, cells.get(i)) {
                    (Layout::Yolox, Some(&(gx, gy, s))) => Detection::from_center(
                        class,
                        score,
                        (row[0] + gx) * s,
                        (row[1] + gy) * s,
                        row[2].exp() * s,
                        row[3].exp() * s,
                    ),
                    (Layout::Yolox, None) => continue,
                    _ => Detection::from_center(class, score, row[0], row[1], row[2], row[3]),
                };
                out.push(d);
            }
        }
        Layout::Yolov8 => {
            let (k, n) = (shape[1], shape[2]);
            if data.len() < k * n {
                return out;
            }
            let at = |r: usize, i: usize| data[r * n + i];
            for i in 0..n {
                let (class, score) = (4..k)
                    .map(|r| (r - 4, at(r, i)))
                    .fold((0, f32::MIN), |b, c| if c.1 > b.1 { c } else { b });
                if score < min_score {
                    continue;
                }
                out.push(Detection::from_center(
                    class,
                    score,
                    at(0, i),
                    at(1, i),
                    at(2, i),
                    at(3, i),
                ));
            }
        }
    }
    out
}

/// Class-aware non-maximum suppression: the best box of each class survives, and any box
/// of the same class overlapping a kept one by more than `iou` is dropped.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::new();
    for d in dets {
        if !kept.iter().any(|k| k.class == d.class && k.iou(&d) > iou) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_from_shapes() {
        assert_eq!(detect_layout(&[1, 3549, 85], 416), Ok((Layout::Yolox, 80)));
        assert_eq!(
            detect_layout(&[1, 10647, 85], 416),
            Ok((Layout::Yolov5, 80))
        );
        assert_eq!(detect_layout(&[1, 84, 8400], 640), Ok((Layout::Yolov8, 80)));
        let err = detect_layout(&[1, 1000, 7], 416).unwrap_err();
        assert!(err.contains("[1, 1000, 7]"), "{err}");
    }

    #[test]
    fn yolov8_tensor_decodes_to_its_boxes() {
        // Two classes, 3 anchors (side 32 gives 16+4+1 = 21 cells; shape is what matters).
        let side = 32;
        let n = grid_cells(side);
        let k = 4 + 2;
        let mut data = vec![0f32; k * n];
        let mut put = |i: usize, v: [f32; 6]| {
            for (r, x) in v.iter().enumerate() {
                data[r * n + i] = *x;
            }
        };
        put(3, [10.0, 12.0, 4.0, 6.0, 0.1, 0.9]); // class 1 at (8,9)-(12,15)
        put(7, [20.0, 20.0, 8.0, 8.0, 0.7, 0.2]); // class 0 at (16,16)-(24,24)
        put(9, [20.5, 20.0, 8.0, 8.0, 0.6, 0.1]); // overlaps the one above: suppressed
        let (layout, classes) = detect_layout(&[1, k, n], side).unwrap();
        assert_eq!((layout, classes), (Layout::Yolov8, 2));
        let dets = nms(decode(layout, &[1, k, n], &data, side, 0.3), 0.45);
        assert_eq!(dets.len(), 2, "{dets:?}");
        assert_eq!(
            (
                dets[0].class,
                dets[0].x1,
                dets[0].y1,
                dets[0].x2,
                dets[0].y2
            ),
            (1, 8.0, 9.0, 12.0, 15.0)
        );
        assert_eq!((dets[1].class, dets[1].x1, dets[1].x2), (0, 16.0, 24.0));
    }

    #[test]
    fn yolov5_tensor_decodes_to_its_boxes() {
        let side = 32;
        let n = 3 * grid_cells(side);
        let k = 5 + 3;
        let mut data = vec![0f32; n * k];
        data[5 * k..6 * k].copy_from_slice(&[16.0, 16.0, 10.0, 20.0, 0.8, 0.1, 0.2, 0.9]);
        data[6 * k..7 * k].copy_from_slice(&[16.0, 16.0, 10.0, 20.0, 0.8, 0.9, 0.1, 0.0]); // other class, same box: kept
        data[7 * k..8 * k].copy_from_slice(&[5.0, 5.0, 2.0, 2.0, 0.2, 0.9, 0.0, 0.0]); // 0.18 < 0.3
        let (layout, classes) = detect_layout(&[1, n, k], side).unwrap();
        assert_eq!((layout, classes), (Layout::Yolov5, 3));
        let dets = nms(decode(layout, &[1, n, k], &data, side, 0.3), 0.45);
        assert_eq!(dets.len(), 2, "{dets:?}");
        assert!(
            dets.iter()
                .any(|d| d.class == 2 && (d.x1, d.y1, d.x2, d.y2) == (11.0, 6.0, 21.0, 26.0))
        );
        assert!(dets.iter().any(|d| d.class == 0));
    }

    #[test]
    fn yolox_grid_decode() {
        let side = 32;
        let n = grid_cells(side); // 16 + 4 + 1
        let k = 5 + 1;
        let mut data = vec![0f32; n * k];
        // Cell 16 is the first of the stride-16 grid (gx 0, gy 0); cell 20 the stride-32 one.
        data[16 * k..17 * k].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 0.9, 0.9]);
        let dets = decode(Layout::Yolox, &[1, n, k], &data, side, 0.5);
        assert_eq!(dets.len(), 1);
        let d = dets[0];
        assert_eq!((d.x1, d.y1, d.x2, d.y2), (0.0, 0.0, 16.0, 16.0)); // centre 8, size e^0 * 16
    }
}
