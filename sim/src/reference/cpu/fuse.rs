//! Plan rewrites after the steps are laid out: quantized layers, residual Adds and tables of
//! unary activations fused into integer kernels
//! (`etch_ir::quant` says which), steps nobody reads dropped, and steps whose inputs are all
//! constant (a weight's DequantizeLinear, say) computed once at plan time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use etch_ir::infer::GraphInfo;
use etch_ir::op::Op;
use etch_ir::Model;

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
