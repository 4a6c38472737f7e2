//! Batch-1 latency of the CPU executor on a full-weight model (scripts/bench_cpu.sh runs it beside onnxruntime).
//!
//! `cargo run --release --example bench_cpu -- MODEL [--runs N] [--input X.npy] [--output Y.npy] [--max-bytes B]`
//!
//! MODEL is ONNX (binary, or text with every weight given: `etch convert examples/models/resnet18.onnx.txt
//! -o FULL_TEXT --seed 1`); a QDQ model runs on the integer kernels). The model is parsed, verified and compiled to a plan once; then one
//! warm-up run and N timed runs (default 20) of `Plan::run` on the same input: X.npy (float32, the
//! model's input shape) or, without it, a fixed pseudo-random input. Threads: rayon's global pool,
//! so `RAYON_NUM_THREADS=1` gives a single-threaded figure. Prints the median and the minimum
//! wall-clock time in ms and the process CPU time per run (all threads; Linux only), then one
//! machine-readable line `bench_cpu median_ms=… min_ms=… cpu_ms_per_run=… runs=… threads=…
//! times_ms=t1,t2,…` for scripts; with `--output`, writes the last run's first output to Y.npy.

use std::process::ExitCode;
use std::time::Instant;

use etch_sim::pipeline::{Pipeline, Source};
use etch_sim::reference::cpu::Plan;
use etch_sim::reference::{Array, Value};

struct Args {
    model: String,
    runs: usize,
    input: Option<String>,
    output: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut model, mut runs, mut input, mut output) = (None, 20, None, None);
    while let Some(a) = args.next() {
        let mut value = |what: &str| args.next().ok_or(format!("{what} needs a value"));
        match a.as_str() {
            "--runs" => {
                runs = value("--runs")?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--runs must be a positive integer")?
            }
            "--input" => input = Some(value("--input")?),
            "--output" => output = Some(value("--output")?),
            // as etch's own --max-bytes: every memory and file-size limit
            "--max-bytes" => etch_ir::limits::set_max_bytes(Some(
                value("--max-bytes")?
                    .parse()
                    .map_err(|_| "--max-bytes must be a number of bytes")?,
            )),
            _ if a.starts_with('-') => return Err(format!("unknown option `{a}`")),
            _ if model.is_none() => model = Some(a),
            _ => return Err(format!("unexpected argument `{a}`")),
        }
    }
    let model = model.ok_or("the model is missing")?;
    Ok(Args {
        model,
        runs,
        input,
        output,
    })
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!(
                "usage: bench_cpu MODEL [--runs N] [--input X.npy] [--output Y.npy] [--max-bytes B]"
            );
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let src = Source::read(&args.model).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let m = Pipeline::default()
        .run(&src, &mut Vec::new())
        .map_err(|e| format!("{}: {e}", args.model))?;
    let plan = Plan::new(&m.model, &m.info).map_err(|e| format!("{}: {e}", args.model))?;
    let load_s = t0.elapsed().as_secs_f64();
    drop((m, src));

    let first = plan
        .inputs()
        .next()
        .ok_or("the model takes no runtime input")?;
    let name = first.name.clone();
    let x = match &args.input {
        Some(path) => read_npy(path)?,
        None => {
            // batch 1 where the batch dim is symbolic
            let shape: Vec<usize> = first
                .dims
                .iter()
                .map(|d| d.known().unwrap_or(1) as usize)
                .collect();
            Array::new(shape.clone(), pseudo_random(shape.iter().product()))
        }
    };
    let input = vec![(name, Value::F32(x))];

    let threads = rayon_threads();
    println!(
        "model: {} (parsed, verified, planned in {load_s:.2} s)",
        args.model
    );
    println!(
        "{} timed runs after one warm-up, {threads} rayon threads",
        args.runs
    );
    let mut outputs = plan.run(input.clone()).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(args.runs);
    let cpu0 = process_cpu_ms();
    for _ in 0..args.runs {
        let given = input.clone();
        let t = Instant::now();
        outputs = plan.run(given).map_err(|e| e.to_string())?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = cpu0
        .zip(process_cpu_ms())
        .map(|(a, b)| (b - a) / args.runs as f64);
    let listed: Vec<String> = times.iter().map(|t| format!("{t:.4}")).collect();
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let (median, min) = (sorted[sorted.len() / 2], sorted[0]);
    let cpu_text = cpu.map_or("unknown".to_string(), |c| format!("{c:.2} ms"));
    println!(
        "etch CPU executor: median {median:.2} ms, min {min:.2} ms; CPU time {cpu_text} per run"
    );
    let cpu_field = cpu.map_or("nan".to_string(), |c| format!("{c:.4}"));
    println!("bench_cpu median_ms={median:.4} min_ms={min:.4} cpu_ms_per_run={cpu_field} runs={} threads={threads} times_ms={}", args.runs, listed.join(","));
    if let Some(path) = &args.output {
        let Value::F32(y) = &outputs[0].1 else {
            return Err("the first output is not float".into());
        };
        write_npy(path, y)?;
    }
    Ok(())
}

/// User + system CPU time of this process so far, all threads (from `/proc/self/stat`, in clock
/// ticks of 10 ms: good to about 1% over a few seconds of runs).
fn process_cpu_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the fields after the parenthesised command name; utime and stime are the 14th and 15th
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}

/// The size of rayon's global pool, as rayon picks it: `RAYON_NUM_THREADS`, else one per CPU.
fn rayon_threads() -> usize {
    let cpus = || std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(n) if n > 0 => n,
        _ => cpus(),
    }
}

/// Uniform values in [-1, 1) from a fixed xorshift sequence.
fn pseudo_random(n: usize) -> Vec<f32> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn read_npy(path: &str) -> Result<Array<f32>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let npy =
        npyz::NpyFile::new(&bytes[..]).map_err(|e| format!("`{path}` is not a .npy file: {e}"))?;
    if npy.order() == npyz::Order::Fortran || npy.dtype().descr() != "'<f4'" {
        return Err(format!("`{path}` must hold float32 values in C order"));
    }
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data = npy
        .into_vec::<f32>()
        .map_err(|e| format!("cannot read the values of `{path}`: {e}"))?;
    Ok(Array::new(shape, data))
}

fn write_npy(path: &str, y: &Array<f32>) -> Result<(), String> {
    use npyz::WriterBuilder;
    let shape: Vec<u64> = y.shape.iter().map(|&d| d as u64).collect();
    let file = std::fs::File::create(path).map_err(|e| format!("cannot create `{path}`: {e}"))?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(std::io::BufWriter::new(file))
        .begin_nd()
        .map_err(|e| e.to_string())?;
    w.extend(y.data.iter().copied())
        .map_err(|e| e.to_string())?;
    w.finish()
        .map_err(|e| format!("cannot write `{path}`: {e}"))
}
