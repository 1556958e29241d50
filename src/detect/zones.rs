//! Zones and masks: polygons in normalised picture coordinates (0,0 top-left, 1,1
//! bottom-right). An object is placed at its box's bottom centre (where it stands): it
//! counts when that point is inside one of the camera's zones (all of the picture when
//! there are none) that applies to its label, and not inside a mask.

use crate::config::Area;

#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    points: Vec<[f64; 2]>,
}

impl Polygon {
    pub fn new(points: Vec<[f64; 2]>) -> Self {
        Self { points }
    }

    /// Even-odd rule; a point on the left or top edge is inside, as is one exactly on a
    /// corner of the unit square, so a full-frame polygon holds every point.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let n = self.points.len();
        if n < 3 {
            return false;
        }
        let mut inside = false;
        let mut j = n - 1;
        for i in 0..n {
            let [xi, yi] = self.points[i];
            let [xj, yj] = self.points[j];
            if (yi > y) != (yj > y) {
                let cross_x = xj + (y - yj) * (xi - xj) / (yi - yj);
                if x < cross_x {
                    inside = !inside;
                }
            }
            j = i;
        }
        inside || self.on_boundary(x, y)
    }

    fn on_boundary(&self, x: f64, y: f64) -> bool {
        let n = self.points.len();
        (0..n).any(|i| {
            let [ax, ay] = self.points[i];
            let [bx, by] = self.points[(i + 1) % n];
            let cross = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
            cross.abs() < 1e-9
                && x >= ax.min(bx) - 1e-9
                && x <= ax.max(bx) + 1e-9
                && y >= ay.min(by) - 1e-9
                && y <= ay.max(by) + 1e-9
        })
    }
}

struct Zone {
    name: String,
    area: Polygon,
    labels: Vec<String>,
}

/// One camera's zones and masks.
pub struct AreaFilter {
    zones: Vec<Zone>,
    masks: Vec<Polygon>,
}

impl AreaFilter {
    pub fn new(zones: &[Area], masks: &[Area]) -> Self {
        Self {
            zones: zones
                .iter()
                .map(|z| Zone {
                    name: z.name.clone(),
                    area: Polygon::new(z.points.clone()),
                    labels: z.labels.clone(),
                })
                .collect(),
            masks: masks
                .iter()
                .map(|m| Polygon::new(m.points.clone()))
                .collect(),
        }
    }

    pub fn masks(&self) -> Vec<Polygon> {
        self.masks.clone()
    }

    /// The names of the zones an object of `label` whose box is `bbox` stands in (its
    /// bottom centre), for review items and alert rules.
    pub fn zones_at(&self, label: &str, bbox: &[f32; 4]) -> Vec<String> {
        let (x, y) = ((bbox[0] as f64 + bbox[2] as f64) / 2.0, bbox[3] as f64);
        self.zones
            .iter()
            .filter(|z| !z.name.is_empty())
            .filter(|z| z.labels.is_empty() || z.labels.iter().any(|l| l == label))
            .filter(|z| z.area.contains(x, y))
            .map(|z| z.name.clone())
            .collect()
    }

    /// Whether an object of `label` standing at (x, y) (normalised) counts.
    pub fn admits(&self, label: &str, x: f64, y: f64) -> bool {
        if self.masks.iter().any(|m| m.contains(x, y)) {
            return false;
        }
        self.zones.is_empty()
            || self.zones.iter().any(|z| {
                (z.labels.is_empty() || z.labels.iter().any(|l| l == label))
                    && z.area.contains(x, y)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn area(points: &[[f64; 2]], labels: &[&str]) -> Area {
        Area {
            name: String::new(),
            points: points.to_vec(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn polygon_contains() {
        let tri = Polygon::new(vec![[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]);
        assert!(tri.contains(0.2, 0.2));
        assert!(!tri.contains(0.8, 0.8));
        let full = Polygon::new(vec![[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]);
        for (x, y) in [(0.0, 0.0), (1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.5, 0.5)] {
            assert!(full.contains(x, y), "{x},{y}");
        }
        assert!(!full.contains(1.01, 0.5));
    }

    #[test]
    fn zones_masks_and_labels() {
        let left = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]];
        let f = AreaFilter::new(&[area(&left, &["person"])], &[]);
        assert!(f.admits("person", 0.25, 0.9));
        assert!(!f.admits("person", 0.75, 0.9));
        assert!(!f.admits("car", 0.25, 0.9)); // the zone is for people only
        let f = AreaFilter::new(&[], &[area(&left, &[])]);
        assert!(!f.admits("car", 0.25, 0.9));
        assert!(f.admits("car", 0.75, 0.9));
        let f = AreaFilter::new(&[], &[]);
        assert!(f.admits("anything", 0.1, 0.1));
    }
}
