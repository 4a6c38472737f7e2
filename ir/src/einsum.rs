//! `Einsum`'s equation (`"bhqd,bhkd->bhqk"`): which label each operand axis carries and which
//! labels the output keeps. One geometry for shape inference, the CPU executor, the MAC count and
//! the simulator's mapping of a two-operand product onto the array.

use crate::tensor::Dim;

/// One side of an equation: its letters, and where `...` stands among them.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    letters: Vec<u8>,
    ellipsis: Option<usize>,
}

/// A parsed equation, before the operands' ranks are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Equation {
    inputs: Vec<Term>,
    /// `None`: implicit (`"ij,jk"`): the output is the broadcast `...` dims, then every letter
    /// that appears once, lowercase before uppercase as onnxruntime orders them.
    output: Option<Term>,
}

/// An equation resolved against its operands' ranks. Labels are numbered: the `...` dims first
/// (right-aligned across operands, as numpy broadcasts), then the letters in order of appearance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// How many distinct labels there are.
    pub count: usize,
    /// Per operand, the label of each of its axes (a label twice is a diagonal).
    pub inputs: Vec<Vec<usize>>,
    /// The output's labels, one per axis; every other label is summed over.
    pub output: Vec<usize>,
}

/// Onnxruntime's letter order: `a`–`z`, then `A`–`Z`.
fn letter_rank(c: u8) -> u8 {
    if c.is_ascii_lowercase() {
        c - b'a'
    } else {
        c - b'A' + 26
    }
}

impl Term {
    fn parse(s: &str) -> Result<Term, String> {
        let mut letters = Vec::new();
        let mut ellipsis = None;
        let b = s.as_bytes();
        let mut k = 0;
        while k < b.len() {
            match b[k] {
                c if c.is_ascii_alphabetic() => letters.push(c),
                b' ' => {}
                b'.' if b[k..].starts_with(b"...") => {
                    if ellipsis.replace(letters.len()).is_some() {
                        return Err(format!("`{}` has `...` twice", s.escape_default()));
                    }
                    k += 2;
                }
                _ => {
                    return Err(format!(
                        "`{}` holds `{}`; a term has letters and at most one `...`",
                        s.escape_default(),
                        s[k..].chars().next().unwrap_or('?').escape_default()
                    ))
                }
            }
            k += 1;
        }
        Ok(Term { letters, ellipsis })
    }
}

impl Equation {
    /// Parses `equation` (letters, `,` between operands, `...`, an optional `->` output).
    pub fn parse(equation: &str) -> Result<Equation, String> {
        let (lhs, rhs) = match equation.split_once("->") {
            Some((l, r)) => (l, Some(r)),
            None => (equation, None),
        };
        let inputs = lhs
            .split(',')
            .map(Term::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let output = rhs.map(Term::parse).transpose()?;
        if let Some(out) = &output {
            let mut seen = [false; 52];
            for &c in &out.letters {
                let r = letter_rank(c) as usize;
                if std::mem::replace(&mut seen[r], true) {
                    return Err(format!("the output names `{}` twice", c as char));
                }
                if !inputs.iter().any(|t| t.letters.contains(&c)) {
                    return Err(format!("the output's `{}` is in no operand", c as char));
                }
            }
        }
        Ok(Equation { inputs, output })
    }

    /// How many operands the equation names.
    pub fn operands(&self) -> usize {
        self.inputs.len()
    }

    /// Numbers every axis's label for operands of these ranks.
    pub fn resolve(&self, ranks: &[usize]) -> Result<Labels, String> {
        if ranks.len() != self.inputs.len() {
            return Err(format!(
                "the equation names {} operands but the node has {}",
                self.inputs.len(),
                ranks.len()
            ));
        }
        // how many dims each operand's `...` stands for
        let mut spans = Vec::with_capacity(ranks.len());
        for (k, (t, &r)) in self.inputs.iter().zip(ranks).enumerate() {
            let span = r.checked_sub(t.letters.len()).ok_or_else(|| {
                format!(
                    "operand {k} has rank {r} but its term names {} axes",
                    t.letters.len()
                )
            })?;
            if span > 0 && t.ellipsis.is_none() {
                return Err(format!(
                    "operand {k} has rank {r} but its term names {} axes and has no `...`",
                    t.letters.len()
                ));
            }
            spans.push(span);
        }
        let dots = spans.iter().copied().max().unwrap_or(0);
        let mut ids = [usize::MAX; 52];
        let mut count = dots;
        let mut id = |c: u8| {
            let r = letter_rank(c) as usize;
            if ids[r] == usize::MAX {
                ids[r] = count;
                count += 1;
            }
            ids[r]
        };
        let axes = |t: &Term, span: usize, id: &mut dyn FnMut(u8) -> usize| {
            let mut v: Vec<usize> = Vec::with_capacity(t.letters.len() + span);
            for (k, &c) in t.letters.iter().enumerate() {
                if t.ellipsis == Some(k) {
                    v.extend(dots - span..dots);
                }
                v.push(id(c));
            }
            if t.ellipsis == Some(t.letters.len()) {
                v.extend(dots - span..dots);
            }
            v
        };
        let inputs: Vec<Vec<usize>> = self
            .inputs
            .iter()
            .zip(&spans)
            .map(|(t, &s)| axes(t, s, &mut id))
            .collect();
        let output = match &self.output {
            Some(t) => {
                if dots > 0 && t.ellipsis.is_none() {
                    return Err("the operands have `...` dims but the output has no `...`; name them in the output".into());
                }
                axes(t, dots, &mut id)
            }
            None => {
                let mut once: Vec<u8> = Vec::new();
                for t in &self.inputs {
                    for &c in &t.letters {
                        if !once.contains(&c) {
                            once.push(c);
                        }
                    }
                }
                let appearances = |c: u8| -> usize {
                    self.inputs
                        .iter()
                        .map(|t| t.letters.iter().filter(|&&x| x == c).count())
                        .sum()
                };
                once.retain(|&c| appearances(c) == 1);
                once.sort_by_key(|&c| letter_rank(c));
                let mut v: Vec<usize> = (0..dots).collect();
                v.extend(once.into_iter().map(&mut id));
                v
            }
        };
        Ok(Labels {
            count,
            inputs,
            output,
        })
    }
}

impl Equation {
    /// The labels of operands of these shapes and every label's extent: [`Equation::resolve`]
    /// on their ranks, then [`Labels::extents`].
    pub fn label(&self, shapes: &[Vec<Dim>]) -> Result<(Labels, Vec<Dim>), String> {
        let ranks: Vec<usize> = shapes.iter().map(Vec::len).collect();
        let labels = self.resolve(&ranks)?;
        let views: Vec<&[Dim]> = shapes.iter().map(Vec::as_slice).collect();
        let ext = labels.extents(&views)?;
        Ok((labels, ext))
    }

    /// [`Equation::label`] for operands whose extents are all known.
    pub fn label_known(&self, shapes: &[Vec<i64>]) -> Result<(Labels, Vec<u64>), String> {
        let dims: Vec<Vec<Dim>> = shapes
            .iter()
            .map(|s| s.iter().map(|&d| Dim::Known(d)).collect())
            .collect();
        let (labels, ext) = self.label(&dims)?;
        let ext = ext
            .iter()
            .map(|d| d.known().unwrap_or(1).max(0) as u64)
            .collect();
        Ok((labels, ext))
    }
}

impl Labels {
    /// Every label's extent from the operands' shapes: equal wherever it appears, or 1
    /// (broadcast, as onnxruntime allows); `None` for a label whose extent is not known.
    pub fn extents(&self, shapes: &[&[Dim]]) -> Result<Vec<Dim>, String> {
        let mut ext = vec![Dim::Known(1); self.count];
        for (k, (labels, shape)) in self.inputs.iter().zip(shapes).enumerate() {
            for (axis, (&l, d)) in labels.iter().zip(shape.iter()).enumerate() {
                ext[l] = ext[l].broadcast(d).ok_or_else(|| {
                    format!(
                        "operand {k}'s axis {axis} is {d} where another axis of its label is {}",
                        ext[l]
                    )
                })?;
            }
        }
        Ok(ext)
    }

    /// The labels summed over (in no output axis).
    pub fn summed(&self) -> Vec<usize> {
        (0..self.count)
            .filter(|l| !self.output.contains(l))
            .collect()
    }

    /// For two operands, the batched matrix product this is: labels in both operands and the
    /// output (batch), in the first only (rows), in the second only (columns), in both but not
    /// the output (the reduction). `None` for other forms (a label only one operand sums, a
    /// diagonal, more operands).
    pub fn as_matmul(&self) -> Option<[Vec<usize>; 4]> {
        let [a, b] = self.inputs.as_slice() else {
            return None;
        };
        let mut parts: [Vec<usize>; 4] = Default::default();
        for l in 0..self.count {
            let (ia, ib, io) = (a.contains(&l), b.contains(&l), self.output.contains(&l));
            let part = match (ia, ib, io) {
                (true, true, true) => 0,
                (true, false, true) => 1,
                (false, true, true) => 2,
                (true, true, false) => 3,
                _ => return None,
            };
            parts[part].push(l);
        }
        let distinct = |v: &[usize]| (1..v.len()).all(|k| !v[..k].contains(&v[k]));
        (distinct(a) && distinct(b)).then_some(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(d: &[i64]) -> Vec<Dim> {
        d.iter().map(|&v| Dim::Known(v)).collect()
    }

    #[test]
    fn attention_scores_label_batch_rows_columns_and_reduction() {
        let e = Equation::parse("bhqd,bhkd->bhqk").unwrap();
        let l = e.resolve(&[4, 4]).unwrap();
        assert_eq!(l.inputs, vec![vec![0, 1, 2, 3], vec![0, 1, 4, 3]]);
        assert_eq!(l.output, vec![0, 1, 2, 4]);
        assert_eq!(
            l.as_matmul().unwrap(),
            [vec![0, 1], vec![2], vec![4], vec![3]]
        );
        let ext = l
            .extents(&[&known(&[1, 2, 5, 8]), &known(&[1, 2, 7, 8])])
            .unwrap();
        assert_eq!(ext, known(&[1, 2, 5, 8, 7]));
    }

    #[test]
    fn implicit_output_keeps_dots_then_single_letters_lowercase_first() {
        let e = Equation::parse("...Bi,ia").unwrap();
        let l = e.resolve(&[4, 2]).unwrap();
        // `...` is labels 0 and 1, B 2, i 3, a 4; output: ..., a, B
        assert_eq!(l.output, vec![0, 1, 4, 2]);
        assert_eq!(l.summed(), vec![3]);
    }

    #[test]
    fn ellipsis_dims_right_align_and_broadcast() {
        let e = Equation::parse("...ij,...jk->...ik").unwrap();
        let l = e.resolve(&[4, 3]).unwrap();
        assert_eq!(l.inputs[1], vec![1, 3, 4]);
        let ext = l
            .extents(&[&known(&[2, 1, 3, 4]), &known(&[6, 4, 5])])
            .unwrap();
        assert_eq!(ext, known(&[2, 6, 3, 4, 5]));
    }

    #[test]
    fn bad_equations_are_refused() {
        assert!(Equation::parse("ij,jk->iz").is_err());
        assert!(Equation::parse("ij->ii").is_err());
        assert!(Equation::parse("i1,j").is_err());
        assert!(Equation::parse("......i").is_err());
        let e = Equation::parse("ij,jk->ik").unwrap();
        assert!(e.resolve(&[3, 2]).is_err());
        assert!(e.resolve(&[2]).is_err());
        assert!(Equation::parse("...i->i").unwrap().resolve(&[2]).is_err());
        let l = e.resolve(&[2, 2]).unwrap();
        assert!(l.extents(&[&known(&[2, 3]), &known(&[4, 5])]).is_err());
    }
}
