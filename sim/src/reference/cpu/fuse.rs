//! Plan rewrites after the steps are laid out: quantized layers, residual Adds and tables of
//! unary activations fused into integer kernels
//! (`etch_ir::quant` says which), steps nobody reads dropped, and steps whose inputs are all
//! constant (a weight's DequantizeLinear, say) computed once at plan time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use etch_ir::infer::GraphInfo;
use etch_ir::op::Op;
use etch_ir::Model;

use super::elementwise::Activation;
use super::int::qdq::IntTable;
use super::int::IntLayer;
use super::{exec, Step};
use crate::reference::value::Value;
use crate::reference::ExecError;

/// Rewrites `steps` in place; `outputs` are the graph outputs' slots; `integer` fuses the quantized layers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rewrite(
    model: &Model,
    info: &GraphInfo,
    steps: &mut Vec<Step>,
    slot_of: &HashMap<String, usize>,
    consts: &mut [Option<Value>],
    outputs: &[usize],
    opset: i64,
    integer: bool,
) -> Result<(), ExecError> {
    let q = if integer {
        etch_ir::quant::analyze(model, info)
    } else {
        Default::default()
    };
    // QOperator layers run in integers whatever `integer` says: their semantics are onnxruntime's
    // integer kernels
    for st in steps.iter_mut() {
        let Some((_, s)) = st.op.qoperator() else {
            continue;
        };
        let operand = |k: usize| {
            st.inputs
                .get(k)
                .copied()
                .flatten()
                .and_then(|s| consts[s].as_ref())
        };
        let out_elem = st.out_elems.first().copied().flatten();
        let layer = out_elem
            .ok_or_else(|| "the output type is unknown".to_string())
            .and_then(|e| IntLayer::qoperator(&st.op, operand, e))
            .map_err(|message| ExecError::Node {
                node: st.name.clone(),
                op: st.op_type.clone(),
                message,
            })?;
        st.inputs = vec![st.inputs[s.x]];
        st.int = Some(Arc::new(layer));
        st.on_codes = true;
    }
    let pos: HashMap<_, usize> = steps.iter().enumerate().map(|(k, s)| (s.node, k)).collect();
    let mut dropped: HashSet<usize> = HashSet::new();
    for l in q.layers.iter().filter(|l| l.is_integer()) {
        let (Some(&k), Some(input), Some(out)) = (pos.get(&l.node.index()), &l.input, &l.output)
        else {
            continue;
        };
        // a layer the integer datapath cannot take (a requantization multiplier of 2^30 or more)
        // runs in float by the QuantizeLinear/DequantizeLinear semantics instead
        let Ok(layer) = IntLayer::new(l) else {
            continue;
        };
        let st = &mut steps[k];
        // the integer kernel reads the input codes and writes the output codes
        st.inputs = vec![Some(slot_of[input.value()])];
        st.outputs = vec![Some(slot_of[&out.value])];
        st.op = Op::Other;
        st.int = Some(Arc::new(layer));
        st.on_codes = true;
        if let Some(&qk) = pos.get(&out.q.index()) {
            dropped.insert(qk);
        }
    }
    for add in &q.adds {
        let Some(&k) = pos.get(&add.node.index()) else {
            continue;
        };
        let st = &mut steps[k];
        st.inputs = add.inputs.iter().map(|(v, _)| Some(slot_of[v])).collect();
        st.outputs = vec![Some(slot_of[&add.output.value])];
        st.add = Some(Arc::new(add.clone()));
        st.on_codes = true;
        if let Some(&qk) = pos.get(&add.output.q.index()) {
            dropped.insert(qk);
        }
    }
    for t in &q.tables {
        let Some(&k) = pos.get(&t.node.index()) else {
            continue;
        };
        // the activation's float semantics on every input code (its other inputs, a Clip's
        // bounds, are constants)
        let st = &steps[k];
        let bounds: Vec<Option<&Value>> = st.inputs[1..]
            .iter()
            .map(|s| s.and_then(|s| consts[s].as_ref()))
            .collect();
        let table = IntTable::new(t, |x| {
            let xv = Value::F32(x);
            let ins: Vec<Option<&Value>> = std::iter::once(Some(&xv)).chain(bounds).collect();
            match exec(st, &ins, opset)?.into_iter().next() {
                Some(Value::F32(y)) => Ok(y),
                _ => Err("the activation gave no float tensor".into()),
            }
        });
        // an activation whose semantics the executor cannot run alone stays in float
        let Ok(table) = table else { continue };
        let st = &mut steps[k];
        st.inputs = vec![Some(slot_of[&t.input])];
        st.outputs = vec![Some(slot_of[&t.output])];
        st.table = Some(Arc::new(table));
        st.on_codes = true;
        if let Some(&qk) = pos.get(&t.q.index()) {
            dropped.insert(qk);
        }
    }
    for p in &q.passthrough {
        let Some(&k) = pos.get(&p.node.index()) else {
            continue;
        };
        let st = &mut steps[k];
        for (i, v) in p.inputs.iter().enumerate() {
            st.inputs[i] = Some(slot_of[v]);
        }
        st.outputs = vec![Some(slot_of[&p.output])];
        st.on_codes = true;
        if let Some(&qk) = pos.get(&p.q.index()) {
            dropped.insert(qk);
        }
    }
    let mut k = 0;
    steps.retain(|_| {
        k += 1;
        !dropped.contains(&(k - 1))
    });
    // steps whose results nobody reads (the fused layers' DequantizeLinear, ReLU) go
    let mut needed: HashSet<usize> = outputs.iter().copied().collect();
    let mut live = vec![false; steps.len()];
    for (k, st) in steps.iter().enumerate().rev() {
        if st.outputs.iter().flatten().any(|s| needed.contains(s)) {
            live[k] = true;
            needed.extend(st.inputs.iter().flatten().copied());
        }
    }
    let mut k = 0;
    steps.retain(|_| {
        k += 1;
        live[k - 1]
    });
    // then a step whose inputs are all known runs now, once
    let mut folded = vec![false; steps.len()];
    for (k, st) in steps.iter().enumerate() {
        let ins: Vec<Option<&Value>> = st
            .inputs
            .iter()
            .map(|s| s.and_then(|s| consts[s].as_ref()))
            .collect();
        let all_const = st.inputs.iter().flatten().count() > 0
            && st
                .inputs
                .iter()
                .zip(&ins)
                .all(|(s, v)| s.is_none() || v.is_some());
        if !all_const
            || st.int.is_some()
            || st.add.is_some()
            || st.table.is_some()
            || matches!(st.op, Op::Other)
        {
            continue;
        }
        if let Ok(outs) = exec(st, &ins, opset) {
            for (s, v) in st.outputs.iter().zip(outs) {
                if let Some(s) = s {
                    consts[*s] = Some(v);
                }
            }
            folded[k] = true;
        }
    }
    let mut k = 0;
    steps.retain(|_| {
        k += 1;
        !folded[k - 1]
    });
    Ok(())
}

/// `steps` with each float ReLU or Clip (constant bounds) whose input is a float convolution's
/// output, read by nothing else and not a graph output, fused into that convolution: the
/// convolution writes the activation's output and the activation step goes. What a run that
/// observes no value executes (an observed run keeps every value, so it runs `steps` as they are).
pub(crate) fn activations(
    steps: &[Step],
    consts: &[Option<Value>],
    outputs: &[usize],
) -> Vec<Step> {
    let mut readers: HashMap<usize, usize> = HashMap::new();
    for st in steps {
        for &s in st.inputs.iter().flatten() {
            *readers.entry(s).or_default() += 1;
        }
    }
    let activation = |st: &Step| -> Option<Activation> {
        if st.on_codes || st.int.is_some() || st.table.is_some() {
            return None;
        }
        match st.op {
            Op::Relu => Some(Activation::Relu),
            Op::Clip { min, max } => {
                // the bounds as the op reads them; one given at run time (no constant) keeps
                // the Clip a step
                let mut ins: Vec<Option<&Value>> = vec![None];
                for s in st.inputs.iter().skip(1) {
                    ins.push(match s {
                        Some(s) => Some(consts[*s].as_ref()?),
                        None => None,
                    });
                }
                let (lo, hi) = super::resolve::clip_bounds(min, max, &ins).ok()?;
                Some(Activation::Clip { lo, hi })
            }
            _ => None,
        }
    };
    let mut fused: Vec<Step> = Vec::with_capacity(steps.len());
    let mut gone = vec![false; steps.len()];
    for (k, st) in steps.iter().enumerate() {
        if gone[k] {
            continue;
        }
        let mut st = st.clone();
        let conv_out = match (&st.op, st.outputs.as_slice()) {
            (Op::Conv { .. }, [Some(s)]) if !st.on_codes && st.int.is_none() => Some(*s),
            _ => None,
        };
        if let Some(s) = conv_out.filter(|s| readers.get(s) == Some(&1) && !outputs.contains(s)) {
            let next = steps
                .iter()
                .enumerate()
                .skip(k + 1)
                .find(|(_, r)| r.inputs.first() == Some(&Some(s)));
            if let Some((j, act)) = next {
                if let (Some(post), [Some(out)]) = (activation(act), act.outputs.as_slice()) {
                    st.post = Some(post);
                    st.outputs = vec![Some(*out)];
                    gone[j] = true;
                }
            }
        }
        fused.push(st);
    }
    fused
}

#[cfg(test)]
mod tests {
    use super::super::Plan;
    use crate::reference::value::{Array, Value};

    /// A chain that takes every convolution path (Winograd, pointwise, depthwise, im2col), each
    /// followed by an activation that fuses, or by one that must not: a Clip whose bound is a
    /// graph input, and a ReLU whose convolution output is also read by an Add.
    fn model() -> etch_ir::Model {
        let mut draw = super::super::test_values(7);
        let mut vals = |n: usize| {
            let v: Vec<String> = draw(n).iter().map(|v| v.to_string()).collect();
            v.join(",")
        };
        let text = format!(
            r#"<ir_version: 8, opset_import: ["" : 17]>
g (float[1,16,8,8] x, float hi) => (float[1,16,4,4] y)
   <float[16,16,3,3] wa = {{{}}}, float[16] ba = {{{}}}, float[16,16,1,1] wb = {{{}}}, float[16] bb = {{{}}}, float[16,1,3,3] wc = {{{}}}, float[16,16,3,3] wd = {{{}}}, float lo = {{-0.25}}, float six = {{0.5}}>
{{
   a = Conv <pads: ints = [1,1,1,1]> (x, wa, ba)
   ar = Relu (a)
   b = Conv (ar, wb, bb)
   bc = Clip (b, lo, six)
   c = Conv <group: int = 16, pads: ints = [1,1,1,1]> (bc, wc)
   cc = Clip (c, lo, six)
   d = Conv <pads: ints = [1,1,1,1], strides: ints = [2,2]> (cc, wd)
   dc = Clip (d, lo, hi)
   e = Conv (dc, wb)
   er = Relu (e)
   y = Add (e, er)
}}"#,
            vals(16 * 16 * 9),
            vals(16),
            vals(16 * 16),
            vals(16),
            vals(16 * 9),
            vals(16 * 16 * 9)
        );
        etch_ir::parse_model_str(&text).unwrap()
    }

    /// The ReLU and the constant Clip fuse, the others stay steps; a run that observes nothing
    /// (fused) gives the same bits as one that observes the first convolution's raw output,
    /// which it sees, negative values and all.
    #[test]
    fn fused_activations_give_the_unfused_bits() {
        let m = model();
        let info = etch_ir::verify::verify(&m).unwrap();
        let plan = Plan::new(&m, &info).unwrap();
        let ops = |steps: &[super::Step]| -> Vec<String> {
            steps.iter().map(|s| s.op_type.clone()).collect()
        };
        assert_eq!(
            ops(&plan.fused),
            ["Conv", "Conv", "Conv", "Conv", "Clip", "Conv", "Relu", "Add"]
        );
        assert_eq!(plan.steps.len(), 11);
        let x: Vec<f32> = (0..16 * 64)
            .map(|k| ((k * 37 % 101) as f32 - 50.0) / 25.0)
            .collect();
        let given = || {
            vec![
                (
                    "x".to_string(),
                    Value::F32(Array::new(vec![1, 16, 8, 8], x.clone())),
                ),
                ("hi".to_string(), Value::F32(Array::new(vec![], vec![0.75]))),
            ]
        };
        let bits = |out: Vec<(String, Value)>| match &out[0].1 {
            Value::F32(a) => a.data.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            v => panic!("unexpected output {v:?}"),
        };
        let fast = bits(plan.run(given()).unwrap());
        let mut raw = Vec::new();
        let observed = plan
            .run_observed(given(), &["a".to_string()], &mut |_, v| {
                if let Value::F32(a) = v {
                    raw = a.data.clone();
                }
            })
            .unwrap();
        assert_eq!(fast, bits(observed));
        assert!(
            raw.iter().any(|&v| v < 0.0),
            "the raw convolution output was observed"
        );
    }
}
