//! Descriptions: the shipped ones read and validate, every target's default fits it, and bad
//! descriptions give the errors they should.

use etch_hw::{fit, Accelerator, Dataflow, HwError, Pe};

const BASE: &str = r#"Accelerator(
    name: "t",
    clock_mhz: 200.0,
    array: Systolic(rows: 16, cols: 16, dataflow: WeightStationary),
    pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32),
    buffers: (ifmap_kib: 64, filter_kib: 64, ofmap_kib: 64, banks: 1, double_buffered: true),
    dram: (bytes_per_cycle: 16.0, latency_cycles: 100),
)"#;

fn examples() -> Vec<std::path::PathBuf> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hw");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_descriptions_read_and_validate() {
    let paths = examples();
    assert!(paths.len() >= 5);
    let mut names = Vec::new();
    for p in paths {
        let acc = Accelerator::from_file(p.to_str().unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        acc.energy_table().unwrap();
        names.push((acc.name.clone(), acc.rows(), acc.cols(), acc.dataflow()));
    }
    assert!(
        names
            .iter()
            .any(|n| n.1 == 128 && n.2 == 128 && n.3 == Dataflow::WeightStationary),
        "a TPU-like 128x128 WS"
    );
    assert!(
        names.iter().any(|n| n.1 == 12 && n.2 == 14),
        "an Eyeriss-sized 12x14"
    );
}

#[test]
fn every_target_default_fits_its_target() {
    for name in etch_targets::names() {
        let (target, acc) = Accelerator::for_target(name).unwrap();
        let report = fit::check(&acc, &target).unwrap_or_else(|e| panic!("{e}"));
        assert!(report.usage.iter().all(|u| !u.over()));
        assert!(acc.clock_mhz <= target.clock.max_mhz);
    }
}

/// What is wrong with a description, without the file name every validation error starts with.
fn err(text: &str) -> HwError {
    match Accelerator::from_ron("t.ron", text).unwrap_err() {
        HwError::Invalid { path, error } => {
            assert_eq!(path, "t.ron");
            *error
        }
        other => other,
    }
}

#[test]
fn validation_errors_name_the_file() {
    let e = Accelerator::from_ron("t.ron", &BASE.replace("rows: 16", "rows: 0")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t.ron: the array has 0 rows and 16 columns; both must be at least 1"
    );
}

#[test]
fn zero_row_array_is_an_error() {
    let e = err(&BASE.replace("rows: 16", "rows: 0"));
    assert_eq!(e, HwError::EmptyArray { rows: 0, cols: 16 });
    assert_eq!(
        e.to_string(),
        "the array has 0 rows and 16 columns; both must be at least 1"
    );
}

#[test]
fn buffer_too_small_for_one_tile_names_buffer_and_need() {
    // a 128x128 fold of int8 weights is 16 KiB; 16 KiB double-buffered gives 8 KiB per half
    let text = BASE
        .replace("rows: 16, cols: 16", "rows: 128, cols: 128")
        .replace("filter_kib: 64", "filter_kib: 16");
    let e = err(&text).to_string();
    assert_eq!(e, "the filter buffer (16 KiB per half) is too small for one tile: 16384 bytes are needed (one fold of 128 x 128 weights at 8 bits)");
    let e = err(&BASE.replace("ofmap_kib: 64", "ofmap_kib: 1")).to_string();
    assert!(
        e.starts_with("the ofmap buffer (1 KiB per half) is too small"),
        "{e}"
    );
}

#[test]
fn widths_the_pe_cannot_take() {
    let e = err(&BASE.replace("acc_bits: 32", "acc_bits: 12")).to_string();
    assert_eq!(e, "the integer MAC PE cannot take an accumulator of 12 bits: it must hold a 8 x 8-bit product (16 bits) and be at most 64 bits");
    let e = err(&BASE.replace(
        "IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32)",
        "FloatMac(bits: 8)",
    ))
    .to_string();
    assert!(
        e.contains("float MACs are 16 (half) or 32 (single) bits"),
        "{e}"
    );
    let e = err(&BASE.replace(
        "IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32)",
        "ShiftAdd(weight_bits: 5, act_bits: 8, acc_bits: 16)",
    ))
    .to_string();
    assert!(e.contains("shifted by up to 15 places (23 bits"), "{e}");
    let e = err(&BASE.replace("weight_bits: 8", "weight_bits: 0")).to_string();
    assert!(e.contains("cannot take weights of 0 bits"), "{e}");
}

#[test]
fn ron_errors_carry_line_and_column() {
    let e =
        err(&BASE.replace("clock_mhz: 200.0,", "clock_mhz: 200.0,\n    colour: 3,")).to_string();
    assert!(e.starts_with("t.ron:4:5: "), "{e}");
    assert!(e.contains("colour"), "{e}");
    let e = err(&BASE.replace("WeightStationary", "RowStationary")).to_string();
    assert!(
        e.starts_with("t.ron:4:51: ") && e.contains("RowStationary"),
        "{e}"
    );
}

#[test]
fn other_validation_errors() {
    assert!(
        err(&BASE.replace("bytes_per_cycle: 16.0", "bytes_per_cycle: 0.0"))
            .to_string()
            .contains("bytes_per_cycle is 0")
    );
    // a DRAM so slow that the cycle counts would overflow
    assert!(
        err(&BASE.replace("bytes_per_cycle: 16.0", "bytes_per_cycle: 1e-12"))
            .to_string()
            .contains("it must be at least 0.001")
    );
    assert!(err(&BASE.replace("clock_mhz: 200.0", "clock_mhz: -1.0"))
        .to_string()
        .contains("clock_mhz is -1"));
    assert!(err(&BASE.replace("banks: 1", "banks: 0"))
        .to_string()
        .contains("banks is 0"));
    let sparse = BASE.replace("buffers:", "sparse: Some((n: 4, m: 4)),\n    buffers:");
    assert!(err(&sparse)
        .to_string()
        .contains("N:M support 4:4 is invalid"));
    let e = err(&BASE.replace(")\"#", "").replace(
        "latency_cycles: 100),",
        "latency_cycles: 100),\n    energy: \"tsmc-3nm\",",
    ));
    assert!(
        e.to_string().contains("unknown energy table `tsmc-3nm`"),
        "{e}"
    );
}

#[test]
fn inline_energy_and_implicit_some() {
    let acc = Accelerator::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hw/ws-32x32-pow2.ron"
    ))
    .unwrap();
    assert_eq!(acc.energy_table().unwrap().name, "horowitz-45nm-inline");
    assert!(matches!(acc.pe, Pe::ShiftAdd { .. }));
    let acc = Accelerator::from_ron(
        "t.ron",
        &BASE.replace("buffers:", "sparse: (n: 2, m: 4),\n    buffers:"),
    )
    .unwrap();
    assert_eq!(acc.sparse.map(|s| (s.n, s.m)), Some((2, 4)));
}

#[test]
fn a_description_too_big_for_a_target_says_by_how_much() {
    let (target, _) = Accelerator::for_target("pynq-z2").unwrap();
    // 16 x 16 = 256 MACs on 220 DSP48E1s
    let acc = Accelerator::from_ron(
        "t.ron",
        &BASE
            .replace("clock_mhz: 200.0", "clock_mhz: 100.0")
            .replace("bytes_per_cycle: 16.0", "bytes_per_cycle: 8.0"),
    )
    .unwrap();
    let e = fit::check(&acc, &target).unwrap_err().to_string();
    assert!(e.starts_with("`t` does not fit target `pynq-z2`: it needs 256 DSP48E1 but the target has 220 (36 too many, 16% over)"), "{e}");
    // and the clock and bandwidth limits
    let acc = Accelerator::from_ron(
        "t.ron",
        &BASE
            .replace("rows: 16, cols: 16", "rows: 8, cols: 8")
            .replace("clock_mhz: 200.0", "clock_mhz: 300.0"),
    )
    .unwrap();
    let e = fit::check(&acc, &target).unwrap_err().to_string();
    assert!(
        e.contains("it needs 300 MHz of clock but the target has 250 (50 too many, 20% over)"),
        "{e}"
    );
    assert!(e.contains("GB/s of off-chip bandwidth"), "{e}");
    // block memory: 4 MiB of buffers on a 560 KiB part
    let acc = Accelerator::from_ron(
        "t.ron",
        &BASE
            .replace("rows: 16, cols: 16", "rows: 8, cols: 8")
            .replace("clock_mhz: 200.0", "clock_mhz: 100.0")
            .replace("bytes_per_cycle: 16.0", "bytes_per_cycle: 8.0")
            .replace("ifmap_kib: 64", "ifmap_kib: 4096"),
    )
    .unwrap();
    let e = fit::check(&acc, &target).unwrap_err().to_string();
    assert!(e.contains("KiB of block memory"), "{e}");
}

#[test]
fn area_grows_with_the_array_and_the_node() {
    let small = Accelerator::from_ron("t.ron", BASE).unwrap();
    let big = Accelerator::from_ron(
        "t.ron",
        &BASE.replace("rows: 16, cols: 16", "rows: 32, cols: 32"),
    )
    .unwrap();
    let a = etch_hw::area::asic_area(&small, 45.0);
    let b = etch_hw::area::asic_area(&big, 45.0);
    assert!(b.pe_mm2 > 3.9 * a.pe_mm2 && b.pe_mm2 < 4.1 * a.pe_mm2);
    let c = etch_hw::area::asic_area(&small, 90.0);
    assert!((c.total_mm2 / a.total_mm2 - 4.0).abs() < 1e-9);
}
