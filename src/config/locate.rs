//! Where each key of a YAML document stands: a map from a key path such as
//! `cameras[1].url` to the line and column of that key (or of the item, for sequence
//! elements), built from yaml-rust2's marked event stream. serde_yaml gives positions for
//! parse and type errors; this index gives them for the checks made after parsing.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column in the config file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

/// Key path → position of the key in the source text.
#[derive(Debug, Default)]
pub struct KeyIndex {
    positions: HashMap<String, Position>,
}

impl KeyIndex {
    /// Indexes `text`; a document that does not scan gives an empty index (serde_yaml then
    /// reports the syntax error with its own position).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            positions: builder.positions,
        }
    }

    /// Every indexed key path, e.g. `cameras[0].url`.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.positions.keys().map(String::as_str)
    }

    /// The position of `path`, or of its nearest indexed parent (a missing key is reported
    /// at the section that should hold it), or line 1 column 1.
    pub fn find(&self, path: &str) -> Position {
        let mut p = path;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) if i > 0 => p = &p[..i],
                _ => return Position { line: 1, col: 1 },
            }
        }
    }
}

enum Frame {
    /// Inside a mapping: the path of the mapping and the key awaiting its value, if any.
    Map {
        path: String,
        pending_key: Option<String>,
    },
    /// Inside a sequence: its path and the index of the next item.
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    positions: HashMap<String, Position>,
}

impl Builder {
    /// The path of the node that starts now, and records where it starts. Returns None when
    /// the node is a mapping key (keys are not values).
    fn enter_value(&mut self, mark: Marker, scalar: Option<&str>) -> Option<String> {
        let pos = Position {
            line: mark.line(),
            col: mark.col() + 1,
        };
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                // A mapping item is placed at its first key (below); yaml-rust2 marks the
                // start of a block mapping after that key.
                if scalar.is_some() {
                    self.positions.entry(p.clone()).or_insert(pos);
                }
                Some(p)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                Some(key) => Some(join(path, &key)),
                None => {
                    // This node is a key. Only scalar keys are meaningful in a config.
                    let key = scalar.unwrap_or("?").to_string();
                    self.positions.entry(path.clone()).or_insert(pos);
                    self.positions.insert(join(path, &key), pos);
                    *pending_key = Some(key);
                    None
                }
            },
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(value, ..) => {
                self.enter_value(mark, Some(&value));
            }
            Event::Alias(_) => {
                self.enter_value(mark, None);
            }
            Event::MappingStart(..) => {
                let path = self.enter_value(mark, None).unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.enter_value(mark, None).unwrap_or_default();
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_sequence_items() {
        let text = "network:\n  bind: 0.0.0.0\ncameras:\n  - id: a\n    url: rtsp://x\n  - id: b\n    url: rtsp://y\n";
        let idx = KeyIndex::build(text);
        assert_eq!(idx.find("network.bind"), Position { line: 2, col: 3 });
        assert_eq!(idx.find("cameras[1].url"), Position { line: 7, col: 5 });
        assert_eq!(idx.find("cameras[1].id"), Position { line: 6, col: 5 });
        // A missing key falls back to its parent.
        assert_eq!(idx.find("cameras[1].name"), Position { line: 6, col: 5 });
        assert_eq!(idx.find("nothing"), Position { line: 1, col: 1 });
    }
}
