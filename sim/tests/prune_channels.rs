//! Channel pruning on every model of examples/models/: the pruned graph verifies, and it computes
//! what the unpruned model computes once the removed channels' consumers are zeroed instead (their
//! weights for those input channels set to 0), to float rounding.

use std::collections::{BTreeSet, HashMap};

use etch_ir::op::Op;
use etch_ir::passes::{run_spec, RunOptions};
use etch_ir::tensor::Data;
use etch_ir::Model;
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::{Array, Value};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn run(m: &Model, x: &Array<f32>) -> Vec<Vec<f32>> {
    let info = etch_ir::verify::verify(m).unwrap();
    let plan = Plan::new(m, &info).unwrap();
    let name = plan.inputs().next().unwrap().name.clone();
    plan.run(vec![(name, Value::F32(x.clone()))])
        .unwrap()
        .into_iter()
        .map(|(_, v)| match v {
            Value::F32(a) => a.data,
            v => panic!("unexpected output {v:?}"),
        })
        .collect()
}

fn input(shape: &[usize], seed: u32) -> Array<f32> {
    let mut s = seed.wrapping_mul(2654435761).max(1);
    let data = (0..shape.iter().product::<usize>())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect();
    Array::new(shape.to_vec(), data)
}

/// Zeros, in a copy of `m`, the weights that read the removed channels: input channel c of a
/// Conv (group 1), row or column k of a Gemm/MatMul weight.
fn zero_consumers(m: &Model, removed: &HashMap<String, BTreeSet<usize>>) -> Model {
    let mut out = m.clone();
    let g = &m.graph;
    for idx in g.node_order() {
        let n = &g.nodes[idx];
        let Some(r) = n
            .inputs
            .first()
            .and_then(|x| removed.get(x))
            .filter(|r| !r.is_empty())
        else {
            continue;
        };
        // channel-wise readers (BatchNorm, ReLU, pooling, depthwise, Add, Concat) pass the
        // removal on to their own readers
        if !matches!(
            n.op,
            Op::Conv { group: 1, .. } | Op::Gemm { .. } | Op::MatMul
        ) {
            continue;
        }
        // exporters share weights through Identity nodes: zero the initializer behind them (a
        // shared weight is then zeroed for every reader, so the test only uses unshared ones)
        let mut wname = n.inputs[1].clone();
        while g.initializer(&wname).is_none() {
            let p = &g.nodes[g
                .producer(&wname)
                .expect("weights are initializers or Identity of one")];
            assert_eq!(p.op_type, "Identity");
            wname = p.inputs[0].clone();
        }
        let wname = &wname;
        let dims: Vec<usize> = g
            .initializer(wname)
            .unwrap()
            .tensor
            .dims
            .iter()
            .map(|&d| d as usize)
            .collect();
        let Some(Data::F32(w)) = out
            .graph
            .initializer_mut(wname)
            .and_then(|i| i.tensor.data.as_mut())
        else {
            panic!("`{wname}` is not a float weight")
        };
        match n.op {
            Op::Conv { group: 1, .. } => {
                let (c, per) = (dims[1], dims[2..].iter().product::<usize>());
                for o in 0..dims[0] {
                    for &ch in r {
                        w[(o * c + ch) * per..(o * c + ch + 1) * per].fill(0.0);
                    }
                }
            }
            Op::Gemm { trans_b: true, .. } => {
                for o in 0..dims[0] {
                    for &k in r {
                        w[o * dims[1] + k] = 0.0;
                    }
                }
            }
            Op::Gemm { trans_b: false, .. } | Op::MatMul => {
                for &k in r {
                    w[k * dims[1]..(k + 1) * dims[1]].fill(0.0);
                }
            }
            _ => unreachable!("filtered above"),
        }
    }
    out
}

#[test]
fn channel_pruning_equals_zeroed_consumers_on_every_example_model() {
    let mut names: Vec<_> = std::fs::read_dir(format!("{ROOT}/examples/models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".onnx.txt"))
        .collect();
    names.sort();
    assert!(names.len() >= 7);
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut m = etch_ir::parse_model_str(&text).unwrap();
        etch_ir::weights::fill_shape_only(&mut m, 3).unwrap();
        let info = etch_ir::verify::verify(&m).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let removed = match etch_ir::passes::prune::planned_removals(&m, 0.25, false) {
            Ok(r) => r,
            // grouped convolutions are not rewritten; a model whose every channel reaches one
            // is refused with a reason
            Err(e) if text.contains("group: int = 2") => {
                assert!(
                    e.to_string().contains("channel pruning cannot rewrite"),
                    "{name}: {e}"
                );
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let channels: usize = removed.values().map(BTreeSet::len).sum();
        let mut pruned = m.clone();
        let reports = run_spec(
            &mut pruned,
            "prune(sparsity=0.25,granularity=channel)",
            &RunOptions {
                verify_each: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let pinfo = etch_ir::verify::verify(&pruned)
            .unwrap_or_else(|e| panic!("{name}: the pruned graph does not verify: {e}"));
        let before = etch_ir::stats::model_stats(&m, &info, &[]);
        let after = etch_ir::stats::model_stats(&pruned, &pinfo, &[]);
        assert!(
            after.macs < before.macs,
            "{name}: MACs {} → {}",
            before.macs,
            after.macs
        );
        let zeroed = zero_consumers(&m, &removed);
        let x_shape: Vec<usize> = info
            .ty(&m.graph.inputs[0].name)
            .unwrap()
            .shape
            .as_ref()
            .unwrap()
            .iter()
            .map(|d| d.known().unwrap_or(1) as usize)
            .collect();
        let x = input(&x_shape, 7);
        let (a, b) = (run(&pruned, &x), run(&zeroed, &x));
        for (ya, yb) in a.iter().zip(&b) {
            let scale = yb.iter().fold(0.0f32, |s, v| s.max(v.abs()));
            for (k, (p, z)) in ya.iter().zip(yb).enumerate() {
                assert!(
                    (p - z).abs() <= 1e-4 + 1e-3 * scale,
                    "{name}: output {k}: pruned {p} vs zeroed {z} (scale {scale})"
                );
            }
        }
        eprintln!(
            "{name}: {channels} channel entries removed; MACs {} → {}; {}",
            before.macs, after.macs, reports[0].changes[0]
        );
    }
}
