//! The energy model against the published tables it cites: every per-operation figure of Horowitz,
//! "Computing's energy problem (and what we can do about it)", ISSCC 2014, Fig. 1.1.9 (45 nm,
//! 0.9 V), comes back out of the model's functions (the interpolations and the MAC composition
//! included), Eyeriss's normalized costs (Chen et al., ISCA 2016, Fig. 1) come back as ratios, and
//! moving a table between nodes scales what is on chip and leaves DRAM alone.

use etch_hw::energy::preset;
use etch_hw::MacKind;

fn near(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs()
}

/// Horowitz's figures, pJ: (what, published, what the model gives).
#[test]
fn horowitz_45nm_per_operation_figures() {
    let h = preset("horowitz-45nm").unwrap();
    let rows = [
        ("8-bit integer add", 0.03, h.int_add(8)),
        ("32-bit integer add", 0.1, h.int_add(32)),
        ("8-bit integer multiply", 0.2, h.int_mult(8, 8)),
        ("32-bit integer multiply", 3.1, h.int_mult(32, 32)),
        // a float MAC is its multiply plus its add
        (
            "16-bit float multiply + add (1.1 + 0.4)",
            1.5,
            h.mac(MacKind::Float, 16, 16, 16),
        ),
        (
            "32-bit float multiply + add (3.7 + 0.9)",
            4.6,
            h.mac(MacKind::Float, 32, 32, 32),
        ),
        // an int8 MAC with a 32-bit accumulator: 8-bit multiply + 32-bit add
        (
            "int8 MAC, 32-bit accumulator (0.2 + 0.1)",
            0.3,
            h.mac(MacKind::Int, 8, 8, 32),
        ),
        // cache / SRAM, 64-bit access
        ("8 KB SRAM, 64-bit read", 10.0, h.sram_access(8.0, 64)),
        ("32 KB SRAM, 64-bit read", 20.0, h.sram_access(32.0, 64)),
        ("1 MB SRAM, 64-bit read", 100.0, h.sram_access(1024.0, 64)),
        // DRAM: 1.3-2.6 nJ per 64-bit access; etch takes the low end
        ("DRAM, 64-bit access", 1300.0, h.dram_per_byte() * 8.0),
    ];
    for (what, published, model) in rows {
        assert!(
            near(model, published, 1e-9),
            "{what}: Horowitz {published} pJ, the model {model} pJ"
        );
    }
    // between the published SRAM sizes the model interpolates monotonically, and an access of
    // half the width costs half
    let mut last = 0.0;
    for kib in [8.0, 12.0, 16.0, 24.0, 32.0, 64.0, 256.0, 1024.0] {
        let e = h.sram_access(kib, 64);
        assert!(e > last, "{kib} KiB");
        last = e;
    }
    assert!(near(h.sram_access(32.0, 32), 10.0, 1e-9));
}

/// Eyeriss's normalized energy per 16-bit access, relative to a 16-bit MAC at 65 nm: register
/// file 1x, PE-to-PE 2x, global buffer 6x, DRAM 200x.
#[test]
fn eyeriss_65nm_normalized_costs() {
    let e = preset("eyeriss-65nm").unwrap();
    let mac16 = e.mac(MacKind::Int, 16, 16, 16);
    for (what, ratio, model) in [
        ("register file", 1.0, e.rf_access(16)),
        ("PE-to-PE", 2.0, e.hop(16)),
        ("global buffer (108 KiB)", 6.0, e.sram_access(108.0, 16)),
        ("DRAM", 200.0, e.dram_per_byte() * 2.0),
    ] {
        assert!(
            near(model / mac16, ratio, 0.01),
            "{what}: Eyeriss {ratio}x, the model {}x",
            model / mac16
        );
    }
}

/// The Eyeriss table's arithmetic is Horowitz's scaled from 45 to 65 nm (its comments say so);
/// etch's node scaling must give the same figures, and leave DRAM where it is.
#[test]
fn technology_scaling_between_the_two_tables() {
    let h = preset("horowitz-45nm").unwrap();
    let e = preset("eyeriss-65nm").unwrap();
    let s = h.scaled_to(65.0);
    for (what, scaled, table) in [
        ("int8 multiply", s.int_mult_8b_pj, e.int_mult_8b_pj),
        ("int32 multiply", s.int_mult_32b_pj, e.int_mult_32b_pj),
        ("int8 add", s.int_add_8b_pj, e.int_add_8b_pj),
        ("int32 add", s.int_add_32b_pj, e.int_add_32b_pj),
        ("fp16 add", s.fp16_add_pj, e.fp16_add_pj),
        ("fp16 multiply", s.fp16_mult_pj, e.fp16_mult_pj),
        ("fp32 add", s.fp32_add_pj, e.fp32_add_pj),
        ("fp32 multiply", s.fp32_mult_pj, e.fp32_mult_pj),
        ("register file", s.rf_pj_per_16b, e.rf_pj_per_16b),
    ] {
        assert!(near(scaled, table, 0.005), "{what}: {scaled} vs {table}");
    }
    assert_eq!(s.dram_pj_per_64b, h.dram_pj_per_64b);
    // and back again
    let back = s.scaled_to(45.0);
    assert!(near(back.int_mult_8b_pj, h.int_mult_8b_pj, 1e-12));
    assert!(near(back.sram[0].pj_per_64b, h.sram[0].pj_per_64b, 1e-12));
}
