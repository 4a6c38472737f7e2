//! The cycle-level simulator's timeline and accounting: a slow DRAM shows up as stall cycles (the
//! initial fill included), double buffering overlaps transfers with compute, resources never do two
//! things at once, activations that fit stay on chip, every DRAM byte and MAC is in the energy, the
//! same inputs give the same numbers, and the array's compute cycles equal SCALE-Sim 3.0.0's for
//! the recorded AlexNet and ResNet-18 layers.

use etch_hw::Accelerator;
use etch_ir::{parse_model_str, Model};
use etch_sim::cycle::{simulate_analytical, Phase, SimOptions, SimResult};
use etch_sim::scalesim::{parse_config, parse_topology};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// A chain of 3x3 convolutions (stride 1, padding 1) on an `h x h` input: `channels[0]` in, each
/// next entry a layer's output channels. Weights are shape-only graph inputs, as in the model-zoo
/// texts.
fn conv_chain(h: i64, channels: &[i64]) -> Model {
    let n = channels.len() - 1;
    let mut inputs = vec![format!("float[1,{},{h},{h}] x", channels[0])];
    for k in 0..n {
        inputs.push(format!(
            "float[{},{},3,3] w{k}",
            channels[k + 1],
            channels[k]
        ));
    }
    let mut body = String::new();
    for k in 0..n {
        let src = if k == 0 {
            "x".to_string()
        } else {
            format!("y{}", k - 1)
        };
        let dst = if k + 1 == n {
            "y".to_string()
        } else {
            format!("y{k}")
        };
        body.push_str(&format!(
            "   [\"c{k}\"] {dst} = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> ({src}, w{k})\n"
        ));
    }
    let text = format!(
        "<\n   ir_version: 8,\n   opset_import: [\"\" : 17],\n   metadata_props: [\"weights_stripped_to_inputs\": \"{n}\"]\n>\ng ({}) => (float[1,{},{h},{h}] y) {{\n{body}}}\n",
        inputs.join(", "),
        channels[n]
    );
    parse_model_str(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
}

/// A weight-stationary int8 description with the given buffers (KiB each) and DRAM.
fn ws(rows: u32, kib: u32, double: bool, bytes_per_cycle: f64, latency: u32) -> Accelerator {
    let text = format!(
        "Accelerator(name: \"t\", clock_mhz: 200.0,
            array: Systolic(rows: {rows}, cols: {rows}, dataflow: WeightStationary),
            pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32),
            buffers: (ifmap_kib: {kib}, filter_kib: {kib}, ofmap_kib: {kib}, banks: 1, double_buffered: {double}),
            dram: (bytes_per_cycle: {bytes_per_cycle:?}, latency_cycles: {latency}))"
    );
    Accelerator::from_ron("t.ron", &text).unwrap()
}

fn sim(m: &Model, acc: &Accelerator) -> SimResult {
    let info = etch_ir::verify::verify(m).unwrap();
    simulate_analytical(
        m,
        &info,
        acc,
        1,
        &SimOptions {
            trace: true,
            ..Default::default()
        },
    )
    .unwrap()
}

fn model(name: &str) -> Model {
    parse_model_str(
        &std::fs::read_to_string(format!("{ROOT}/examples/models/{name}.onnx.txt")).unwrap(),
    )
    .unwrap()
}

fn examples_hw() -> Vec<Accelerator> {
    let mut paths: Vec<_> = std::fs::read_dir(format!("{ROOT}/examples/hw"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| Accelerator::from_file(p.to_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn slow_dram_shows_stalls_including_the_initial_fill() {
    let m = conv_chain(16, &[32, 32]);
    let r = sim(&m, &ws(16, 64, true, 0.5, 100));
    let l = &r.layers[0];
    assert_eq!(l.cycles, l.compute_cycles + l.stall_cycles);
    assert!(l.stall_cycles > 0, "{l:?}");
    // the first thing the layer does is load from DRAM, and the array waits for it: the initial
    // fill is part of the stalls
    let first = r.events.iter().find(|e| e.layer == 0).unwrap();
    assert_eq!((first.phase, first.start), (Phase::Load, l.start));
    let first_compute = r
        .events
        .iter()
        .find(|e| e.layer == 0 && e.phase.resource() == "array")
        .unwrap();
    assert!(first_compute.start >= first.end);
    assert!(l.stall_cycles >= first.end - first.start);
    // with a fast DRAM the same layer stalls less, and computes exactly as long
    let fast = sim(&m, &ws(16, 64, true, 64.0, 100));
    assert_eq!(fast.layers[0].compute_cycles, l.compute_cycles);
    assert!(fast.layers[0].stall_cycles < l.stall_cycles);
}

/// Cycles in which a DRAM load of layer `layer` runs while the array computes.
fn load_compute_overlap(r: &SimResult) -> u64 {
    let loads: Vec<_> = r.events.iter().filter(|e| e.phase == Phase::Load).collect();
    let array: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.phase.resource() == "array")
        .collect();
    let mut overlap = 0;
    for l in &loads {
        for a in &array {
            overlap += l.end.min(a.end).saturating_sub(l.start.max(a.start));
        }
    }
    overlap
}

#[test]
fn double_buffering_overlaps_transfers_with_compute() {
    // the same working space per tile (a double-buffered buffer of 2X KiB works in halves of X),
    // so both run the same tiles; DRAM slow enough that transfers matter
    let m = conv_chain(32, &[64, 64]);
    let single = sim(&m, &ws(16, 32, false, 2.0, 100));
    let double = sim(&m, &ws(16, 64, true, 2.0, 100));
    let (s, d) = (&single.layers[0], &double.layers[0]);
    assert_eq!(s.compute_cycles, d.compute_cycles);
    assert_eq!(s.dram_read_bytes, d.dram_read_bytes);
    assert!(s.stall_cycles > 0);
    assert!(
        d.stall_cycles < s.stall_cycles,
        "double-buffered stalls {} vs single {}",
        d.stall_cycles,
        s.stall_cycles
    );
    // single-buffered, a load waits for the array to be done with the buffer; double-buffered,
    // the next tile's load runs while the array computes
    assert_eq!(load_compute_overlap(&single), 0);
    assert!(load_compute_overlap(&double) > 0);
}

#[test]
fn more_bandwidth_or_less_latency_never_adds_stalls() {
    let m = conv_chain(28, &[16, 64, 64]);
    let mut last = u64::MAX;
    for bpc in [0.25, 1.0, 4.0, 16.0, 256.0] {
        let r = sim(&m, &ws(16, 32, true, bpc, 50));
        let stall: u64 = r.layers.iter().map(|l| l.stall_cycles).sum();
        assert!(stall <= last, "{bpc} B/cycle: {stall} > {last}");
        last = stall;
    }
    let mut last = u64::MAX;
    for lat in [1000, 200, 50, 0] {
        let r = sim(&m, &ws(16, 32, true, 4.0, lat));
        assert!(r.total_cycles <= last, "latency {lat}");
        last = r.total_cycles;
    }
}

#[test]
fn resources_never_overlap_and_layers_run_in_order() {
    let models = [
        model("resnet18"),
        model("mobilenet_v2"),
        model("digits_cnn"),
    ];
    for m in &models {
        for acc in examples_hw() {
            let r = sim(m, &acc);
            let mut prev_end = 0;
            for (k, l) in r.layers.iter().enumerate() {
                assert_eq!(
                    l.start, prev_end,
                    "{}: layer {} starts late",
                    acc.name, l.name
                );
                assert_eq!(l.cycles, l.end - l.start);
                assert_eq!(l.cycles, l.compute_cycles + l.stall_cycles);
                prev_end = l.end;
                for e in r.events.iter().filter(|e| e.layer == k) {
                    assert!(e.start < e.end && e.start >= l.start && e.end <= l.end);
                }
            }
            assert_eq!(r.total_cycles, prev_end);
            assert_eq!(
                r.total_cycles,
                r.layers.iter().map(|l| l.cycles).sum::<u64>()
            );
            // one DRAM channel and one array: their intervals are disjoint and in order
            for res in ["dram", "array", "vector unit"] {
                let mut ev: Vec<_> = r
                    .events
                    .iter()
                    .filter(|e| e.phase.resource() == res)
                    .collect();
                ev.sort_by_key(|e| e.start);
                for w in ev.windows(2) {
                    assert!(
                        w[0].end <= w[1].start,
                        "{} on {}: {:?} overlaps {:?}",
                        res,
                        acc.name,
                        w[0],
                        w[1]
                    );
                }
            }
            // the bytes of the load and store events are the layers' DRAM bytes
            let moved: u64 = r
                .events
                .iter()
                .filter(|e| e.phase.resource() == "dram")
                .map(|e| e.bytes)
                .sum();
            assert_eq!(moved, r.layers.iter().map(|l| l.dram_bytes()).sum::<u64>());
        }
    }
}

#[test]
fn activations_stay_on_chip_when_they_fit() {
    // 16 x 16 x 16 int8 = 4 KiB between the two layers
    let m = conv_chain(16, &[16, 16, 16]);
    let weights = 16 * 16 * 9; // bytes of one layer's int8 weights
    let big = sim(&m, &ws(16, 64, true, 16.0, 10));
    let (a, b) = (&big.layers[0], &big.layers[1]);
    assert_eq!(a.dram_write_bytes, 0, "{a:?}");
    assert_eq!(b.dram_read_bytes, weights, "{b:?}");
    assert!(a.notes.iter().any(|n| n.contains("kept on chip")));
    assert!(b.notes.iter().any(|n| n.contains("on-chip buffer")));
    // buffers too small for the 4 KiB activation: it goes out to DRAM and comes back
    let small = sim(&m, &ws(16, 4, true, 16.0, 10));
    let (a2, b2) = (&small.layers[0], &small.layers[1]);
    assert!(a2.dram_write_bytes >= 4096, "{a2:?}");
    assert!(b2.dram_read_bytes >= weights + 4096, "{b2:?}");
    assert!(small.energy().dram > big.energy().dram);
    // on chip, the value is still written to and read from the buffers: SRAM energy, not zero
    assert!(b.energy.sram > 0.0);
}

#[test]
fn values_no_layer_reads_again_are_not_written_back() {
    // three 16 x 16 x 4 int8 activations (1 KiB each) and room for one on chip (1.5 KiB)
    let m = conv_chain(16, &[4, 4, 4, 4]);
    let acc = Accelerator::from_ron(
        "t.ron",
        "Accelerator(name: \"t\", clock_mhz: 200.0,
            array: Systolic(rows: 64, cols: 64, dataflow: WeightStationary),
            pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32),
            buffers: (ifmap_kib: 3, filter_kib: 64, ofmap_kib: 64, banks: 1, double_buffered: true),
            dram: (bytes_per_cycle: 16.0, latency_cycles: 10))",
    )
    .unwrap();
    let r = sim(&m, &acc);
    // each layer's output is read by the next one only: it never goes out, and only the model's
    // output is written to DRAM
    let writes: Vec<u64> = r.layers.iter().map(|l| l.dram_write_bytes).collect();
    assert_eq!(writes, [0, 0, 1024]);
    let reads: Vec<u64> = r.layers.iter().map(|l| l.dram_read_bytes).collect();
    assert_eq!(
        reads,
        [1024 + 144, 144, 144],
        "the input, then the 4 x 4 x 3 x 3 weights"
    );
}

#[test]
fn every_dram_byte_and_mac_is_in_the_energy() {
    for name in ["resnet18", "digits_cnn", "squeezenet1_1"] {
        let m = model(name);
        for acc in examples_hw() {
            let table = acc.energy_table().unwrap();
            let r = sim(&m, &acc);
            for l in &r.layers {
                let dram = l.dram_bytes() as f64 * table.dram_per_byte();
                assert!(
                    (l.energy.dram - dram).abs() <= 1e-9 * dram.max(1.0),
                    "{name} on {}: {} DRAM energy {} for {} bytes",
                    acc.name,
                    l.name,
                    l.energy.dram,
                    l.dram_bytes()
                );
                if l.macs > 0 {
                    // a dense model: every MAC costs the PE's MAC at its widths
                    let pe = acc.pe;
                    let mac = table.mac(pe.kind(), pe.weight_bits(), pe.act_bits(), pe.acc_bits());
                    let want = l.macs as f64 * mac;
                    assert!(
                        (l.energy.mac - want).abs() <= 1e-9 * want,
                        "{name} on {}: {}",
                        acc.name,
                        l.name
                    );
                    assert!(l.energy.register_file > 0.0 && l.energy.pe_to_pe > 0.0);
                    assert!(l.energy.sram > 0.0);
                }
            }
            let e = r.energy();
            let parts: f64 = e.parts().iter().map(|p| p.1).sum();
            assert!((parts - e.total()).abs() <= 1e-9 * e.total());
        }
    }
}

#[test]
fn same_inputs_same_numbers() {
    let m = model("resnet50");
    let acc = Accelerator::from_file(&format!("{ROOT}/examples/hw/tpu-like-128x128-ws-int8.ron"))
        .unwrap();
    let a = sim(&m, &acc);
    let b = sim(&m, &acc);
    assert_eq!(a, b);
}

/// The main simulator (not the SCALE-Sim mode) against SCALE-Sim 3.0.0's recorded runs: for every
/// AlexNet and ResNet-18 convolution, each array shape and dataflow, the array's compute cycles
/// (folds of preload, skew, streaming and drain) equal SCALE-Sim's demand lines (its Total Cycles
/// less its stall cycles, plus one). Layers whose stride leaves a remainder are skipped: SCALE-Sim
/// gives those one more output row and column than the convolution has.
#[test]
fn compute_cycles_equal_scalesim() {
    let dir = format!("{ROOT}/sim/tests/fixtures/scalesim");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expected.csv"))
        .collect();
    files.sort();
    let mut checked = 0;
    let mut dataflows = std::collections::BTreeSet::new();
    for f in &files {
        let stem = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".expected.csv", "");
        let (topo, cfg) = stem.split_once("__").unwrap();
        let tp = format!("{dir}/{topo}.csv");
        let cp = format!("{dir}/{cfg}.cfg");
        let layers = parse_topology(&tp, &std::fs::read_to_string(&tp).unwrap()).unwrap();
        let cfg = parse_config(&cp, &std::fs::read_to_string(&cp).unwrap()).unwrap();
        let acc = Accelerator::from_ron(
            "t.ron",
            &format!(
                "Accelerator(name: \"t\", clock_mhz: 200.0,
                    array: Systolic(rows: {}, cols: {}, dataflow: {:?}),
                    pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32),
                    buffers: (ifmap_kib: 4096, filter_kib: 4096, ofmap_kib: 4096, banks: 1, double_buffered: true),
                    dram: (bytes_per_cycle: 64.0, latency_cycles: 0))",
                cfg.rows, cfg.cols, cfg.dataflow
            ),
        )
        .unwrap();
        let want = std::fs::read_to_string(f).unwrap();
        let rows: Vec<Vec<&str>> = want
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("layer,"))
            .map(|l| l.split(',').collect())
            .collect();
        for (l, w) in layers.iter().zip(&rows) {
            if (l.ifmap_h - l.filter_h) % l.stride != 0 || (l.ifmap_w - l.filter_w) % l.stride != 0
            {
                continue;
            }
            let text = format!(
                "<\n   ir_version: 8,\n   opset_import: [\"\" : 17],\n   metadata_props: [\"weights_stripped_to_inputs\": \"1\"]\n>\ng (float[1,{c},{h},{w}] x, float[{f},{c},{kh},{kw}] wt) => (float[1,{f},{oh},{ow}] y) {{\n   [\"{name}\"] y = Conv <kernel_shape: ints = [{kh}, {kw}], strides: ints = [{s}, {s}]> (x, wt)\n}}\n",
                c = l.channels,
                h = l.ifmap_h,
                w = l.ifmap_w,
                f = l.filters,
                kh = l.filter_h,
                kw = l.filter_w,
                s = l.stride,
                name = l.name,
                oh = (l.ifmap_h - l.filter_h) / l.stride + 1,
                ow = (l.ifmap_w - l.filter_w) / l.stride + 1,
            );
            let m = parse_model_str(&text).unwrap();
            let r = sim(&m, &acc);
            let (total, stall): (u64, u64) = (w[2].parse().unwrap(), w[3].parse().unwrap());
            assert_eq!(
                r.layers[0].compute_cycles,
                total - stall + 1,
                "{stem}: layer {}",
                l.name
            );
            checked += 1;
            dataflows.insert(cfg.dataflow.short());
        }
    }
    assert_eq!(dataflows.len(), 3);
    assert!(checked >= 100, "only {checked} layers compared");
    eprintln!("{checked} layers: compute cycles equal to SCALE-Sim's");
}

#[test]
fn a_description_at_another_node_scales_on_chip_energy_and_not_dram() {
    let m = model("digits_cnn");
    let text = std::fs::read_to_string(format!("{ROOT}/examples/hw/ws-16x16-int8.ron")).unwrap();
    let at45 = Accelerator::from_ron("t.ron", &text).unwrap();
    let at90 = Accelerator::from_ron(
        "t.ron",
        &text.replace(
            "energy: \"horowitz-45nm\",",
            "energy: \"horowitz-45nm\",\n    node_nm: Some(90.0),",
        ),
    )
    .unwrap();
    assert_eq!(at90.node_nm, Some(90.0));
    let (a, b) = (sim(&m, &at45).energy(), sim(&m, &at90).energy());
    for (x, y) in a.parts().iter().zip(b.parts()) {
        if x.0 == "dram" {
            assert_eq!(x.1, y.1);
        } else {
            assert!(
                (y.1 - 2.0 * x.1).abs() <= 1e-9 * y.1,
                "{}: {} vs {}",
                x.0,
                x.1,
                y.1
            );
        }
    }
}
