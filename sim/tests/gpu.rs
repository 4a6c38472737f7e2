//! The GPU executor against the CPU executor (the golden model): every example model on a seeded
//! random input, and per-op cases on small random tensors for the tricky parameters. Every output
//! element must be within 1e-4 relative or 1e-5 absolute of the CPU's.
//!
//! These tests need a GPU adapter (on a machine without a GPU, Mesa's lavapipe: `apt-get install
//! mesa-vulkan-drivers libvulkan1`); without one they fail with the executor's message, they do
//! not skip.

use std::time::Instant;

use etch_ir::infer::GraphInfo;
use etch_ir::tensor::{Dim, Type};
use etch_ir::Model;
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::gpu::GpuPlan;
use etch_sim::reference::{Array, Value};

const REL: f32 = 1e-4;
const ABS: f32 = 1e-5;

/// Uniform values in [-1, 1) from a seeded xorshift generator.
fn random(shape: &[usize], seed: u64) -> Array<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data = (0..shape.iter().product::<usize>())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Array::new(shape.to_vec(), data)
}

fn verify(model: &Model) -> GraphInfo {
    etch_ir::verify::verify(model).unwrap_or_else(|e| panic!("the test model does not verify: {e}"))
}

fn gpu_plan(model: &Model, info: &GraphInfo) -> GpuPlan {
    GpuPlan::new(model, info).unwrap_or_else(|e| panic!("{e}"))
}

/// The largest absolute difference, the largest relative difference (over nonzero CPU values)
/// and the largest CPU magnitude; panics naming the first element out of bounds.
fn compare(what: &str, cpu: &[(String, Value)], gpu: &[(String, Value)]) -> (f32, f32, f32) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: output count");
    let (mut max_abs, mut max_rel, mut max_out) = (0.0f32, 0.0f32, 0.0f32);
    for ((name, c), (_, g)) in cpu.iter().zip(gpu) {
        assert_eq!(c.shape(), g.shape(), "{what}: shape of `{name}`");
        let (c, g) = match (c, g) {
            (Value::F32(c), Value::F32(g)) => (c, g),
            (Value::I64(c), Value::I64(g)) => {
                assert_eq!(c, g, "{what}: `{name}`");
                continue;
            }
            _ => panic!("{what}: `{name}` has different element types"),
        };
        for (k, (&x, &y)) in c.data.iter().zip(&g.data).enumerate() {
            if x.is_nan() && y.is_nan() {
                continue;
            }
            let d = (x - y).abs();
            assert!(
                d <= ABS || d <= REL * x.abs(),
                "{what}: `{name}` element {k}: CPU {x}, GPU {y}"
            );
            max_abs = max_abs.max(d);
            if x != 0.0 {
                max_rel = max_rel.max(d / x.abs());
            }
            max_out = max_out.max(x.abs());
        }
    }
    (max_abs, max_rel, max_out)
}

/// Random values for every plan input, symbolic dims given `batch`.
fn inputs(plan: &Plan, batch: usize, seed: u64) -> Vec<(String, Value)> {
    plan.inputs()
        .enumerate()
        .map(|(k, pi)| {
            let shape: Vec<usize> = pi
                .dims
                .iter()
                .map(|d| d.known().map_or(batch, |v| v as usize))
                .collect();
            (pi.name.clone(), Value::F32(random(&shape, seed + k as u64)))
        })
        .collect()
}

/// Runs a small graph (ONNX text body, opset 17 unless `header` says otherwise) on both executors.
fn case(name: &str, graph: &str) {
    case_with(name, r#"<ir_version: 8, opset_import: ["" : 17]>"#, graph)
}

fn case_with(name: &str, header: &str, graph: &str) {
    let model = etch_ir::parse_model_str(&format!("{header}\n{graph}"))
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let info = verify(&model);
    let cpu = Plan::new(&model, &info).unwrap_or_else(|e| panic!("{name}: {e}"));
    let gpu = gpu_plan(&model, &info);
    for batch in [1, 2] {
        let given = inputs(&cpu, batch, 11);
        let c = cpu
            .run(given.clone())
            .unwrap_or_else(|e| panic!("{name}: CPU: {e}"));
        let g = gpu
            .run(given)
            .unwrap_or_else(|e| panic!("{name}: GPU: {e}"));
        compare(name, &c, &g);
        // a second run replays the recording
        let given = inputs(&cpu, batch, 12);
        compare(
            name,
            &cpu.run(given.clone()).unwrap(),
            &gpu.run(given).unwrap(),
        );
    }
}

#[test]
fn conv_grouped_depthwise_dilated() {
    // 20 outputs per group: the tiled implicit GEMM, one batch per (image, group)
    case("conv grouped (tiled)", "g (float[N,8,10,10] x, float[40,4,3,3] w, float[40] b) => (float[] y) { y = Conv <group: int = 2, strides: ints = [2,1], pads: ints = [1,0,2,1]> (x, w, b) }");
    // 8 outputs per group: the skinny kernel
    case("conv grouped (skinny)", "g (float[N,8,10,10] x, float[16,4,3,3] w, float[16] b) => (float[] y) { y = Conv <group: int = 2, dilations: ints = [2,1], pads: ints = [2,1,2,1]> (x, w, b) }");
    // 2 outputs per group: the direct kernel
    case("conv grouped (direct)", "g (float[N,8,9,7] x, float[8,2,3,3] w) => (float[] y) { y = Conv <group: int = 4, pads: ints = [1,1,1,1]> (x, w) }");
    case("conv depthwise", "g (float[N,6,9,9] x, float[6,1,3,3] w, float[6] b) => (float[] y) { y = Conv <group: int = 6, strides: ints = [2,2], pads: ints = [1,1,1,1]> (x, w, b) }");
    case("conv depthwise ×2", "g (float[N,6,8,8] x, float[12,1,5,5] w) => (float[] y) { y = Conv <group: int = 6, pads: ints = [2,2,2,2], dilations: ints = [1,2]> (x, w) }");
    case("conv dilated", "g (float[N,3,16,16] x, float[16,3,3,3] w, float[16] b) => (float[] y) { y = Conv <dilations: ints = [2,3], pads: ints = [2,3,2,3]> (x, w, b) }");
    case("conv pointwise", "g (float[N,16,7,7] x, float[32,16,1,1] w, float[32] b) => (float[] y) { y = Conv (x, w, b) }");
    case("conv ragged tiles", "g (float[N,5,11,13] x, float[70,5,3,3] w, float[70] b) => (float[] y) { y = Conv <strides: ints = [1,2]> (x, w, b) }");
    case("conv 1-d", "g (float[N,4,20] x, float[12,4,5] w) => (float[] y) { y = Conv <pads: ints = [2,1], strides: ints = [3]> (x, w) }");
    case("conv same_lower", "g (float[N,3,17,16] x, float[8,3,4,3] w) => (float[] y) { y = Conv <auto_pad: string = \"SAME_LOWER\", strides: ints = [2,2]> (x, w) }");
}

#[test]
fn pools_ceil_mode_and_padding() {
    case("maxpool ceil", "g (float[N,3,11,11] x) => (float[] y) { y = MaxPool <kernel_shape: ints = [3,3], strides: ints = [2,2], ceil_mode: int = 1> (x) }");
    case("maxpool ceil drops a window", "g (float[N,2,5,5] x) => (float[] y) { y = MaxPool <kernel_shape: ints = [2,2], strides: ints = [2,2], pads: ints = [1,1,1,1], ceil_mode: int = 1> (x) }");
    case("maxpool dilated", "g (float[N,2,9,9] x) => (float[] y) { y = MaxPool <kernel_shape: ints = [2,3], dilations: ints = [2,2], pads: ints = [0,1,1,0]> (x) }");
    for (ceil, include) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        case(
            &format!("avgpool ceil {ceil} count_include_pad {include}"),
            &format!("g (float[N,2,10,10] x) => (float[] y) {{ y = AveragePool <kernel_shape: ints = [3,3], strides: ints = [2,2], pads: ints = [1,1,1,1], ceil_mode: int = {ceil}, count_include_pad: int = {include}> (x) }}"),
        );
    }
    case("avgpool asymmetric pads", "g (float[N,2,7,8] x) => (float[] y) { y = AveragePool <kernel_shape: ints = [3,2], strides: ints = [2,3], pads: ints = [0,1,2,1], ceil_mode: int = 1, count_include_pad: int = 1> (x) }");
    case("avgpool 1-d", "g (float[N,3,12] x) => (float[] y) { y = AveragePool <kernel_shape: ints = [4], strides: ints = [3], pads: ints = [1,2]> (x) }");
    case("global pools", "g (float[N,5,6,7] x) => (float[] y, float[] z) { y = GlobalAveragePool (x) z = GlobalMaxPool (x) }");
}

#[test]
fn broadcasting_and_activations() {
    case(
        "add broadcast",
        "g (float[N,3,1,5] a, float[4,1] b) => (float[] y) { y = Add (a, b) }",
    );
    case(
        "sub size-1 axis",
        "g (float[N,3,4] a, float[1] b) => (float[] y) { y = Sub (b, a) }",
    );
    case(
        "mul middle axis",
        "g (float[N,3,4] a, float[3,1] b) => (float[] y) { y = Mul (a, b) }",
    );
    case(
        "div same shape",
        "g (float[N,6] a, float[N,6] b) => (float[] y) { y = Div (a, b) }",
    );
    case(
        "relu sigmoid",
        "g (float[N,7,3] x) => (float[] y, float[] z) { y = Relu (x) z = Sigmoid (x) }",
    );
    case("clip relu6", "g (float[N,3,4,4] x) => (float[] y) { lo = Constant <value: tensor = float {-0.25}> () hi = Constant <value: tensor = float {0.5}> () y = Clip (x, lo, hi) }");
    case("clip min only", "g (float[N,9] x) => (float[] y) { lo = Constant <value: tensor = float {0.1}> () y = Clip (x, lo) }");
    case("hard activations", "g (float[N,3,5] x) => (float[] y, float[] z) { y = HardSwish (x) z = HardSigmoid <alpha: float = 0.3, beta: float = 0.4> (x) }");
    // every etch_ir::op::Unary function, on [-6, 6) (their tails) and, where the domain is
    // positive, on |x|·6 + 0.05
    case_with(
        "unary functions",
        r#"<ir_version: 9, opset_import: ["" : 20]>"#,
        "g (float[N,4,16] x) => (float[] a, float[] b, float[] c, float[] d, float[] e, float[] f, float[] g, float[] h, float[] i, float[] j, float[] k, float[] l, float[] m, float[] n, float[] o, float[] p, float[] q, float[] r, float[] t) {
            six = Constant <value: tensor = float {6}> ()
            eps = Constant <value: tensor = float {0.05}> ()
            s = Mul (x, six)
            u = Abs (s)
            pos = Add (u, eps)
            a = Tanh (s)
            b = Erf (s)
            c = Gelu (s)
            d = Gelu <approximate: string = \"tanh\"> (s)
            e = LeakyRelu <alpha: float = 0.2> (s)
            f = Elu <alpha: float = 0.7> (s)
            g = Softplus (s)
            h = Softsign (s)
            i = Mish (s)
            j = Exp (s)
            k = Neg (s)
            l = Floor (s)
            m = Ceil (s)
            n = Sin (s)
            o = Cos (s)
            p = Log (pos)
            q = Sqrt (pos)
            r = Reciprocal (pos)
            t = Erf (x)
        }",
    );
}

#[test]
fn products() {
    case("gemm transposed, C broadcast", "g (float[20,5] a, float[7,20] b, float[7] c) => (float[] y) { y = Gemm <transA: int = 1, transB: int = 1, alpha: float = 0.5, beta: float = 2.0> (a, b, c) }");
    case(
        "gemm tiled, column C",
        "g (float[33,30] a, float[30,70] b, float[33,1] c) => (float[] y) { y = Gemm (a, b, c) }",
    );
    case("gemm batch rows", "g (float[N,40] a, float[10,40] b, float[10] c) => (float[] y) { y = Gemm <transB: int = 1> (a, b, c) }");
    case(
        "matmul batched broadcast",
        "g (float[2,1,4,5] a, float[3,5,6] b) => (float[] y) { y = MatMul (a, b) }",
    );
    case(
        "matmul vector",
        "g (float[5] a, float[5,6] b) => (float[] y) { y = MatMul (a, b) }",
    );
    case(
        "matmul tiled",
        "g (float[N,17,33] a, float[33,70] b) => (float[] y) { y = MatMul (a, b) }",
    );
}

#[test]
fn normalization_and_reductions() {
    case(
        "batchnorm",
        "g (float[N,3,4,5] x) => (float[] y) <float[3] s = {0.5,1.5,-1}, float[3] b = {0.1,0,-0.2}, float[3] m = {0.3,-0.1,0}, float[3] v = {1,0.25,2}> { y = BatchNormalization <epsilon: float = 1e-5> (x, s, b, m, v) }",
    );
    case(
        "softmax last axis",
        "g (float[N,3,10] x) => (float[] y) { y = Softmax <axis: int = -1> (x) }",
    );
    case(
        "softmax middle axis",
        "g (float[N,4,6] x) => (float[] y) { y = Softmax <axis: int = 1> (x) }",
    );
    case_with(
        "softmax opset 11 (coerced to 2-D)",
        r#"<ir_version: 6, opset_import: ["" : 11]>"#,
        "g (float[N,4,6] x) => (float[] y) { y = Softmax <axis: int = 1> (x) }",
    );
    case("layernorm last axis", "g (float[N,3,10] x) => (float[] y) <float[10] s = {1,0.5,2,-1,0.25,1,1.5,0.75,-0.5,3}, float[10] b = {0,0.1,-0.1,0.2,0,0,0.3,-0.2,0,1}> { y = LayerNormalization <epsilon: float = 1e-5> (x, s, b) }");
    case("layernorm from axis 1 without bias", "g (float[N,3,4,5] x) => (float[] y) <float[4,5] s = {1,2,3,4,5,-1,-2,-3,-4,-5,0.5,1,1.5,2,2.5,1,1,1,1,1}> { y = LayerNormalization <axis: int = 2, epsilon: float = 1e-3> (x, s) }");
    case("reducemean", "g (float[N,8,5,3] x) => (float[] y, float[] z) { y = ReduceMean <axes: ints = [1,3], keepdims: int = 0> (x) z = ReduceMean (x) }");
    case("reducemax", "g (float[N,8,5,3] x) => (float[] y, float[] z) { y = ReduceMax <axes: ints = [1,3], keepdims: int = 0> (x) z = ReduceMax (x) }");
    case("reducemin reducesum reducel2", "g (float[N,8,5,3] x) => (float[] y, float[] z, float[] w) { y = ReduceMin <axes: ints = [1,3], keepdims: int = 0> (x) z = ReduceSum (x) w = ReduceL2 <axes: ints = [2]> (x) }");
}

#[test]
fn upsampling() {
    case("resize nearest 2x", "g (float[N,3,4,5] x) => (float[] y) { s = Constant <value: tensor = float[4] {1,1,2,2}> () y = Resize <mode: string = \"nearest\", coordinate_transformation_mode: string = \"asymmetric\", nearest_mode: string = \"floor\"> (x, , s) }");
    case("resize linear half pixel", "g (float[N,2,3,4] x) => (float[] y) { s = Constant <value: tensor = float[4] {1,1,2,1.5}> () y = Resize <mode: string = \"linear\"> (x, , s) }");
    case("resize linear align corners down", "g (float[N,2,7,5] x) => (float[] y) { z = Constant <value: tensor = int64[4] {1,2,3,4}> () y = Resize <mode: string = \"linear\", coordinate_transformation_mode: string = \"align_corners\"> (x, , , z) }");
    case("convtranspose stride 2 output padding bias", "g (float[N,2,3,3] x) => (float[] y) <float[2,3,3,3] w = {1,2,3,4,5,6,7,8,9,-1,-2,-3,-4,-5,-6,-7,-8,-9,0.5,1,1.5,2,2.5,3,3.5,4,4.5,1,0,1,0,1,0,1,0,1,2,1,0,-1,-2,-1,0,1,2,0.25,0.5,0.75,1,1.25,1.5,1.75,2,2.25}, float[3] b = {0.1,-0.2,0.3}> { y = ConvTranspose <strides: ints = [2,2], pads: ints = [1,1,1,1], output_padding: ints = [1,1]> (x, w, b) }");
    case("convtranspose grouped dilated 1d", "g (float[N,4,5] x) => (float[] y) <float[4,3,3] w = {1,2,3,4,5,6,7,8,9,-1,-2,-3,-4,-5,-6,-7,-8,-9,0.5,1,1.5,2,2.5,3,3.5,4,4.5,1,0,1,0,1,0,1,0,1}> { y = ConvTranspose <group: int = 2, dilations: ints = [2], strides: ints = [3], pads: ints = [1,2]> (x, w) }");
    case("expand", "g (float[N,1,4] x) => (float[] y) { s = Constant <value: tensor = int64[4] {2,1,3,4}> () y = Expand (x, s) }");
}

/// Every PyTorch export of examples/models/exported (scripts/export_zoo.sh) on both executors.
#[test]
fn pytorch_exports_match_cpu() {
    let dir = format!("{}/../examples/models/exported", env!("CARGO_MANIFEST_DIR"));
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 12, "{dir} holds {} exports", paths.len());
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let p = etch_sim::pipeline::Pipeline::default()
            .load(path.to_str().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        both_match(&name, &p.model, &p.info, 1);
    }
}

#[test]
fn data_movement() {
    case("concat", "g (float[N,3,4] a, float[N,5,4] b, float[N,1,4] c) => (float[] y) { y = Concat <axis: int = 1> (a, b, c) }");
    case(
        "concat last axis",
        "g (float[N,3,4] a, float[N,3,2] b) => (float[] y) { y = Concat <axis: int = -1> (a, b) }",
    );
    case("split", "g (float[N,6,4] x) => (float[] y, float[] z) { sp = Constant <value: tensor = int64[2] {2,4}> () y, z = Split <axis: int = 1> (x, sp) }");
    case("split even", "g (float[N,4,6] x) => (float[] y, float[] z, float[] w) { y, z, w = Split <axis: int = 2> (x) }");
    case("slice negative step", "g (float[N,10,20] x) => (float[] y) { s = Constant <value: tensor = int64[2] {8,-2}> () e = Constant <value: tensor = int64[2] {1,-1000}> () a = Constant <value: tensor = int64[2] {1,2}> () st = Constant <value: tensor = int64[2] {-3,-4}> () y = Slice (x, s, e, a, st) }");
    case(
        "transpose",
        "g (float[N,3,4,5] x) => (float[] y) { y = Transpose <perm: ints = [2,0,3,1]> (x) }",
    );
    for mode in ["constant", "edge", "reflect"] {
        case(
            &format!("pad {mode}"),
            &format!("g (float[N,3,4,5] x) => (float[] y) {{ p = Constant <value: tensor = int64[8] {{0,0,1,2,0,0,3,2}}> () v = Constant <value: tensor = float {{0.75}}> () y = Pad <mode: string = \"{mode}\"> (x, p, v) }}"),
        );
    }
    case("pad crops", "g (float[N,3,6,6] x) => (float[] y) { p = Constant <value: tensor = int64[8] {0,0,-1,2,0,0,1,-2}> () y = Pad (x, p) }");
    case("gather", "g (float[N,5,3] x) => (float[] y) { i = Constant <value: tensor = int64[2,2] {4,-5,0,2}> () y = Gather <axis: int = 1> (x, i) }");
    // int64 arithmetic on a shape not known before the run (the symbolic batch): on the host
    case(
        "shape arithmetic",
        "g (float[N,2] x) => (float[] y) { s = Shape (x) two = Constant <value: tensor = int64 {2}> () t = Mul (s, two) f = Cast <to: int = 1> (t) y = Mul (x, f) }",
    );
    case("squeeze unsqueeze flatten", "g (float[N,3,1,5] x) => (float[] y) { a = Constant <value: tensor = int64[1] {2}> () s = Squeeze (x, a) b = Constant <value: tensor = int64[2] {1,-1}> () u = Unsqueeze (s, b) f = Flatten <axis: int = 2> (u) y = Sigmoid (f) }");
}

/// Loads an example model with its shape-only weights filled (seed 7); optionally replaces a fixed
/// batch of 1 with a symbolic one (`symbolic_batch`).
fn example(name: &str, symbolic_batch: bool) -> (Model, GraphInfo) {
    let path = format!(
        "{}/../examples/models/{name}.onnx.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let src = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut model = etch_ir::parse_model(&src).unwrap_or_else(|e| panic!("{path}: {e:?}"));
    etch_ir::weights::fill_shape_only(&mut model, 7).unwrap();
    if symbolic_batch {
        let Some(Type::Tensor(tt)) = &mut model.graph.inputs[0].ty else {
            panic!("{name}: the input is not a tensor")
        };
        tt.shape.as_mut().expect("a ranked input")[0] = Dim::Param("batch".into());
        model.graph.outputs[0].ty = None;
    }
    let info = verify(&model);
    (model, info)
}

// GPU time of one run on lavapipe (llvmpipe, 2 cores, dev profile, a loaded machine), measured
// when these tests were written: resnet50 8.6 s, alexnet 4.3 s, resnet18 2.7 s, mobilenet_v2 1.1 s,
// squeezenet1_1 0.7 s (2.5 s at batch 2), the digits models under 10 ms; the whole file about 31 s
// on one test thread. Every model stays under 20 s, so each runs at its full input size.

/// Every batch size of an example model on both executors.
fn model_matches(name: &str, batches: &[usize]) {
    for &batch in batches {
        let (model, info) = example(name, batch != 1);
        both_match(name, &model, &info, batch);
    }
}

/// Runs a model on both executors at `batch` and reports the largest differences and the GPU
/// time. Small models run twice on the GPU (the second run replays the recording).
fn both_match(name: &str, model: &Model, info: &GraphInfo, batch: usize) {
    let cpu = Plan::new(model, info).unwrap_or_else(|e| panic!("{name}: {e}"));
    let gpu = gpu_plan(model, info);
    let given = inputs(&cpu, batch, 42);
    let c = cpu
        .run(given.clone())
        .unwrap_or_else(|e| panic!("{name}: CPU: {e}"));
    let t = Instant::now();
    let g = gpu
        .run(given.clone())
        .unwrap_or_else(|e| panic!("{name}: GPU: {e}"));
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let (abs, rel, out) = compare(name, &c, &g);
    println!("{name} batch {batch}: max abs err {abs:.2e}, max rel err {rel:.2e} (outputs up to {out:.2e}); GPU run {ms:.0} ms on {}", gpu.adapter());
    if ms < 1000.0 {
        compare(name, &c, &gpu.run(given).unwrap());
    }
}

#[test]
fn digits_cnn_matches_cpu() {
    model_matches("digits_cnn", &[1, 2]);
}

#[test]
fn digits_mlp_matches_cpu() {
    model_matches("digits_mlp", &[1, 2]);
}

#[test]
fn alexnet_matches_cpu() {
    model_matches("alexnet", &[1]);
}

#[test]
fn squeezenet_matches_cpu() {
    model_matches("squeezenet1_1", &[1, 2]);
}

#[test]
fn mobilenet_v2_matches_cpu() {
    model_matches("mobilenet_v2", &[1]);
}

#[test]
fn resnet18_matches_cpu() {
    model_matches("resnet18", &[1]);
}

#[test]
fn resnet50_matches_cpu() {
    model_matches("resnet50", &[1]);
}
