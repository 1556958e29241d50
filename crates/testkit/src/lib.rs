//! sentrix's test kit: the fixtures that `tests/` and `sentrix-bench` share, kept out of
//! the appliance binary. An RTSP camera that can be stopped and brought back
//! (`camera`), real servers on loopback that notifications and off-site copies are
//! delivered to (`servers`), and throwaway stores with synthetic contents (`store`).
//! A dev-dependency of `sentrix` and a dependency of `sentrix-bench`; never in a package.

pub mod camera;
pub mod servers;
pub mod store;

pub use camera::{RtspFixture, wait_until};
pub use store::{SyntheticEvent, insert_synthetic_events, store_with_key, temp_dir, temp_store};
