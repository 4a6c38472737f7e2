//! Compressed graphs change the simulator's costs, for the reasons the report gives: N:M sparsity
//! on N:M hardware skips the zeros (fewer cycles), on dense hardware only gates them (less MAC
//! energy, same cycles); power-of-two weights on shift-add PEs and binarized layers on XNOR-popcount
//! PEs cost less energy and DRAM traffic than int8 on integer MACs of the same array; channel
//! pruning removes work (fewer cycles); element pruning gates multiplies (less energy).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DIGITS: &str = "examples/models/digits_cnn.onnx.txt";
const CALIB: &str = "calib=\"examples/data/digits_train.csv\"";

fn sim(hw: &str, passes: Option<&str>) -> Value {
    let mut args = vec!["sim", DIGITS, "--hw", hw, "--json"];
    if let Some(p) = passes {
        args.extend(["--passes", p]);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_etch"))
        .args(&args)
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "etch {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn f(d: &Value, k: &str) -> f64 {
    d[k].as_f64().unwrap()
}

fn part(d: &Value, k: &str) -> f64 {
    d["energy_breakdown"][k].as_f64().unwrap()
}

fn array_layers(d: &Value) -> Vec<&Value> {
    d["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["unit"] == "array")
        .collect()
}

fn notes(l: &Value) -> String {
    l["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A copy of a shipped description with another PE, written under the test's scratch folder.
fn twin(hw: &str, pe_from: &str, pe_to: &str, name: &str) -> String {
    let text = std::fs::read_to_string(format!("{ROOT}/{hw}")).unwrap();
    assert!(text.contains(pe_from));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{name}.ron"));
    std::fs::write(&path, text.replace(pe_from, pe_to)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn nm_on_nm_hardware_skips_the_zeros() {
    let hw = "examples/hw/is-32x32-int8-sparse.ron";
    let dense = sim(hw, None);
    let sparse = sim(hw, Some("nm(n=2,m=4)"));
    assert!(f(&sparse, "total_cycles") < f(&dense, "total_cycles"));
    assert!(f(&sparse, "energy_pj") < f(&dense, "energy_pj"));
    // compressed weights (values and 2-bit indices) move fewer DRAM bytes
    assert!(f(&sparse, "dram_bytes") < f(&dense, "dram_bytes"));
    for (s, d) in array_layers(&sparse).iter().zip(array_layers(&dense)) {
        assert!(s["compute_cycles"].as_u64() <= d["compute_cycles"].as_u64());
        assert!(
            notes(s).contains("N:M 2:4 on N:M hardware: reduction"),
            "{}",
            notes(s)
        );
    }
    // utilization counts the MACs the array performs: at most one per PE and cycle
    for l in sparse["layers"].as_array().unwrap() {
        let u = l["utilization"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&u), "{}: {u}", l["name"]);
        assert!(l["macs_performed"].as_u64() <= l["macs"].as_u64());
    }
    assert!(sparse["macs_performed"].as_u64() < dense["macs_performed"].as_u64());
    assert_eq!(sparse["macs"], dense["macs"]);
    // conv2's reduction of 16 x 3 x 3 = 144 halves
    let conv2 = array_layers(&sparse)
        .into_iter()
        .find(|l| l["name"] == "/conv2/Conv")
        .unwrap();
    assert!(
        notes(conv2).contains("reduction 144 -> 72"),
        "{}",
        notes(conv2)
    );
}

#[test]
fn nm_on_dense_hardware_gates_the_zeros() {
    let hw = "examples/hw/ws-16x16-int8.ron";
    let dense = sim(hw, None);
    let sparse = sim(hw, Some("nm(n=2,m=4)"));
    assert_eq!(sparse["total_cycles"], dense["total_cycles"]);
    assert!(part(&sparse, "mac") < 0.6 * part(&dense, "mac"));
    assert!(f(&sparse, "energy_pj") < f(&dense, "energy_pj"));
    for l in array_layers(&sparse) {
        assert!(
            notes(l)
                .contains("N:M weights on hardware without N:M support: zeros gated, not skipped"),
            "{}",
            notes(l)
        );
    }
}

#[test]
fn pow2_on_shift_add_pes_costs_less_than_int8_on_multipliers() {
    let hw = "examples/hw/ws-32x32-pow2.ron";
    let int8_hw = twin(
        hw,
        "ShiftAdd(weight_bits: 4, act_bits: 8, acc_bits: 24)",
        "IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32)",
        "ws-32x32-int8-twin",
    );
    let pow2 = sim(
        hw,
        Some(&format!("pow2(bits=4),quant(bits=8,per=channel,{CALIB})")),
    );
    let int8 = sim(
        &int8_hw,
        Some(&format!("quant(bits=8,per=channel,{CALIB})")),
    );
    assert!(
        part(&pow2, "mac") < 0.5 * part(&int8, "mac"),
        "shift-add {} pJ vs int8 MAC {} pJ",
        part(&pow2, "mac"),
        part(&int8, "mac")
    );
    // 4-bit weight codes instead of 8-bit weights
    assert!(f(&pow2, "dram_bytes") < f(&int8, "dram_bytes"));
    assert!(f(&pow2, "energy_pj") < f(&int8, "energy_pj"));
    for l in array_layers(&pow2) {
        assert!(notes(l).contains("shift-add"), "{}", notes(l));
    }
    // the same shift layers on the integer PE go through its multiplier: more MAC energy
    let pow2_on_int = sim(
        &int8_hw,
        Some(&format!("pow2(bits=4),quant(bits=8,per=channel,{CALIB})")),
    );
    assert!(part(&pow2_on_int, "mac") > part(&pow2, "mac"));
    assert!(notes(array_layers(&pow2_on_int)[0]).contains("on the int MAC PE"));
}

#[test]
fn binarized_layers_on_xnor_pes_cost_less_than_int8() {
    let hw = "examples/hw/ws-64x64-xnor.ron";
    let int8_hw = twin(
        hw,
        "XnorPopcount(act_bits: 1, acc_bits: 16)",
        "IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32)",
        "ws-64x64-int8-twin",
    );
    // binarize keeps the first and last layers in higher precision: conv2 is the binary one
    let bin = sim(hw, Some(&format!("binarize(acts=true,{CALIB})")));
    let int8 = sim(
        &int8_hw,
        Some(&format!("quant(bits=8,per=channel,{CALIB})")),
    );
    let conv2 = |d: &Value| -> Value {
        array_layers(d)
            .into_iter()
            .find(|l| l["name"] == "/conv2/Conv")
            .unwrap()
            .clone()
    };
    let (b, i) = (conv2(&bin), conv2(&int8));
    assert!(
        notes(&b).contains("xnor-popcount with 1-bit weights and 1-bit activations"),
        "{}",
        notes(&b)
    );
    assert!(
        f(&b, "energy_pj") < 0.5 * f(&i, "energy_pj"),
        "{} vs {}",
        f(&b, "energy_pj"),
        f(&i, "energy_pj")
    );
    // 1-bit weights and activations
    assert!(b["dram_bytes"].as_u64() < i["dram_bytes"].as_u64());
    assert!(f(&bin, "dram_bytes") < f(&int8, "dram_bytes"));
    assert!(f(&bin, "energy_pj") < f(&int8, "energy_pj"));
}

#[test]
fn channel_pruning_lowers_cycles() {
    let hw = "examples/hw/ws-16x16-int8.ron";
    let dense = sim(hw, None);
    let pruned = sim(hw, Some("prune(sparsity=0.5,granularity=channel)"));
    assert!(f(&pruned, "total_cycles") < f(&dense, "total_cycles"));
    assert!(f(&pruned, "macs") < f(&dense, "macs"));
    assert!(f(&pruned, "energy_pj") < f(&dense, "energy_pj"));
    assert!(f(&pruned, "dram_bytes") < f(&dense, "dram_bytes"));
}

#[test]
fn element_pruning_gates_multiplies() {
    let hw = "examples/hw/ws-16x16-int8.ron";
    let dense = sim(hw, None);
    let pruned = sim(hw, Some("prune(sparsity=0.5)"));
    assert!(f(&pruned, "total_cycles") <= f(&dense, "total_cycles"));
    assert!(part(&pruned, "mac") < 0.6 * part(&dense, "mac"));
    assert!(f(&pruned, "energy_pj") < f(&dense, "energy_pj"));
    for l in array_layers(&pruned) {
        assert!(
            notes(l).contains("of weights are zero: their multiplies are gated"),
            "{}",
            notes(l)
        );
    }
}

#[test]
fn quantized_graphs_run_as_the_integer_datapath() {
    // QDQ is notation: weights are stored as codes (their DequantizeLinear is folded), the
    // activations' QuantizeLinear/DequantizeLinear pairs are the array's requantization
    let hw = "examples/hw/ws-16x16-int8.ron";
    let float = sim(hw, None);
    let int8 = sim(hw, Some(&format!("quant(bits=8,per=channel,{CALIB})")));
    for l in int8["layers"].as_array().unwrap() {
        let op = l["op"].as_str().unwrap();
        if op == "QuantizeLinear" || op == "DequantizeLinear" {
            assert!(
                l["unit"] == "fused" || l["unit"] == "free",
                "{}: {}",
                l["name"],
                l["unit"]
            );
            assert_eq!(l["cycles"], 0);
        }
    }
    // the same layers on the array, the same traffic: the logits still go out to DRAM
    let (fa, ia) = (array_layers(&float), array_layers(&int8));
    assert_eq!(fa.len(), ia.len());
    for (f, i) in fa.iter().zip(&ia) {
        assert_eq!(f["compute_cycles"], i["compute_cycles"], "{}", f["name"]);
    }
    assert_eq!(
        fa.last().unwrap()["dram_bytes"],
        ia.last().unwrap()["dram_bytes"]
    );
    assert!(f(&int8, "total_cycles") <= f(&float, "total_cycles"));
}
