//! Float text: etch prints what onnx 1.23 prints (C++ `std::to_chars`, shortest round-trip), and
//! every f32 comes back bit-exactly.

use etch_ir::print::{write_f32, write_f64};
use proptest::prelude::*;

fn f32_text(v: f32) -> String {
    let mut s = String::new();
    write_f32(&mut s, v);
    s
}

#[test]
fn matches_onnx_printer_spellings() {
    // spellings from ONNX-TEXT.md §4, printed by onnx 1.23
    for (v, want) in [
        (1.0f32, "1"),
        (-0.0, "-0"),
        (123456792.0, "123456792"),
        (1e-5, "1e-05"),
        (f32::MAX, "3.4028235e+38"),
        (1e-45, "1e-45"),
        (1.0 / 3.0, "0.33333334"),
        (0.1, "0.1"),
        (1e10, "1e+10"),
        (1.5e-3, "0.0015"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
        (f32::NAN, "nan"),
        (-f32::NAN, "-nan"),
    ] {
        assert_eq!(f32_text(v), want, "{v:e}");
    }
    let mut s = String::new();
    write_f64(&mut s, 1e-300);
    assert_eq!(s, "1e-300");
}

fn parse_back(text: &str) -> f32 {
    let model = format!("<ir_version: 8, opset_import: [\"\" : 17]> g () => (float[1] y) <float[1] y = {{{text}}}> {{ }}");
    let m = etch_ir::parse_model_str(&model).unwrap();
    m.graph.initializers[0].tensor.floats().unwrap()[0]
}

proptest! {
    #[test]
    fn every_finite_f32_round_trips_bit_exactly(bits in any::<u32>()) {
        let v = f32::from_bits(bits);
        prop_assume!(v.is_finite());
        let text = f32_text(v);
        prop_assert_eq!(parse_back(&text).to_bits(), bits, "{}", text);
    }

    #[test]
    fn decimal_text_rounds_correctly_to_f32(mantissa in 0u64..10_000_000_000_000_000, exp in -50i32..40) {
        let text = format!("{mantissa}e{exp}");
        let want: f32 = text.parse().unwrap();
        prop_assert_eq!(parse_back(&text).to_bits(), want.to_bits());
    }
}

/// Compares etch's float text with C++'s `std::to_chars` (what onnx uses) on 300k random f32 and 100k f64 values,
/// integers and short decimals. Needs g++, which the test command installs.
#[test]
fn matches_cpp_to_chars_on_random_floats() {
    let dir = std::env::temp_dir().join(format!("etch-to-chars-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("to_chars");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/to_chars.cpp");
    let status = std::process::Command::new("g++")
        .args(["-O2", "-std=c++17", "-o"])
        .arg(&exe)
        .arg(src)
        .status()
        .expect("g++ is needed for this test (scripts/test.sh installs it)");
    assert!(status.success());
    let out = std::process::Command::new(&exe).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let (bits, want) = line.split_once(' ').unwrap();
        if let Some(bits) = bits.strip_prefix('d') {
            let mut s = String::new();
            write_f64(&mut s, f64::from_bits(bits.parse().unwrap()));
            assert_eq!(s, want, "f64 bits {bits}");
        } else {
            let v = f32::from_bits(bits.parse().unwrap());
            assert_eq!(f32_text(v), want, "bits {bits}");
        }
        n += 1;
    }
    assert!(n > 350_000);
    std::fs::remove_dir_all(&dir).ok();
}
