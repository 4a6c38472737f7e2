//! The C-simulation testbench: reads the input codes and the golden output codes (written by
//! etch from the CPU executor), runs `etch_top` once per sample, writes the codes the design
//! produced to `tb_output.txt` (one sample a line; `etch verify` compares that file with the
//! golden codes itself) and compares every output code.
//! It stops at the first difference, naming the sample and the output element, and exits 1; it
//! exits 2 when a vector file is missing or malformed. The last line it prints is for `etch
//! verify`: `etch-csim: pass samples=S outputs=N` or
//! `etch-csim: mismatch sample=S index=I got=G expected=E`.

use super::cpp::{ArrayValue, ConstArray, File, Function, Item, Param, Stmt};
use super::numel;
use crate::program::IntProgram;

/// A vector file: `samples codes_per_sample` on the first line, then one sample per line.
pub(super) fn vector_file<'a>(
    samples: impl ExactSizeIterator<Item = &'a Vec<i64>>,
    per: usize,
) -> String {
    let mut s = format!("{} {per}\n", samples.len());
    for v in samples {
        let line: Vec<String> = v.iter().map(|x| x.to_string()).collect();
        s.push_str(&line.join(" "));
        s.push('\n');
    }
    s
}

fn read_vectors() -> Function {
    let fail = |msg: &str, args: &str| {
        vec![
            Stmt::expr(format!("std::fprintf(stderr, \"{msg}\\n\"{args})")),
            Stmt::expr("std::fclose(f)"),
            Stmt::expr("return false"),
        ]
    };
    Function {
        doc: vec![
            "Reads a vector file: `samples codes_per_sample`, then the codes; false (with the reason".into(),
            "on stderr) when it is missing, malformed, or holds another number of codes per sample.".into(),
        ],
        is_static: true,
        ret: "bool".into(),
        name: "read_vectors".into(),
        params: vec![
            Param::new("const char *", "path"),
            Param::new("int", "per"),
            Param::new("std::vector<long long> &", "codes"),
            Param::new("int &", "samples"),
        ],
        body: vec![
            Stmt::expr("std::FILE *f = std::fopen(path, \"r\")"),
            Stmt::if_(
                "!f",
                vec![
                    Stmt::expr(
                        "std::fprintf(stderr, \"error: cannot open vector file %s\\n\", path)",
                    ),
                    Stmt::expr("return false"),
                ],
            ),
            Stmt::expr("int file_per = 0"),
            Stmt::if_(
                "std::fscanf(f, \"%d %d\", &samples, &file_per) != 2 || samples < 0",
                fail("error: %s: the first line must be `samples codes_per_sample`", ", path"),
            ),
            Stmt::if_(
                "file_per != per",
                fail(
                    "error: %s holds %d codes per sample; the design has %d",
                    ", path, file_per, per",
                ),
            ),
            Stmt::expr("codes.resize((size_t)samples * (size_t)per)"),
            Stmt::Block {
                label: None,
                head: "for (size_t i = 0; i < codes.size(); ++i)".into(),
                body: vec![Stmt::if_(
                    "std::fscanf(f, \"%lld\", &codes[i]) != 1",
                    fail(
                        "error: %s ends or is malformed at code %zu of %zu",
                        ", path, i, codes.size()",
                    ),
                )],
            },
            Stmt::expr("std::fclose(f)"),
            Stmt::expr("return true"),
        ],
    }
}

fn out_index(rank: usize) -> Function {
    Function {
        doc: vec!["The multi-index of output element `flat`, e.g. `[0, 7]`.".into()],
        is_static: true,
        ret: "std::string".into(),
        name: "out_index".into(),
        params: vec![Param::new("int", "flat")],
        body: vec![
            Stmt::expr(format!("int idx[{rank}]")),
            Stmt::Block {
                label: None,
                head: format!("for (int d = {}; d >= 0; --d)", rank as i64 - 1),
                body: vec![
                    Stmt::expr("idx[d] = flat % ETCH_OUT_DIMS[d]"),
                    Stmt::expr("flat /= ETCH_OUT_DIMS[d]"),
                ],
            },
            Stmt::expr("std::string s = \"[\""),
            Stmt::for_range(
                "name",
                "d",
                rank,
                vec![
                    Stmt::if_("d > 0", vec![Stmt::expr("s += \", \"")]),
                    Stmt::expr("s += std::to_string(idx[d])"),
                ],
            ),
            Stmt::expr("return s + \"]\""),
        ],
    }
}

fn main_fn(p: &IntProgram) -> Function {
    // the name goes into a printf format string
    let out = etch_ir::safe_text::c_format_literal(&p.output);
    let mismatch = vec![
        Stmt::expr(format!(
            "std::printf(\"MISMATCH: sample %d, output {out}%s (element %d of %d): got %lld, expected %lld\\n\", s, out_index(i).c_str(), i, ETCH_OUT_LEN, got, want)"
        )),
        Stmt::expr(
            "std::printf(\"etch-csim: mismatch sample=%d index=%d got=%lld expected=%lld\\n\", s, i, got, want)",
        ),
        Stmt::expr("return 1"),
    ];
    let sample = vec![
        Stmt::expr("hls::stream<etch_in_t> in(\"in\")"),
        Stmt::expr("hls::stream<etch_out_t> out(\"out\")"),
        Stmt::for_range(
            "feed",
            "i",
            numel(&p.input_shape),
            vec![Stmt::expr(
                "in.write((etch_in_t)inputs[(size_t)s * ETCH_IN_LEN + i])",
            )],
        ),
        Stmt::expr("etch_top(in, out)"),
        Stmt::expr("std::vector<long long> got_codes"),
        Stmt::Block {
            label: None,
            head: "while (!out.empty())".into(),
            body: vec![Stmt::expr("got_codes.push_back((long long)out.read())")],
        },
        Stmt::comment("etch verify compares this file with the golden codes itself"),
        Stmt::Block {
            label: None,
            head: "for (size_t i = 0; i < got_codes.size(); ++i)".into(),
            body: vec![Stmt::expr(
                "std::fprintf(outputs, i ? \" %lld\" : \"%lld\", got_codes[i])",
            )],
        },
        Stmt::expr("std::fprintf(outputs, \"\\n\")"),
        Stmt::expr("std::fflush(outputs)"),
        Stmt::if_(
            "!in.empty() || got_codes.size() != (size_t)ETCH_OUT_LEN",
            vec![
                Stmt::expr("std::printf(\"MISMATCH: sample %d: the design left %zu input codes unread and wrote %zu output codes (expected %d)\\n\", s, in.size(), got_codes.size(), ETCH_OUT_LEN)"),
                Stmt::expr("std::printf(\"etch-csim: mismatch sample=%d index=-1 got=%zu expected=%d\\n\", s, got_codes.size(), ETCH_OUT_LEN)"),
                Stmt::expr("return 1"),
            ],
        ),
        Stmt::for_range(
            "compare",
            "i",
            numel(&p.output_shape),
            vec![
                Stmt::expr("const long long got = got_codes[i]"),
                Stmt::expr("const long long want = golden[(size_t)s * ETCH_OUT_LEN + i]"),
                Stmt::if_("got != want", mismatch),
            ],
        ),
    ];
    Function {
        doc: vec![format!(
            "usage: etch_tb [{} [{}]]",
            super::INPUT_FILE,
            super::GOLDEN_FILE
        )],
        is_static: false,
        ret: "int".into(),
        name: "main".into(),
        params: vec![Param::new("int", "argc"), Param::new("char **", "argv")],
        body: vec![
            Stmt::expr(format!(
                "const char *input_path = argc > 1 ? argv[1] : \"{}\"",
                super::INPUT_FILE
            )),
            Stmt::expr(format!(
                "const char *golden_path = argc > 2 ? argv[2] : \"{}\"",
                super::GOLDEN_FILE
            )),
            Stmt::expr("std::vector<long long> inputs, golden"),
            Stmt::expr("int n_in = 0, n_golden = 0"),
            Stmt::if_(
                "!read_vectors(input_path, ETCH_IN_LEN, inputs, n_in) || !read_vectors(golden_path, ETCH_OUT_LEN, golden, n_golden)",
                vec![Stmt::expr("return 2")],
            ),
            Stmt::if_(
                "n_in != n_golden || n_in == 0",
                vec![
                    Stmt::expr("std::fprintf(stderr, \"error: %d input samples but %d golden samples\\n\", n_in, n_golden)"),
                    Stmt::expr("return 2"),
                ],
            ),
            Stmt::expr(format!(
                "std::FILE *outputs = std::fopen(\"{}\", \"w\")",
                super::OUTPUT_FILE
            )),
            Stmt::if_(
                "!outputs",
                vec![
                    Stmt::expr(format!(
                        "std::fprintf(stderr, \"error: cannot write {}\\n\")",
                        super::OUTPUT_FILE
                    )),
                    Stmt::expr("return 2"),
                ],
            ),
            Stmt::Block {
                label: None,
                head: "for (int s = 0; s < n_in; ++s)".into(),
                body: sample,
            },
            Stmt::expr("std::fclose(outputs)"),
            Stmt::expr(
                "std::printf(\"PASS: %d samples, %d output codes each, bit-exact\\n\", n_in, ETCH_OUT_LEN)",
            ),
            Stmt::expr(
                "std::printf(\"etch-csim: pass samples=%d outputs=%d\\n\", n_in, n_in * ETCH_OUT_LEN)",
            ),
            Stmt::expr("return 0"),
        ],
    }
}

/// `etch_tb.cpp`.
pub(super) fn testbench(p: &IntProgram) -> File {
    File {
        name: super::TESTBENCH.into(),
        header: false,
        items: vec![
            Item::Comment(vec![format!(
                "C-simulation testbench: every output code of `{}` against the CPU executor's.",
                p.output
            )]),
            Item::include("cstdio", true),
            Item::include("string", true),
            Item::include("vector", true),
            Item::include("etch_top.h", false),
            Item::Array(ConstArray {
                doc: vec![format!("The dims of {} on one sample.", p.output)],
                ty: "int",
                name: "ETCH_OUT_DIMS".into(),
                dims: vec![p.output_shape.len()],
                values: p
                    .output_shape
                    .iter()
                    .map(|&d| ArrayValue::Int(d as i64))
                    .collect(),
            }),
            Item::Function(read_vectors()),
            Item::Function(out_index(p.output_shape.len())),
            Item::Function(main_fn(p)),
        ],
    }
}
