//! `etch sim` and `etch targets` through the binary: the JSON contract of DESIGN.md, CSV, plots,
//! the Chrome trace, SCALE-Sim mode, targets and fit errors, bad descriptions, every shipped model
//! on every shipped description and target, and the same numbers on every run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TARGETS: [&str; 6] = [
    "pynq-z2",
    "ultra96-v2",
    "zcu104",
    "ice40-up5k",
    "asic-45nm",
    "asic-65nm",
];

fn etch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etch"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> Output {
    let out = etch(args);
    assert!(
        out.status.success(),
        "etch {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// stdout must be exactly one JSON document.
fn json(args: &[&str]) -> Value {
    let out = ok(args);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "etch {}: stdout is not one JSON document ({e}):\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sim_cli_{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const DIGITS: &str = "examples/models/digits_cnn.onnx.txt";
const WS16: &str = "examples/hw/ws-16x16-int8.ron";

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn json_has_the_contract_fields_and_they_add_up() {
    for (model, hw) in [
        (DIGITS, WS16),
        (
            "examples/models/resnet18.onnx.txt",
            "examples/hw/eyeriss-12x14-int16.ron",
        ),
    ] {
        let d = json(&["sim", model, "--hw", hw, "--json"]);
        for key in [
            "total_cycles",
            "latency_s",
            "energy_pj",
            "energy_breakdown",
            "layers",
        ] {
            assert!(d.get(key).is_some(), "{model}: no `{key}` in {d}");
        }
        let total = d["total_cycles"].as_u64().unwrap();
        let clock = d["clock_mhz"].as_f64().unwrap();
        assert!(total > 0);
        assert!(close(
            d["latency_s"].as_f64().unwrap(),
            total as f64 / (clock * 1e6)
        ));
        let breakdown = d["energy_breakdown"].as_object().unwrap();
        for part in [
            "mac",
            "register_file",
            "pe_to_pe",
            "sram",
            "dram",
            "vector",
            "static",
        ] {
            assert!(breakdown[part].as_f64().unwrap() >= 0.0, "{part}");
        }
        let energy = d["energy_pj"].as_f64().unwrap();
        assert!(close(
            breakdown.values().map(|v| v.as_f64().unwrap()).sum(),
            energy
        ));
        let layers = d["layers"].as_array().unwrap();
        assert!(!layers.is_empty());
        let (mut cycles, mut e) = (0, 0.0);
        for l in layers {
            assert!(l["name"].is_string());
            for key in ["cycles", "compute_cycles", "stall_cycles", "dram_bytes"] {
                assert!(l[key].is_u64(), "{key} in {l}");
            }
            let u = l["utilization"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&u), "{l}");
            assert_eq!(
                l["cycles"].as_u64(),
                Some(l["compute_cycles"].as_u64().unwrap() + l["stall_cycles"].as_u64().unwrap())
            );
            cycles += l["cycles"].as_u64().unwrap();
            e += l["energy_pj"].as_f64().unwrap();
        }
        assert_eq!(cycles, total, "{model}: layers run one after another");
        assert!((e - energy).abs() <= 1e-6 * energy);
    }
}

#[test]
fn csv_has_a_row_per_layer_and_the_totals() {
    let dir = scratch("csv");
    let csv = dir.join("digits.csv");
    let d = json(&[
        "sim",
        DIGITS,
        "--hw",
        WS16,
        "--json",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
    let head = &rows[0];
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let layers = d["layers"].as_array().unwrap();
    assert_eq!(rows.len(), layers.len() + 2, "header, layers, total");
    for (row, l) in rows[1..].iter().zip(layers) {
        assert_eq!(row.len(), head.len());
        assert_eq!(row[col("layer")], l["name"].as_str().unwrap());
        assert_eq!(row[col("cycles")], l["cycles"].to_string());
        assert_eq!(row[col("stall_cycles")], l["stall_cycles"].to_string());
        assert_eq!(row[col("dram_bytes")], l["dram_bytes"].to_string());
    }
    let total = rows.last().unwrap();
    assert_eq!(total[0], "total");
    assert_eq!(total[col("cycles")], d["total_cycles"].to_string());
}

#[test]
fn plots_are_written_as_png_and_svg_with_their_labels() {
    let dir = scratch("plots");
    let out = ok(&[
        "sim",
        "examples/models/resnet18.onnx.txt",
        "--target",
        "zcu104",
        "--plot",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for name in ["latency", "energy", "roofline"] {
        let png = std::fs::read(dir.join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png");
        // IHDR: width and height
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (1200, 700));
        assert!(png.len() > 10_000, "{name}.png is nearly empty");
        let svg = std::fs::read_to_string(dir.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg"), "{name}.svg");
        assert!(stdout.contains(&format!("{name}.png")), "{stdout}");
    }
    // axis titles with units and legends
    let svg = |n: &str| std::fs::read_to_string(dir.join(format!("{n}.svg"))).unwrap();
    let lat = svg("latency");
    assert!(lat.contains("latency (µs)") && lat.contains("stall (waiting for DRAM"));
    let en = svg("energy");
    assert!(en.contains("energy (mJ)") && en.contains("DRAM: "));
    let roof = svg("roofline");
    assert!(roof.contains("arithmetic intensity") && roof.contains("performance (GOP/s)"));
}

#[test]
fn trace_is_chrome_trace_event_json() {
    let dir = scratch("trace");
    let path = dir.join("trace.json");
    let d = json(&[
        "sim",
        DIGITS,
        "--hw",
        "examples/hw/os-8x8-fp16.ron",
        "--json",
        "--trace",
        path.to_str().unwrap(),
    ]);
    let t: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let events = t["traceEvents"].as_array().unwrap();
    let mut tracks = std::collections::BTreeMap::new();
    let (mut loads, mut array, mut layers) = (0, 0, 0);
    let clock = d["clock_mhz"].as_f64().unwrap();
    let mut last_end = 0.0f64;
    for e in events {
        let ph = e["ph"].as_str().unwrap();
        assert!(e["name"].is_string() && e["pid"].is_u64(), "{e}");
        match ph {
            "M" => {
                if e["name"] == "thread_name" {
                    tracks.insert(
                        e["tid"].as_u64().unwrap(),
                        e["args"]["name"].as_str().unwrap().to_string(),
                    );
                }
            }
            "X" => {
                let (ts, dur) = (e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap());
                assert!(ts >= 0.0 && dur > 0.0, "{e}");
                last_end = last_end.max(ts + dur);
                let track = &tracks[&e["tid"].as_u64().unwrap()];
                match track.as_str() {
                    "dram channel" => {
                        loads += 1;
                        assert!(e["args"]["bytes"].as_u64().unwrap() > 0);
                        let (s, en) = (
                            e["args"]["start_cycle"].as_u64().unwrap(),
                            e["args"]["end_cycle"].as_u64().unwrap(),
                        );
                        assert!((ts - s as f64 / clock).abs() < 1e-9);
                        assert!((dur - (en - s) as f64 / clock).abs() < 1e-9);
                    }
                    "compute unit" => array += 1,
                    "layers" => layers += 1,
                    _ => {}
                }
            }
            _ => panic!("unexpected phase {ph}"),
        }
    }
    assert_eq!(
        tracks.values().cloned().collect::<Vec<_>>(),
        [
            "load unit",
            "compute unit",
            "store unit",
            "dram channel",
            "global buffer channel",
            "layers"
        ]
    );
    assert!(loads > 0 && array > 0);
    let busy = d["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["cycles"].as_u64() > Some(0))
        .count();
    assert_eq!(layers, busy, "one bar per layer that takes time");
    let total_us = d["total_cycles"].as_f64().unwrap() / clock;
    assert!(
        (last_end - total_us).abs() < 1e-6,
        "{last_end} vs {total_us}"
    );
}

#[test]
fn scalesim_mode_reproduces_a_recorded_run() {
    let f = "sim/tests/fixtures/scalesim";
    for (topo, cfg) in [
        ("resnet18_conv", "a16x64_os"),
        ("alexnet_conv", "a32x32_tinyofmap_ws"),
    ] {
        let d = json(&[
            "sim",
            "--topology",
            &format!("{f}/{topo}.csv"),
            "--scalesim-config",
            &format!("{f}/{cfg}.cfg"),
            "--json",
        ]);
        let want =
            std::fs::read_to_string(format!("{ROOT}/{f}/{topo}__{cfg}.expected.csv")).unwrap();
        let want: Vec<Vec<&str>> = want
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("layer,"))
            .map(|l| l.split(',').collect())
            .collect();
        let layers = d["layers"].as_array().unwrap();
        assert_eq!(layers.len(), want.len());
        for (l, w) in layers.iter().zip(&want) {
            assert_eq!(l["name"].as_str(), Some(w[0]));
            assert_eq!(l["cycles"].to_string(), w[2], "{topo} {cfg} {}", w[0]);
            assert_eq!(l["stall_cycles"].to_string(), w[3]);
        }
        let sum: u64 = layers.iter().map(|l| l["cycles"].as_u64().unwrap()).sum();
        assert_eq!(d["total_cycles"].as_u64(), Some(sum));
    }
    // the options of the cycle-level simulator have no meaning there
    let out = etch(&[
        "sim",
        "--topology",
        &format!("{f}/alexnet_conv.csv"),
        "--scalesim-config",
        &format!("{f}/a32x32_os.cfg"),
        "--plot",
        "plots",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no use for --plot"));
    // a topology without layers
    let dir = scratch("scalesim");
    let empty = dir.join("empty.csv");
    std::fs::write(
        &empty,
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n",
    )
    .unwrap();
    let out = etch(&[
        "sim",
        "--topology",
        empty.to_str().unwrap(),
        "--scalesim-config",
        &format!("{f}/a32x32_os.cfg"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no layers"));
    // one of the two files alone is an error
    let out = etch(&["sim", "--topology", &format!("{f}/alexnet_conv.csv")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scalesim-config"));
}

#[test]
fn targets_are_listed_and_each_alone_is_enough() {
    let list = String::from_utf8(ok(&["targets"]).stdout).unwrap();
    let listed = json(&["targets", "--json"]);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, TARGETS);
    for t in TARGETS {
        assert!(list.contains(t), "{t} missing from `etch targets`");
        let d = json(&["sim", DIGITS, "--target", t, "--json"]);
        let want = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == t)
            .unwrap()["default_accelerator"]["name"]
            .clone();
        assert_eq!(d["accelerator"], want, "{t}");
        // what it takes of the target, within the target's resources
        assert_eq!(d["target"]["name"], t);
        let usage = d["target"]["usage"].as_array().unwrap();
        assert!(usage.len() >= 3, "{t}");
        for u in usage {
            assert!(u["used"].as_f64() <= u["available"].as_f64(), "{t}: {u}");
        }
    }
}

#[test]
fn a_description_that_does_not_fit_says_by_how_much() {
    let out = etch(&[
        "sim",
        DIGITS,
        "--hw",
        "examples/hw/tpu-like-128x128-ws-int8.ron",
        "--target",
        "pynq-z2",
        "--json",
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: `tpu-like-128x128-ws-int8` does not fit target `pynq-z2`"),
        "{err}"
    );
    // 128 x 128 MACs on 220 DSP48E1s, and the 700 MHz clock over the 250 MHz limit
    assert!(
        err.contains("it needs 16,384 DSP48E1 but the target has 220 (16,164 too many"),
        "{err}"
    );
    assert!(
        err.contains("it needs 700 MHz of clock but the target has 250 (450 too many, 180% over)"),
        "{err}"
    );
    // a description that fits is checked and simulated
    json(&["sim", DIGITS, "--hw", WS16, "--target", "zcu104", "--json"]);
}

#[test]
fn bad_descriptions_and_arguments_are_clear_errors() {
    let dir = scratch("bad");
    let base = std::fs::read_to_string(format!("{ROOT}/{WS16}")).unwrap();
    let cases = [
        (
            "rows.ron",
            base.replace("rows: 16", "rows: 0"),
            "the array has 0 rows and 16 columns; both must be at least 1",
        ),
        (
            "small.ron",
            base.replace("filter_kib: 64", "filter_kib: 0"),
            "the filter buffer (0 KiB per half) is too small for one tile: 256 bytes are needed (one fold of 16 x 16 weights at 8 bits)",
        ),
        (
            "acc.ron",
            base.replace("acc_bits: 32", "acc_bits: 12"),
            "the integer MAC PE cannot take an accumulator of 12 bits",
        ),
        (
            "fp8.ron",
            base.replace(
                "IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32)",
                "FloatMac(bits: 8)",
            ),
            "the float MAC PE cannot take operands of 8 bits: float MACs are 16 (half) or 32 (single) bits",
        ),
        (
            "field.ron",
            base.replace("clock_mhz: 200.0,", "clock_mhz: 200.0,\n    colour: 1,"),
            "field.ron:",
        ),
    ];
    for (name, text, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        let out = etch(&["sim", DIGITS, "--hw", p.to_str().unwrap(), "--json"]);
        assert!(!out.status.success(), "{name}");
        assert!(out.stdout.is_empty(), "{name}: stdout not empty");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    for (args, want) in [
        (vec!["sim", DIGITS], "give the accelerator"),
        (
            vec!["sim", DIGITS, "--target", "zynq"],
            "unknown target `zynq`; the targets are: pynq-z2, ultra96-v2, zcu104, ice40-up5k, asic-45nm, asic-65nm",
        ),
        (
            vec!["sim", DIGITS, "--hw", "no/such.ron"],
            "cannot read `no/such.ron`",
        ),
    ] {
        let out = etch(&args);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn impossible_mappings_are_clear_errors() {
    // int8 layers on XNOR-popcount PEs; 8-bit weights on 4-bit shift-add PEs
    let q = "quant(bits=8,per=channel,calib=\"examples/data/digits_train.csv\")";
    for (hw, want) in [
        (
            "examples/hw/ws-64x64-xnor.ron",
            "layer `/conv1/Conv` cannot be mapped onto `ws-64x64-xnor`: its int MAC arithmetic does not run on a xnor-popcount PE",
        ),
        (
            "examples/hw/ws-32x32-pow2.ron",
            "cannot be mapped onto `ws-32x32-pow2`: its int MAC arithmetic does not run on a shift-add PE",
        ),
    ] {
        let out = etch(&["sim", DIGITS, "--hw", hw, "--passes", q, "--json"]);
        assert!(!out.status.success(), "{hw}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{hw}: {err}");
    }
}

#[test]
fn every_model_on_every_description_and_target() {
    // the files directly under examples/models (exported/ has its own check,
    // scripts/export_check.sh)
    let mut models: Vec<_> = std::fs::read_dir(format!("{ROOT}/examples/models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    let mut hws: Vec<_> = std::fs::read_dir(format!("{ROOT}/examples/hw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    models.sort();
    hws.sort();
    let (mut runs, mut refused) = (0, 0);
    for m in &models {
        let m = m.to_str().unwrap();
        let mut accel: Vec<(&str, String)> = hws
            .iter()
            .map(|h| ("--hw", h.to_str().unwrap().to_string()))
            .collect();
        accel.extend(TARGETS.iter().map(|t| ("--target", t.to_string())));
        for (flag, value) in &accel {
            // a quantized model (the trained low-bit ones) maps only where the PEs have its
            // arithmetic: anywhere else, a clear refusal naming the layer
            let args = ["sim", m, flag, value, "--json"];
            let out = etch(&args);
            if !out.status.success() && m.contains("/qat_") {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    err.contains("cannot be mapped onto") && err.contains("does not run on"),
                    "{m} {value}: {err}"
                );
                refused += 1;
                continue;
            }
            let d = json(&args);
            assert!(d["total_cycles"].as_u64().unwrap() > 0, "{m} {value}");
            assert!(d["energy_pj"].as_f64().unwrap() > 0.0, "{m} {value}");
            runs += 1;
        }
    }
    assert!(runs >= 12 * 13, "{runs}");
    // the shift-add-only and XNOR-only descriptions refuse int layers; most others take them
    assert!(refused < runs / 4, "{refused} refused, {runs} ran");
}

#[test]
fn the_same_inputs_give_the_same_numbers() {
    let args = [
        "sim",
        "examples/models/mobilenet_v2.onnx.txt",
        "--hw",
        "examples/hw/is-32x32-int8-sparse.ron",
        "--json",
        "--passes",
        "nm(n=2,m=4)",
    ];
    let a = ok(&args).stdout;
    let b = ok(&args).stdout;
    assert_eq!(a, b);
}

#[test]
fn the_table_gives_totals_latency_fps_and_the_energy_breakdown() {
    let fits = String::from_utf8(ok(&["sim", DIGITS, "--target", "ice40-up5k"]).stdout).unwrap();
    assert!(
        fits.contains("fits ice40-up5k: 24/48 MHz of clock") && fits.contains("/8 SB_MAC16"),
        "{fits}"
    );
    let out = String::from_utf8(ok(&["sim", DIGITS, "--hw", WS16]).stdout).unwrap();
    let d = json(&["sim", DIGITS, "--hw", WS16, "--json"]);
    for want in [
        "layer",
        "cycles",
        "stall",
        "util",
        "DRAM",
        "energy",
        "total",
        "inferences/s",
        "energy per inference:",
        "dram",
        "register file",
        "pe to pe",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    let total = d["total_cycles"].as_u64().unwrap();
    let with_commas = {
        let s = total.to_string();
        let mut o = String::new();
        for (k, c) in s.chars().enumerate() {
            if k > 0 && (s.len() - k).is_multiple_of(3) {
                o.push(',');
            }
            o.push(c);
        }
        o
    };
    assert!(out.contains(&format!("{with_commas} cycles")), "{out}");
}

#[test]
fn mac_energy_is_horowitz_per_operation_figure_times_the_macs() {
    // Horowitz, ISSCC 2014 (45 nm): an int8 multiply 0.2 pJ + a 32-bit add 0.1 pJ; a 16-bit float
    // multiply 1.1 pJ + add 0.4 pJ
    for (hw, pj_per_mac) in [(WS16, 0.3), ("examples/hw/os-8x8-fp16.ron", 1.5)] {
        let d = json(&["sim", DIGITS, "--hw", hw, "--json"]);
        let macs = d["macs"].as_u64().unwrap();
        assert_eq!(macs, 84_224, "digits_cnn's MACs (REFERENCE.tsv)");
        let mac = d["energy_breakdown"]["mac"].as_f64().unwrap();
        assert!(
            (mac - macs as f64 * pj_per_mac).abs() < 1e-6 * mac,
            "{hw}: {mac} pJ for {macs} MACs"
        );
    }
}

#[test]
fn the_array_does_every_mac_of_reference_tsv_and_batch_multiplies_them() {
    // the mapper lowers every convolution (padding, stride, dilation, groups, depthwise) and
    // Gemm/MatMul: its MACs are REFERENCE.tsv's for every shipped model
    let reference = std::fs::read_to_string(format!("{ROOT}/examples/data/REFERENCE.tsv")).unwrap();
    let mut lines = reference.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    let mut checked = 0;
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let model = format!("examples/models/{}.onnx.txt", f[col("name")]);
        let d = json(&["sim", &model, "--hw", WS16, "--json"]);
        assert_eq!(d["macs"].to_string(), f[col("macs")], "{model}");
        let per_layer: u64 = d["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["macs"].as_u64().unwrap())
            .sum();
        assert_eq!(per_layer.to_string(), f[col("macs")], "{model}");
        checked += 1;
    }
    assert!(checked >= 7);
    let one = json(&["sim", DIGITS, "--hw", WS16, "--json"]);
    let four = json(&["sim", DIGITS, "--hw", WS16, "--json", "--batch", "4"]);
    assert_eq!(
        four["macs"].as_u64(),
        Some(4 * one["macs"].as_u64().unwrap())
    );
    assert!(four["total_cycles"].as_u64() > one["total_cycles"].as_u64());
}
