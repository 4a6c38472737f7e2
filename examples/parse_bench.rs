//! Parse-speed benchmark of etch's ONNX text front end (and its printer).
//!
//! `cargo run --release --example parse_bench -- FILE [REPEATS]`
//!
//! Reads FILE into memory once, then times `etch_ir::parse_model` REPEATS times (default 5) and
//! `etch_ir::print::print_model` on the parsed model as many times. Prints the best and median time
//! and the throughput in MB/s (MB = 10^6 bytes of the input text), plus one machine-readable line
//! `parse_bench etch_parse_best_s=… etch_parse_median_s=… bytes=…` for scripts.

use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: parse_bench FILE [REPEATS]");
        return ExitCode::from(2);
    };
    let repeats: usize = match args.get(1).map(|s| s.parse()) {
        None => 5,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("error: REPEATS must be a positive integer");
            return ExitCode::from(2);
        }
    };
    let src = match std::fs::read(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read `{path}`: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mb = src.len() as f64 / 1e6;
    println!(
        "file: {path} ({mb:.1} MB), {repeats} repeats, {} threads available",
        available_threads()
    );

    let mut parse_times = Vec::with_capacity(repeats);
    let mut model = None;
    for _ in 0..repeats {
        // drop the previous model outside the timed region
        drop(model.take());
        let t0 = Instant::now();
        let parsed = etch_ir::parse_model(&src);
        let dt = t0.elapsed().as_secs_f64();
        match parsed {
            Ok(m) => model = Some(m),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
        parse_times.push(dt);
    }
    let Some(model) = model else {
        return ExitCode::FAILURE;
    };

    let mut print_times = Vec::with_capacity(repeats);
    let mut printed_len = 0;
    for _ in 0..repeats {
        let t0 = Instant::now();
        let text = etch_ir::print::print_model(&model);
        print_times.push(t0.elapsed().as_secs_f64());
        printed_len = text.len();
        drop(text);
    }

    let (pb, pm) = best_median(&mut parse_times);
    let (wb, wm) = best_median(&mut print_times);
    println!(
        "etch parse_model: best {:8.3} s ({:7.1} MB/s), median {:8.3} s ({:7.1} MB/s)",
        pb,
        mb / pb,
        pm,
        mb / pm
    );
    println!(
        "etch print_model: best {:8.3} s ({:7.1} MB/s), median {:8.3} s ({:7.1} MB/s)  [{:.1} MB written{}]",
        wb,
        printed_len as f64 / 1e6 / wb,
        wm,
        printed_len as f64 / 1e6 / wm,
        printed_len as f64 / 1e6,
        if printed_len == src.len() { ", same length as the input" } else { "" }
    );
    println!(
        "parse_bench etch_parse_best_s={pb:.6} etch_parse_median_s={pm:.6} etch_print_best_s={wb:.6} etch_print_median_s={wm:.6} bytes={}",
        src.len()
    );
    ExitCode::SUCCESS
}

/// Best and median of a list of times (sorts it).
fn best_median(t: &mut [f64]) -> (f64, f64) {
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let median = if n.is_multiple_of(2) {
        (t[n / 2 - 1] + t[n / 2]) / 2.0
    } else {
        t[n / 2]
    };
    (t[0], median)
}

fn available_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
