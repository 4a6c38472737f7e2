//! `etch sweep` as a user runs it: the README's 108-point spec, resumed after a kill, split in
//! shards and merged, each point equal to `etch sim --json`, the Pareto front exactly the
//! non-dominated rows; bad points are rows with their error, and names from a spec stay names.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{etch, text, tmp};
use rusqlite::Connection;

const SPEC: &str = "examples/sweep/resnet18.toml";

/// Every row of a results file by key: (idx, the whole row as text).
fn rows(path: &Path) -> BTreeMap<String, (i64, String)> {
    let c = Connection::open(path).unwrap();
    let n = c.prepare("SELECT * FROM points").unwrap().column_count();
    let mut st = c.prepare("SELECT * FROM points").unwrap();
    let out = st
        .query_map([], |r| {
            let cells: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get::<_, rusqlite::types::Value>(i).unwrap()))
                .collect();
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, i64>(1)?, cells.join("|")),
            ))
        })
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap();
    out
}

fn sweep(args: &[&str]) -> String {
    let o = etch(args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    text(&o)
}

#[test]
fn a_sweep_resumes_shards_merge_and_points_equal_etch_sim() {
    let d = tmp("sweep");
    std::fs::create_dir_all(&d).unwrap();
    let whole = d.join("whole.sqlite");
    let out = sweep(&["sweep", SPEC, "-o", whole.to_str().unwrap()]);
    assert!(out.contains("108 points in shard 1/1: 0 already"), "{out}");
    let all = rows(&whole);
    assert_eq!(all.len(), 108);
    assert!(
        all.values().all(|r| r.1.contains("Text(\"ok\")")),
        "every point ran"
    );

    // killed halfway, then run again: every point once, the same figures
    let resumed = d.join("resumed.sqlite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_etch"))
        .args([
            "sweep",
            SPEC,
            "-o",
            resumed.to_str().unwrap(),
            "--jobs",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let count = |p: &Path| -> i64 {
        Connection::open(p)
            .and_then(|c| c.query_row("SELECT count(*) FROM points", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    while count(&resumed) == 0 && t.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count(&resumed);
    assert!(
        partial > 0 && partial < 108,
        "killed after {partial} points"
    );
    let out = sweep(&["sweep", SPEC, "-o", resumed.to_str().unwrap()]);
    assert!(
        out.contains(&format!("{partial} already in")),
        "{out} (had {partial})"
    );
    assert_eq!(rows(&resumed), all);

    // three shards, merged, equal the whole run
    let mut shards = Vec::new();
    for i in 1..=3 {
        let s = d.join(format!("shard{i}.sqlite"));
        let out = sweep(&[
            "sweep",
            SPEC,
            "-o",
            s.to_str().unwrap(),
            "--shard",
            &format!("{i}/3"),
        ]);
        assert!(out.contains(&format!("36 points in shard {i}/3")), "{out}");
        shards.push(s.to_str().unwrap().to_string());
    }
    let merged = d.join("merged.sqlite");
    let mut args = vec!["sweep", "merge", merged.to_str().unwrap()];
    args.extend(shards.iter().map(|s| s.as_str()));
    assert!(sweep(&args).contains("108 points added"));
    assert_eq!(rows(&merged), all);
    // merging again adds nothing
    assert!(sweep(&args).contains("0 points added"));

    // a point equals etch sim --json on that model, passes and description
    let c = Connection::open(&whole).unwrap();
    let (passes, rows_, cols, kib, bpc, cycles, energy, dram): (
        String,
        i64,
        i64,
        i64,
        f64,
        i64,
        f64,
        i64,
    ) = c
        .query_row(
            "SELECT passes, \"array.rows\", \"array.cols\", \"buffers.ifmap_kib\", \"dram.bytes_per_cycle\", total_cycles, energy_pj, dram_bytes FROM points WHERE idx = 41",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ))
            },
        )
        .unwrap();
    let base = std::fs::read_to_string("examples/hw/ws-16x16-int8.ron").unwrap();
    let desc = base
        .replace(
            "rows: 16, cols: 16",
            &format!("rows: {rows_}, cols: {cols}"),
        )
        .replace("ifmap_kib: 64", &format!("ifmap_kib: {kib}"))
        .replace(
            "bytes_per_cycle: 16.0",
            &format!("bytes_per_cycle: {bpc:?}"),
        );
    let hw = d.join("point.ron");
    std::fs::write(&hw, desc).unwrap();
    let o = etch(&[
        "sim",
        "examples/models/resnet18.onnx.txt",
        "--hw",
        hw.to_str().unwrap(),
        "--passes",
        &passes,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["total_cycles"].as_i64().unwrap(), cycles);
    // (serde_json's float parsing may differ from the stored value in the last bit)
    let e = doc["energy_pj"].as_f64().unwrap();
    assert!((e - energy).abs() <= energy * 1e-15, "{e} vs {energy}");
    assert_eq!(doc["dram_bytes"].as_i64().unwrap(), dram);

    // the front is exactly the non-dominated rows
    for objectives in ["latency,energy", "latency,energy,area", "dram"] {
        let o = etch(&[
            "sweep",
            "pareto",
            whole.to_str().unwrap(),
            "--objectives",
            objectives,
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let front: Vec<i64> = doc["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["idx"].as_i64().unwrap())
            .collect();
        let col = |o: &str| match o {
            "latency" => "latency_s",
            "energy" => "energy_pj",
            "area" => "area_mm2",
            _ => "dram_bytes",
        };
        let sql = format!(
            "SELECT idx, {} FROM points ORDER BY idx",
            objectives
                .split(',')
                .map(|o| format!("CAST({} AS REAL)", col(o)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let k = objectives.split(',').count();
        let mut st = c.prepare(&sql).unwrap();
        let pts: Vec<(i64, Vec<f64>)> = st
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    (1..=k).map(|i| r.get(i).unwrap()).collect::<Vec<f64>>(),
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let dominated = |b: &Vec<f64>| {
            pts.iter().any(|(_, a)| {
                a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y)
            })
        };
        let want: Vec<i64> = pts
            .iter()
            .filter(|(_, s)| !dominated(s))
            .map(|p| p.0)
            .collect();
        assert_eq!(front, want, "{objectives}");
        assert!(!front.is_empty() && front.len() < 108, "{objectives}");
        if objectives == "latency,energy" {
            let svg = d.join("front.svg");
            sweep(&[
                "sweep",
                "pareto",
                whole.to_str().unwrap(),
                "--objectives",
                objectives,
                "--plot",
                svg.to_str().unwrap(),
            ]);
            let text = std::fs::read_to_string(&svg).unwrap();
            assert!(
                text.contains(&format!("Pareto front: {} of 108 points", front.len())),
                "{svg:?}"
            );
        }
    }
    let o = etch(&[
        "sweep",
        "pareto",
        whole.to_str().unwrap(),
        "--objectives",
        "latency,energy,area",
        "--plot",
        d.join("x.svg").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && text(&o).contains("--plot draws two objectives"));
}

/// A description that fails its checks is a row with its error; a varied field's name (from the
/// spec) is a quoted column, never SQL; bad specs and files are errors that say what to fix.
#[test]
fn bad_points_are_rows_and_bad_specs_are_errors() {
    let d = tmp("sweep-bad");
    std::fs::create_dir_all(&d).unwrap();
    let spec = d.join("s.toml");
    std::fs::write(
        &spec,
        "models = [\"examples/models/digits_cnn.onnx.txt\"]\n[hw]\nbase = \"examples/hw/ws-4x2-int8.ron\"\n[hw.vary]\n\"array.rows\" = [0, 4]\n\"x\\\"); DROP TABLE points; --\" = [1]\n",
    )
    .unwrap();
    let out = d.join("r.sqlite");
    let o = etch(&["sweep", spec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 run now (2 failed)"), "{}", text(&o));
    let c = Connection::open(&out).unwrap();
    let errors: Vec<String> = c
        .prepare("SELECT error FROM points ORDER BY idx")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(errors.iter().all(|e| e.contains("no field")), "{errors:?}");
    let spec2 = d.join("s2.toml");
    std::fs::write(
        &spec2,
        "models = [\"examples/models/digits_cnn.onnx.txt\"]\n[hw]\nbase = \"examples/hw/ws-4x2-int8.ron\"\n[hw.vary]\n\"array.rows\" = [0, 4]\n",
    )
    .unwrap();
    let out2 = d.join("r2.sqlite");
    let o = etch(&[
        "sweep",
        spec2.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(text(&o).contains("2 run now (1 failed)"), "{}", text(&o));
    // the same file for another spec's fields is refused
    let o = etch(&[
        "sweep",
        spec2.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("write to another file"),
        "{}",
        text(&o)
    );
    for (body, want) in [
        ("models = []\n[hw]\nbase = \"x.ron\"\n", "`models` is empty"),
        ("models = [\"m\"]\n[hw]\n", "needs `base`"),
        ("models = [\"m\"]\nmodel = 1\n[hw]\nbase = \"a\"\n", "unknown field"),
        (
            "models = [\"m\"]\n[hw]\nbase = \"a\"\n[hw.vary]\na = [1,2,3,4,5,6,7,8,9,10]\nb = [1,2,3,4,5,6,7,8,9,10]\nc = [1,2,3,4,5,6,7,8,9,10]\nd = [1,2,3,4,5,6,7,8,9,10]\ne = [1,2,3,4,5,6,7,8,9,10]\nf = [1,2,3,4,5,6,7,8,9,10]\ng = [1,2,3,4,5,6,7,8,9,10]\nh = [1,2,3,4,5,6,7,8,9,10]\n",
            "at most",
        ),
    ] {
        std::fs::write(&spec, body).unwrap();
        let o = etch(&["sweep", spec.to_str().unwrap(), "-o", d.join("x.sqlite").to_str().unwrap()]);
        assert!(!o.status.success() && text(&o).contains(want), "{body}: {}", text(&o));
    }
    let o = etch(&[
        "sweep",
        "pareto",
        out2.to_str().unwrap(),
        "--objectives",
        "speed",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("unknown objective"),
        "{}",
        text(&o)
    );
    let o = etch(&[
        "sweep",
        "--shard",
        "3/2",
        spec2.to_str().unwrap(),
        "-o",
        "y.sqlite",
    ]);
    assert!(
        !o.status.success() && text(&o).contains("1 <= I <= N"),
        "{}",
        text(&o)
    );
}

/// With `data`, each point has its model's top-1 accuracy, equal to `etch eval`'s, and the front
/// can trade it against latency.
#[test]
fn points_carry_the_accuracy_etch_eval_measures() {
    let d = tmp("sweep-top1");
    std::fs::create_dir_all(&d).unwrap();
    let quant = "quant(bits=4,per=channel,calib=\"examples/data/digits_train.csv\")";
    let spec = d.join("s.toml");
    std::fs::write(
        &spec,
        format!(
            "models = [\"examples/models/digits_cnn.onnx.txt\"]\npasses = [\"\", '{quant}']\ndata = \"examples/data/digits_test.csv\"\n[hw]\nbase = \"examples/hw/ws-4x2-int8.ron\"\n[hw.vary]\n\"array.rows\" = [2, 4]\n"
        ),
    )
    .unwrap();
    let out = d.join("r.sqlite");
    sweep(&["sweep", spec.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    let c = Connection::open(&out).unwrap();
    for passes in ["", quant] {
        let mut args = vec![
            "eval",
            "examples/models/digits_cnn.onnx.txt",
            "--data",
            "examples/data/digits_test.csv",
            "--json",
        ];
        if !passes.is_empty() {
            args.extend(["--passes", passes]);
        }
        let o = etch(&args);
        assert!(o.status.success(), "{}", text(&o));
        let want = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["top1"]
            .as_f64()
            .unwrap();
        let got: Vec<f64> = c
            .prepare("SELECT top1 FROM points WHERE passes = ?1")
            .unwrap()
            .query_map([passes], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        // serde_json's float parsing is not exactly round-trip: equal to the last bits' noise
        assert!(
            got.len() == 2 && got.iter().all(|g| (g - want).abs() < 1e-12),
            "{passes:?}: {got:?} vs {want}"
        );
    }
    let o = etch(&[
        "sweep",
        "pareto",
        out.to_str().unwrap(),
        "--objectives",
        "accuracy,latency",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!doc["points"].as_array().unwrap().is_empty());
}

/// A real single-node Slurm (munge, slurmctld, slurmd from Debian's packages, started by
/// `scripts/slurm_local.sh`; the test command installs them): `etch sweep slurm --submit` runs
/// the shards as a job array and merges them after it, and the result equals a local run. A
/// missing Slurm fails this test; it does not skip.
#[test]
fn a_sweep_runs_through_slurm() {
    struct Daemons(std::path::PathBuf);
    impl Drop for Daemons {
        fn drop(&mut self) {
            let _ = Command::new("scripts/slurm_local.sh")
                .args(["stop", self.0.to_str().unwrap()])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status();
        }
    }
    let d = tmp("sweep-slurm");
    std::fs::create_dir_all(&d).unwrap();
    let slurm = Daemons(d.join("slurm"));
    let o = Command::new("scripts/slurm_local.sh")
        .args(["start", slurm.0.to_str().unwrap()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "a local Slurm must start (run as root, with slurm-wlm and munge installed): {}",
        text(&o)
    );
    let conf = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let spec = d.join("s.toml");
    std::fs::write(
        &spec,
        "models = [\"examples/models/digits_cnn.onnx.txt\"]\npasses = [\"\", \"prune(sparsity=0.5,granularity=channel)\"]\n[hw]\nbase = \"examples/hw/ws-4x2-int8.ron\"\n[hw.vary]\n\"array.rows\" = [2, 4]\n\"dram.bytes_per_cycle\" = [0.5, 2.0]\n",
    )
    .unwrap();
    let local = d.join("local.sqlite");
    sweep(&[
        "sweep",
        spec.to_str().unwrap(),
        "-o",
        local.to_str().unwrap(),
    ]);
    let jobs = d.join("jobs");
    let o = Command::new(env!("CARGO_BIN_EXE_etch"))
        .args([
            "sweep",
            "slurm",
            spec.to_str().unwrap(),
            "-o",
            jobs.to_str().unwrap(),
            "--tasks",
            "3",
            "--time",
            "10:00",
            "--submit",
        ])
        .env("SLURM_CONF", &conf)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("submitted job array"), "{}", text(&o));
    let log = jobs.join("merge.log");
    let t = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("points added"))
        && t.elapsed() < Duration::from_secs(300)
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let merged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(merged.contains("8 points added"), "merge job: {merged:?}");
    assert_eq!(rows(&jobs.join("results.sqlite")), rows(&local));
    drop(slurm);
}
