//! Exact rewrites of a YOLO ONNX graph before tract loads it.
//!
//! YOLOX (and YOLOv5 before SPPF) end the backbone with spatial pyramid pooling: three
//! stride-1 "same" max pools of 5x5, 9x9 and 13x13 over one input. Max pooling with
//! −∞ padding composes exactly: a 9x9 pool is two 5x5 pools in a row, a 13x13 pool three,
//! and a 5x5 pool is a 1x5 pool followed by a 5x1 one. So the three pools become one
//! chain of separable 5x5 pools whose outputs are taken at 5, 9 and 13: 30 comparisons a
//! pixel instead of 275, and bit-identical outputs. tract spent 9 % of YOLOX-nano's time
//! in those pools (`scripts/profile.sh detect`).

use tract_onnx::pb::{AttributeProto, GraphProto, NodeProto, attribute_proto::AttributeType};

/// The kernel side a chain is built from.
const STEP: i64 = 5;

/// The kernel side of a stride-1 square max pool padded by half its kernel on every side
/// (its output keeps the input's size), when it is a whole number of chain steps: the
/// only shape rewritten.
fn same_square_kernel(node: &NodeProto) -> Option<i64> {
    if node.op_type != "MaxPool" || !node.domain.is_empty() || node.output.len() != 1 {
        return None;
    }
    let (mut kernel, mut pads) = (None, None);
    for attr in &node.attribute {
        let all_one = attr.ints.iter().all(|v| *v == 1);
        match (attr.name.as_str(), attr.ints.as_slice()) {
            ("kernel_shape", [h, w]) if h == w => kernel = Some(*h),
            ("pads", [a, b, c, d]) if [b, c, d].iter().all(|p| *p == a) => pads = Some(*a),
            ("strides" | "dilations", _) if all_one => {}
            ("ceil_mode" | "storage_order", _) if attr.i == 0 => {}
            _ => return None,
        }
    }
    let k = kernel?;
    let whole_steps = k > 1 && (k - 1) % (STEP - 1) == 0;
    (pads? * 2 + 1 == k && whole_steps).then_some(k)
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// One 1-D pool of `STEP` along the height (`vertical`) or the width.
fn pool_1d(input: &str, output: &str, vertical: bool) -> NodeProto {
    let half = STEP / 2;
    let (kernel, pad) = if vertical {
        ([STEP, 1], [half, 0, half, 0])
    } else {
        ([1, STEP], [0, half, 0, half])
    };
    NodeProto {
        name: format!("{output}/pool"),
        op_type: "MaxPool".to_string(),
        input: vec![input.to_string()],
        output: vec![output.to_string()],
        attribute: vec![
            ints("kernel_shape", &kernel),
            ints("pads", &pad),
            ints("strides", &[1, 1]),
        ],
        ..Default::default()
    }
}

/// The nodes that take `input` to `output` through `steps` separable 5x5 pools.
fn chain(input: &str, output: &str, steps: i64) -> Vec<NodeProto> {
    let mut nodes = Vec::new();
    let mut from = input.to_string();
    for step in 0..steps {
        let rows = format!("{output}/sentrix_pool{step}_w");
        let last = step + 1 == steps;
        let to = if last {
            output.to_string()
        } else {
            format!("{output}/sentrix_pool{step}")
        };
        nodes.push(pool_1d(&from, &rows, false));
        nodes.push(pool_1d(&rows, &to, true));
        from = to;
    }
    nodes
}

/// Rewrites every group of same-size max pools over one input into a chain of separable
/// 5x5 pools (see the module docs); returns how many pools were rewritten.
pub fn chain_max_pools(graph: &mut GraphProto) -> usize {
    let kernels: Vec<Option<i64>> = graph.node.iter().map(same_square_kernel).collect();
    let mut rewritten = 0;
    let mut done_inputs: Vec<String> = Vec::new();
    let mut nodes = Vec::with_capacity(graph.node.len() + 8);
    for (index, node) in graph.node.iter().enumerate() {
        let Some(input) = kernels[index].and(node.input.first()) else {
            nodes.push(node.clone());
            continue;
        };
        if done_inputs.contains(input) {
            continue; // emitted with the first pool of its group
        }
        // The whole group over this input, smallest kernel first, emitted here so every
        // node still follows the nodes it reads.
        let mut group: Vec<(i64, &str)> = graph
            .node
            .iter()
            .zip(&kernels)
            .filter_map(|(n, k)| Some((*k.as_ref()?, n)))
            .filter(|(_, n)| n.input.first() == Some(input))
            .map(|(k, n)| (k, n.output[0].as_str()))
            .collect();
        group.sort_by_key(|(k, _)| *k);
        let (mut from, mut from_kernel) = (input.clone(), 1);
        for (kernel, output) in group {
            nodes.extend(chain(&from, output, (kernel - from_kernel) / (STEP - 1)));
            (from, from_kernel) = (output.to_string(), kernel);
            rewritten += 1;
        }
        done_inputs.push(input.clone());
    }
    graph.node = nodes;
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_pool(input: &str, output: &str, k: i64) -> NodeProto {
        let p = k / 2;
        NodeProto {
            op_type: "MaxPool".into(),
            input: vec![input.into()],
            output: vec![output.into()],
            attribute: vec![
                ints("kernel_shape", &[k, k]),
                ints("pads", &[p, p, p, p]),
                ints("strides", &[1, 1]),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn an_spp_group_becomes_one_chain_of_separable_pools() {
        let mut graph = GraphProto {
            node: vec![
                max_pool("x", "p13", 13),
                max_pool("x", "p5", 5),
                max_pool("x", "p9", 9),
            ],
            ..Default::default()
        };
        assert_eq!(chain_max_pools(&mut graph), 3);
        // 3 separable steps (2 nodes each), each reading the one before.
        assert_eq!(graph.node.len(), 6);
        for pair in graph.node.windows(2) {
            assert_eq!(pair[1].input[0], pair[0].output[0]);
        }
        let outputs: Vec<&str> = graph.node.iter().map(|n| n.output[0].as_str()).collect();
        assert_eq!(graph.node[0].input[0], "x");
        assert_eq!(outputs[1], "p5");
        assert_eq!(outputs[3], "p9");
        assert_eq!(outputs[5], "p13");
    }

    /// YOLOX-nano at 320 on a fixed pattern: the plan's output, with or without the rewrite.
    fn yolox_output(rewrite: bool) -> tract_onnx::prelude::Tensor {
        use tract_onnx::prelude::*;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/yolox_nano.onnx");
        let onnx = tract_onnx::onnx();
        let mut proto = onnx.proto_model_for_path(path).unwrap();
        if rewrite {
            assert_eq!(chain_max_pools(proto.graph.as_mut().unwrap()), 3);
        }
        let mut model = onnx.model_for_proto_model(&proto).unwrap();
        for node in model.nodes.iter_mut() {
            for outlet in node.outputs.iter_mut() {
                outlet.fact = InferenceFact::default();
            }
        }
        let plan = model
            .with_input_fact(0, f32::fact([1, 3, 320, 320]).into())
            .and_then(|m| m.into_optimized())
            .and_then(|m| m.into_runnable())
            .unwrap();
        let input = tract_ndarray::Array4::from_shape_fn((1, 3, 320, 320), |(_, c, y, x)| {
            ((x * 7 + y * 13 + c * 31) % 256) as f32
        });
        let out = plan.run(tvec!(Tensor::from(input).into())).unwrap();
        out[0].clone().into_tensor()
    }

    #[test]
    fn yolox_gives_the_same_output_bit_for_bit() {
        let (before, after) = (yolox_output(false), yolox_output(true));
        assert_eq!(before.shape(), after.shape());
        let bits = |t: &tract_onnx::prelude::Tensor| -> Vec<u32> {
            let view = t.to_plain_array_view::<f32>().unwrap();
            view.iter().map(|v| v.to_bits()).collect()
        };
        let (a, b) = (bits(&before), bits(&after));
        assert_eq!(a.len(), b.len());
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y);
        assert_eq!(differing.count(), 0);
    }

    #[test]
    fn other_pools_are_left_alone() {
        let mut strided = max_pool("x", "a", 5);
        strided.attribute[2] = ints("strides", &[2, 2]);
        let mut graph = GraphProto {
            node: vec![strided, max_pool("x", "b", 3), max_pool("x", "c", 7)],
            ..Default::default()
        };
        let before = graph.node.clone();
        assert_eq!(chain_max_pools(&mut graph), 0);
        assert_eq!(graph.node, before);
    }
}
