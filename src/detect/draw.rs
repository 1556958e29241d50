//! Box outlines on packed RGB frames, for event snapshots and the live view. Plain
//! rectangles of a fixed colour per role; labels are shown by the dashboard, not burnt in.

use super::tracker::NormBox;

/// The event's own object.
pub const EVENT_COLOUR: [u8; 3] = [255, 40, 40];
/// Other objects seen in the same frame.
pub const OTHER_COLOUR: [u8; 3] = [255, 200, 0];

/// Draws each box (normalised coordinates) `thickness_px` wide onto `rgb` (width x height,
/// packed rows). Boxes are clipped to the picture.
pub fn draw_boxes(
    rgb: &mut [u8],
    width: usize,
    height: usize,
    boxes: &[(NormBox, [u8; 3])],
    thickness_px: usize,
) {
    if width == 0 || height == 0 || rgb.len() < width * height * 3 {
        return;
    }
    let to_px = |v: f32, max: usize| ((v.clamp(0.0, 1.0) * max as f32) as usize).min(max - 1);
    for (b, colour) in boxes {
        let (x1, y1) = (to_px(b[0], width), to_px(b[1], height));
        let (x2, y2) = (to_px(b[2], width), to_px(b[3], height));
        if x2 <= x1 || y2 <= y1 {
            continue;
        }
        let mut put = |x: usize, y: usize| {
            let at = (y * width + x) * 3;
            rgb[at..at + 3].copy_from_slice(colour);
        };
        for t in 0..thickness_px {
            for x in x1..=x2 {
                put(x, (y1 + t).min(y2));
                put(x, y2.saturating_sub(t).max(y1));
            }
            for y in y1..=y2 {
                put((x1 + t).min(x2), y);
                put(x2.saturating_sub(t).max(x1), y);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outlines_without_filling() {
        let (w, h) = (20, 10);
        let mut rgb = vec![0u8; w * h * 3];
        super::draw_boxes(&mut rgb, w, h, &[([0.1, 0.2, 0.6, 0.8], [9, 9, 9])], 1);
        let px = |x: usize, y: usize| rgb[(y * w + x) * 3];
        assert_eq!(px(2, 2), 9); // corner
        assert_eq!(px(12, 5), 9); // right edge
        assert_eq!(px(6, 5), 0); // inside stays
        assert_eq!(px(15, 5), 0); // outside stays
    }
}
