//! The verdict of a testbench run, decided by etch: the output codes the testbench wrote to a
//! file, compared here with the golden codes etch wrote at compile time. What a testbench prints
//! is only a log; a testbench that prints a pass line without writing the right codes fails.

use std::path::Path;

use serde::Serialize;

use crate::CodegenError;

/// The first output code that differs from the golden one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub sample: usize,
    /// The element of the output (flat, C order); None when the sample has another number of codes.
    pub index: Option<usize>,
    /// The code the design produced (None: X, or missing).
    pub got: Option<i64>,
    /// The golden code (for a wrong count: the number of codes expected).
    pub expected: i64,
    /// `sample S, NAME[i,j]: got G, golden E`, or what was wrong with the count.
    pub message: String,
}

/// The comparison of every sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub bit_exact: bool,
    /// Golden samples, and output codes compared equal before the first mismatch (all of them
    /// when bit-exact).
    pub samples: usize,
    pub outputs: usize,
    pub first_mismatch: Option<Mismatch>,
}

/// The output element `index` of a tensor of `shape`, as `name[i,j,…]`.
pub fn element(name: &str, shape: &[usize], index: usize) -> String {
    let mut rest = index;
    let mut idx = vec![0; shape.len()];
    for (k, &d) in shape.iter().enumerate().rev() {
        if d > 0 {
            idx[k] = rest % d;
            rest /= d;
        }
    }
    let s: Vec<String> = idx.iter().map(|i| i.to_string()).collect();
    format!("{name}[{}]", s.join(","))
}

/// Compares what the design wrote (`got`, per sample; a code None for X) with the golden codes
/// of every sample. A sample missing from `got` is a mismatch (the testbench stopped early).
pub fn compare(
    golden: &[Vec<i64>],
    got: &[Vec<Option<i64>>],
    output: &str,
    shape: &[usize],
) -> Verdict {
    let mut outputs = 0;
    let show = |g: Option<i64>| g.map_or("x".to_string(), |v| v.to_string());
    for (s, want) in golden.iter().enumerate() {
        let Some(have) = got.get(s) else {
            return Verdict {
                bit_exact: false,
                samples: golden.len(),
                outputs,
                first_mismatch: Some(Mismatch {
                    sample: s,
                    index: None,
                    got: None,
                    expected: want.len() as i64,
                    message: format!(
                        "sample {s}: the testbench wrote no output codes for it ({} of {} samples written)",
                        got.len(),
                        golden.len()
                    ),
                }),
            };
        };
        if have.len() != want.len() {
            return Verdict {
                bit_exact: false,
                samples: golden.len(),
                outputs,
                first_mismatch: Some(Mismatch {
                    sample: s,
                    index: None,
                    got: Some(have.len() as i64),
                    expected: want.len() as i64,
                    message: format!(
                        "sample {s}: the design wrote {} output codes, the golden sample has {}",
                        have.len(),
                        want.len()
                    ),
                }),
            };
        }
        for (i, (&g, &w)) in have.iter().zip(want).enumerate() {
            if g != Some(w) {
                return Verdict {
                    bit_exact: false,
                    samples: golden.len(),
                    outputs,
                    first_mismatch: Some(Mismatch {
                        sample: s,
                        index: Some(i),
                        got: g,
                        expected: w,
                        message: format!(
                            "sample {s}, {}: got {}, golden {w}",
                            element(output, shape, i),
                            show(g)
                        ),
                    }),
                };
            }
            outputs += 1;
        }
    }
    if got.len() > golden.len() {
        return Verdict {
            bit_exact: false,
            samples: golden.len(),
            outputs,
            first_mismatch: Some(Mismatch {
                sample: golden.len(),
                index: None,
                got: Some(got.len() as i64),
                expected: golden.len() as i64,
                message: format!(
                    "the testbench wrote {} samples of outputs, the design folder holds {} golden samples",
                    got.len(),
                    golden.len()
                ),
            }),
        };
    }
    Verdict {
        bit_exact: true,
        samples: golden.len(),
        outputs,
        first_mismatch: None,
    }
}

/// Reads a file a testbench or `etch compile` wrote, through the one file reader (a regular file,
/// under the data-file limit).
pub fn read_result(path: &Path) -> Result<String, CodegenError> {
    Ok(etch_ir::limits::read_text(
        path,
        etch_ir::limits::FileKind::Data,
    )?)
}

/// Reads a one-byte-a-line hex image (`golden.hex`, or the testbench's `rtl_outputs.hex`, where
/// an `x` digit stands for X) into codes of `per` a sample; `signed` reads bytes as int8.
pub fn read_hex_samples(
    path: &Path,
    per: usize,
    signed: bool,
) -> Result<Vec<Vec<Option<i64>>>, CodegenError> {
    let text = read_result(path)?;
    let mut codes = Vec::new();
    for (k, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.len() == 2 && t.bytes().any(|b| matches!(b, b'x' | b'X' | b'z' | b'Z')) {
            codes.push(None);
            continue;
        }
        let b = u8::from_str_radix(t, 16).map_err(|_| CodegenError::Io {
            path: path.display().to_string(),
            message: format!(
                "line {}: `{}` is not a byte in hex",
                k + 1,
                etch_ir::safe_text::terminal_name(&t.chars().take(40).collect::<String>())
            ),
        })?;
        codes.push(Some(if signed { b as i8 as i64 } else { b as i64 }));
    }
    Ok(chunk(codes, per))
}

/// Reads a vector file of the HLS testbench (`tb_golden.txt`, or its `tb_output.txt`): each line
/// a sample's codes in decimal; a first line of two numbers `samples per_sample` is a header.
pub fn read_vector_samples(path: &Path, header: bool) -> Result<Vec<Vec<i64>>, CodegenError> {
    let text = read_result(path)?;
    let mut lines = text.lines().enumerate();
    if header {
        lines.next();
    }
    let mut samples = Vec::new();
    for (k, line) in lines {
        let codes: Result<Vec<i64>, _> = line.split_whitespace().map(str::parse).collect();
        samples.push(codes.map_err(|_| CodegenError::Io {
            path: path.display().to_string(),
            message: format!("line {}: not a list of integer codes", k + 1),
        })?);
    }
    Ok(samples)
}

fn chunk(codes: Vec<Option<i64>>, per: usize) -> Vec<Vec<Option<i64>>> {
    if per == 0 {
        return Vec::new();
    }
    codes.chunks(per).map(<[_]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_difference() {
        let golden = vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]];
        let mut got: Vec<Vec<Option<i64>>> = golden
            .iter()
            .map(|s| s.iter().map(|&v| Some(v)).collect())
            .collect();
        assert!(compare(&golden, &got, "y", &[1, 4]).bit_exact);
        got[1][2] = None;
        let v = compare(&golden, &got, "y", &[1, 2, 2]);
        let m = v.first_mismatch.unwrap();
        assert_eq!((m.sample, m.index, v.outputs), (1, Some(2), 6));
        assert_eq!(m.message, "sample 1, y[0,1,0]: got x, golden 7");
        // a testbench that stopped early, or wrote nothing, is not bit-exact
        assert!(!compare(&golden, &got[..1], "y", &[4]).bit_exact);
        assert!(!compare(&golden, &[], "y", &[4]).bit_exact);
    }
}
