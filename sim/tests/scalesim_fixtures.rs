//! etch's SCALE-Sim mode against SCALE-Sim 3.0.0 itself: every fixture under
//! `fixtures/scalesim/` was recorded from real runs of its Python API
//! (`scripts/scalesim_record.sh`); per-layer Total Cycles and Stall Cycles must be equal.

use etch_sim::scalesim::{parse_config, parse_topology, simulate};

#[test]
fn every_recorded_run_matches_exactly() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/scalesim");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".expected.csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 12, "fixtures missing: found {}", files.len());
    let (mut layers, mut dataflows, mut shapes) = (
        0,
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    let mut stalled = 0;
    for f in &files {
        let stem = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".expected.csv")
            .to_string();
        let (topo, cfg) = stem.split_once("__").unwrap();
        let topo_path = format!("{dir}/{topo}.csv");
        let cfg_path = format!("{dir}/{cfg}.cfg");
        let topo =
            parse_topology(&topo_path, &std::fs::read_to_string(&topo_path).unwrap()).unwrap();
        let cfg = parse_config(&cfg_path, &std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
        dataflows.insert(cfg.dataflow.short());
        shapes.insert((cfg.rows, cfg.cols));
        let got = simulate(&topo, &cfg);
        let text = std::fs::read_to_string(f).unwrap();
        let want: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("layer,"))
            .map(|l| l.split(',').collect())
            .collect();
        assert_eq!(got.len(), want.len(), "{stem}: layer count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.name, w[0], "{stem}");
            let (total, stall): (u64, u64) = (w[2].parse().unwrap(), w[3].parse().unwrap());
            assert_eq!(
                (g.total_cycles, g.stall_cycles),
                (total, stall),
                "{stem}: layer {}",
                g.name
            );
            stalled += usize::from(stall > 0);
            layers += 1;
        }
    }
    assert_eq!(dataflows.len(), 3, "all three dataflows");
    assert!(shapes.len() >= 2, "at least two array shapes");
    eprintln!(
        "{layers} layers in {} runs equal to SCALE-Sim's ({stalled} with write-buffer stalls)",
        files.len()
    );
}
