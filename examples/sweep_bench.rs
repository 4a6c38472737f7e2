//! How many sweep points a minute this machine simulates, every core busy, the way `etch sweep`
//! runs them (each model and pass spec prepared once, each point compiled and simulated), each
//! spec run whole into a fresh results file:
//! - the README's 108-point ResNet-18 spec (`examples/sweep/resnet18.toml`: three compressions
//!   × 36 descriptions), where preparing the three compressed models is a large part of the run;
//! - `examples/sweep/resnet18_large.toml`, the same over 12 times the descriptions (1,296
//!   points), the rate of a sweep of more than a few seconds.
//!
//! Usage: `cargo run --release --example sweep_bench [REPEATS]` (default 3; the best run printed).

use std::time::Instant;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The best of `reps` whole runs of the spec at `path`: (points, seconds).
fn best_run(path: &str, reps: usize, dir: &std::path::Path) -> (u64, f64) {
    let spec = etch_sweep::Spec::parse(path, &std::fs::read_to_string(path).expect("the spec"))
        .expect("a valid spec");
    let mut best = f64::INFINITY;
    let mut points = 0;
    for r in 0..reps.max(1) {
        let out = dir.join(format!("run{r}.sqlite"));
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        let s = etch_sweep::run(
            &spec,
            out.to_str().expect("a UTF-8 path"),
            etch_sweep::Shard::ALL,
            0,
            &|_, _| {},
        )
        .expect("the sweep runs");
        best = best.min(t.elapsed().as_secs_f64());
        points = s.ran;
        assert_eq!(s.failed, 0);
    }
    (points, best)
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    std::env::set_current_dir(ROOT).expect("the repository root");
    let dir = std::env::temp_dir().join(format!("etch-sweep-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    for path in [
        "examples/sweep/resnet18.toml",
        "examples/sweep/resnet18_large.toml",
    ] {
        let (points, secs) = best_run(path, reps, &dir);
        println!(
            "{path}: {points} ResNet-18 points in {secs:.2} s on {} threads: {:.0} points a minute (best of {reps})",
            rayon::current_num_threads(),
            points as f64 / secs * 60.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
