//! The motion gate: decides, for each decoded frame, whether anything moved enough to be
//! worth a model run. It works on a small grayscale copy (the frame averaged in
//! `CELL_PX` x `CELL_PX` blocks, about 100 x 60 cells for a 416-wide frame), compares it
//! with a slowly updated background, and counts the unmasked cells whose grey level changed
//! by more than `threshold`. Motion is when that count is at least `min_area` of the
//! unmasked cells. Masked cells never count. The cost is one pass over the frame's bytes.
//!
//! It also says where: the box around the changed cells (normalised to the frame), which
//! is a motion-only event's box, so the event shows what moved and not the whole frame.

use super::zones::Polygon;

/// Side of the square block of frame pixels averaged into one cell.
const CELL_PX: usize = 4;
/// How fast the background follows the picture (share of the new frame per update).
const BACKGROUND_RATE: f32 = 0.25;
/// At least this share of the unmasked cells changed at once: the whole picture changed
/// (a light switched, the camera moved), not something in it.
const SCENE_CHANGE_SHARE: f32 = 0.6;

/// What the gate saw in one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionReading {
    /// Share (0..1) of the unmasked cells that changed.
    pub changed_share: f32,
    pub moving: bool,
    /// The box around the changed cells (x1, y1, x2, y2 in 0..1); all zero when none,
    /// the whole frame on a scene change.
    pub bbox: [f32; 4],
    /// The whole picture changed (`SCENE_CHANGE_SHARE`); the background follows it within
    /// a few frames, so the motion then stops by itself.
    pub scene_change: bool,
}

impl MotionReading {
    fn still() -> Self {
        Self {
            changed_share: 0.0,
            moving: false,
            bbox: [0.0; 4],
            scene_change: false,
        }
    }
}

/// The cells that changed, as a box in cell units (first column, first row, last column,
/// last row), grown one cell at a time.
#[derive(Default)]
struct CellBox(Option<[usize; 4]>);

impl CellBox {
    fn add(&mut self, col: usize, row: usize) {
        self.0 = Some(match self.0 {
            None => [col, row, col, row],
            Some([c1, r1, c2, r2]) => [c1.min(col), r1.min(row), c2.max(col), r2.max(row)],
        });
    }

    /// Normalised to a grid of `cols` x `rows` (a cell's far edge included).
    fn normalised(&self, cols: usize, rows: usize) -> [f32; 4] {
        let Some([c1, r1, c2, r2]) = self.0 else {
            return [0.0; 4];
        };
        let (w, h) = (cols as f32, rows as f32);
        [
            c1 as f32 / w,
            r1 as f32 / h,
            (c2 + 1) as f32 / w,
            (r2 + 1) as f32 / h,
        ]
    }
}

pub struct MotionGate {
    threshold: f32,
    min_area: f32,
    /// Cell grid of the current frame size.
    cols: usize,
    rows: usize,
    /// Per cell: false where a mask covers the cell's centre.
    active: Vec<bool>,
    active_cells: usize,
    background: Vec<f32>,
    masks: Vec<Polygon>,
}

impl MotionGate {
    pub fn new(threshold: u8, min_area: f64, masks: Vec<Polygon>) -> Self {
        Self {
            threshold: threshold as f32,
            min_area: min_area as f32,
            cols: 0,
            rows: 0,
            active: Vec::new(),
            active_cells: 0,
            background: Vec::new(),
            masks,
        }
    }

    /// Feeds one packed RGB frame. The first frame (and the first after a size change)
    /// only sets the background: the caller runs the model on it as a forced check.
    pub fn update(&mut self, rgb: &[u8], width: usize, height: usize) -> MotionReading {
        let (cols, rows) = (width / CELL_PX, height / CELL_PX);
        if cols == 0 || rows == 0 || rgb.len() < width * height * 3 {
            return MotionReading::still();
        }
        let small = shrink_gray(rgb, width, cols, rows);
        if (cols, rows) != (self.cols, self.rows) {
            self.resize(cols, rows);
            self.background = small;
            return MotionReading::still();
        }
        let mut changed = 0usize;
        let mut where_changed = CellBox::default();
        let cells = self.background.iter_mut().zip(&small).zip(&self.active);
        for (i, ((bg, &now), &on)) in cells.enumerate() {
            if on && (now - *bg).abs() > self.threshold {
                changed += 1;
                where_changed.add(i % cols, i / cols);
            }
            *bg += (now - *bg) * BACKGROUND_RATE;
        }
        let share = if self.active_cells == 0 {
            0.0
        } else {
            changed as f32 / self.active_cells as f32
        };
        let scene_change = share >= SCENE_CHANGE_SHARE;
        MotionReading {
            changed_share: share,
            moving: changed > 0 && share >= self.min_area,
            bbox: match scene_change {
                true => [0.0, 0.0, 1.0, 1.0],
                false => where_changed.normalised(cols, rows),
            },
            scene_change,
        }
    }

    /// New masks, from the next frame on; the background is kept.
    pub fn set_masks(&mut self, masks: Vec<Polygon>) {
        self.masks = masks;
        self.resize(self.cols, self.rows);
    }

    fn resize(&mut self, cols: usize, rows: usize) {
        self.cols = cols;
        self.rows = rows;
        self.active = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (c, r)))
            .map(|(c, r)| {
                let (x, y) = (
                    (c as f64 + 0.5) / cols as f64,
                    (r as f64 + 0.5) / rows as f64,
                );
                !self.masks.iter().any(|m| m.contains(x, y))
            })
            .collect();
        self.active_cells = self.active.iter().filter(|&&a| a).count();
    }
}

/// Grey level (BT.601 luma weights, integer) averaged over CELL_PX x CELL_PX blocks.
fn shrink_gray(rgb: &[u8], width: usize, cols: usize, rows: usize) -> Vec<f32> {
    let mut sums = vec![0u32; cols * rows];
    for y in 0..rows * CELL_PX {
        let row = &rgb[y * width * 3..(y * width + cols * CELL_PX) * 3];
        let cells = &mut sums[(y / CELL_PX) * cols..(y / CELL_PX + 1) * cols];
        for (x, px) in row.chunks_exact(3).enumerate() {
            let luma = 77 * px[0] as u32 + 150 * px[1] as u32 + 29 * px[2] as u32;
            cells[x / CELL_PX] += luma >> 8;
        }
    }
    let n = (CELL_PX * CELL_PX) as f32;
    sums.into_iter().map(|s| s as f32 / n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, square_at: Option<(usize, usize)>) -> Vec<u8> {
        let mut f = vec![90u8; w * h * 3];
        if let Some((sx, sy)) = square_at {
            for y in sy..sy + 24 {
                for x in sx..sx + 24 {
                    f[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[250, 250, 250]);
                }
            }
        }
        f
    }

    #[test]
    fn still_frames_do_not_move_and_a_moving_square_does() {
        let mut gate = MotionGate::new(25, 0.003, Vec::new());
        assert!(!gate.update(&frame(160, 96, None), 160, 96).moving); // first frame
        for _ in 0..5 {
            assert!(!gate.update(&frame(160, 96, None), 160, 96).moving);
        }
        let r = gate.update(&frame(160, 96, Some((40, 40))), 160, 96);
        assert!(r.moving && !r.scene_change, "{r:?}");
        assert!(r.changed_share > 0.03 && r.changed_share < 0.1, "{r:?}");
    }

    #[test]
    fn the_box_covers_the_square_and_not_the_frame() {
        let (w, h) = (320, 192);
        let mut gate = MotionGate::new(25, 0.003, Vec::new());
        gate.update(&frame(w, h, None), w, h);
        gate.update(&frame(w, h, None), w, h);
        // The square moves right 4 px a frame; the box follows it within two cells.
        let mut r = gate.update(&frame(w, h, Some((100, 60))), w, h);
        for step in 1..=6 {
            r = gate.update(&frame(w, h, Some((100 + 4 * step, 60))), w, h);
        }
        let (x1, y1, x2, y2) = (124.0, 60.0, 148.0, 84.0);
        let px = [
            r.bbox[0] * w as f32,
            r.bbox[1] * h as f32,
            r.bbox[2] * w as f32,
            r.bbox[3] * h as f32,
        ];
        let slack = 2.0 * CELL_PX as f32;
        assert!(r.moving, "{r:?}");
        assert!(
            px[0] <= x1 && px[1] <= y1 && px[2] >= x2 && px[3] >= y2,
            "{px:?} misses the square"
        );
        assert!(
            px[1] >= y1 - slack && px[3] <= y2 + slack,
            "{px:?} is too tall"
        );
        // Horizontally it may also hold the trail the square left behind in the background.
        assert!(
            px[2] <= x2 + slack && px[0] >= x1 - 6.0 * 4.0 - slack,
            "{px:?} is too wide"
        );
        assert!(
            px[2] - px[0] < w as f32 / 2.0,
            "not the whole frame: {px:?}"
        );
    }

    #[test]
    fn black_to_white_is_a_scene_change_that_settles() {
        let (w, h) = (160, 96);
        let mut gate = MotionGate::new(25, 0.003, Vec::new());
        gate.update(&vec![0u8; w * h * 3], w, h);
        gate.update(&vec![0u8; w * h * 3], w, h);
        let white = vec![255u8; w * h * 3];
        let r = gate.update(&white, w, h);
        assert!(
            r.moving && r.scene_change && r.bbox == [0.0, 0.0, 1.0, 1.0],
            "{r:?}"
        );
        // The background follows: within a few frames nothing moves any more.
        let settled = (0..20).position(|_| !gate.update(&white, w, h).moving);
        assert!(settled.is_some_and(|n| n < 15), "{settled:?}");
    }

    #[test]
    fn small_changes_and_masked_areas_are_ignored() {
        let whole = Polygon::new(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
        let mut gate = MotionGate::new(25, 0.003, vec![whole]);
        gate.update(&frame(160, 96, None), 160, 96);
        assert!(!gate.update(&frame(160, 96, Some((40, 40))), 160, 96).moving);

        let mut gate = MotionGate::new(25, 0.5, Vec::new());
        gate.update(&frame(160, 96, None), 160, 96);
        // The square covers ~4% of the frame: below a 50% minimum area.
        assert!(!gate.update(&frame(160, 96, Some((40, 40))), 160, 96).moving);
    }
}
