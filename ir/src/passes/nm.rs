//! `nm`: N:M structured sparsity: in every group of M consecutive weights along the reduction axis,
//! only the N largest in magnitude stay (2:4, 1:4, 4:8), the pattern sparse tensor cores exploit.

use super::prune::weight_views;
use super::{Args, Param, ParamKind, Pass, PassContext, PassDef};
use crate::graph::Model;
use crate::tensor::Data;

/// Registry entry.
pub const DEF: PassDef = PassDef {
    name: "nm",
    description: "N:M structured sparsity: keep the N largest of every M consecutive weights along the reduction axis.",
    params: &[
        Param { name: "n", kind: ParamKind::Int { min: 1, max: 16 }, default: Some("2"), doc: "weights kept per group" },
        Param { name: "m", kind: ParamKind::Int { min: 2, max: 32 }, default: Some("4"), doc: "group size along the reduction axis" },
    ],
    build: |a: &Args| {
        let (n, m) = (a.int("n"), a.int("m"));
        if n >= m {
            return Err(format!("n must be smaller than m, but n={n} and m={m}"));
        }
        Ok(Box::new(Nm { n: n as usize, m: m as usize }))
    },
};

struct Nm {
    n: usize,
    m: usize,
}

/// Whether every group of `m` along the reduction axis of a weight holds at most `n` non-zeros.
pub fn satisfies(
    values: &[f32],
    outs: usize,
    reduction: usize,
    at: impl Fn(usize, usize) -> usize,
    n: usize,
    m: usize,
) -> bool {
    (0..outs).all(|o| {
        (0..reduction).step_by(m).all(|r0| {
            (r0..(r0 + m).min(reduction))
                .filter(|&r| values[at(o, r)] != 0.0)
                .count()
                <= n
        })
    })
}

/// Whether every group of `m` along the reduction axis of output-major codes holds at most `n` non-zeros.
pub fn satisfies_codes(codes: &[i8], outs: usize, reduction: usize, n: usize, m: usize) -> bool {
    (0..outs).all(|o| {
        (0..reduction).step_by(m).all(|r0| {
            (r0..(r0 + m).min(reduction))
                .filter(|&r| codes[o * reduction + r] != 0)
                .count()
                <= n
        })
    })
}

impl Pass for Nm {
    fn precondition(&self, model: &Model) -> Result<(), String> {
        super::require_weight_values(model)?;
        if weight_views(&model.graph).is_empty() {
            return Err("no Conv, Gemm or MatMul has a float weight initializer".into());
        }
        Ok(())
    }

    fn run(&self, model: &mut Model, _: &PassContext) -> Result<Vec<String>, String> {
        let views = weight_views(&model.graph);
        let mut lines = Vec::new();
        let (mut zeros, mut total) = (0, 0);
        for v in &views {
            let Some(Data::F32(vals)) = model
                .graph
                .initializer_mut(&v.name)
                .and_then(|i| i.tensor.data.as_mut())
            else {
                continue;
            };
            for o in 0..v.outs {
                for r0 in (0..v.reduction).step_by(self.m) {
                    let mut idx: Vec<usize> = (r0..(r0 + self.m).min(v.reduction))
                        .map(|r| v.at(o, r))
                        .collect();
                    idx.sort_by(|&a, &b| vals[b].abs().total_cmp(&vals[a].abs()).then(a.cmp(&b)));
                    for &i in idx.iter().skip(self.n) {
                        vals[i] = 0.0;
                    }
                }
            }
            if v.reduction % self.m != 0 {
                lines.push(format!("`{}`: its reduction length {} is not a multiple of {}; the last group of each row is shorter", v.name, v.reduction, self.m));
            }
            zeros += vals.iter().filter(|x| **x == 0.0).count();
            total += vals.len();
        }
        lines.insert(
            0,
            format!(
                "enforced {}:{} sparsity on {} layers: {zeros} of {total} weights are zero",
                self.n,
                self.m,
                views.len()
            ),
        );
        Ok(lines)
    }
}
