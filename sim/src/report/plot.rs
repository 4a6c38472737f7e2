//! Plots with plotters, as PNG and SVG: latency per layer (compute and stall), the energy
//! breakdown by component, and a roofline with each array layer placed on it. The font is
//! embedded (DejaVu Sans, `assets/`), so no system fonts are needed.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::cycle::SimResult;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Errors while drawing or writing a plot.
#[derive(Debug, thiserror::Error)]
#[error("cannot write plot `{path}`: {message}")]
pub struct PlotError {
    pub path: String,
    pub message: String,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The roofline's parameters: peak ops/s and DRAM bytes/s.
pub struct Roof {
    pub peak_gops: f64,
    pub bandwidth_gbs: f64,
}

/// Writes latency.{png,svg}, energy.{png,svg} and roofline.{png,svg} into `dir`; returns the
/// files written.
pub fn write_all(r: &SimResult, roof: &Roof, dir: &Path) -> Result<Vec<String>, PlotError> {
    register_font();
    std::fs::create_dir_all(dir).map_err(|e| PlotError {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut written = Vec::new();
    type Draw =
        fn(&SimResult, &Roof) -> Box<dyn Fn(DrawingArea<BitMapBackend, Shift>) -> DrawResult>;
    let _unused: Option<Draw> = None;
    for name in ["latency", "energy", "roofline"] {
        for ext in ["png", "svg"] {
            let path = dir.join(format!("{name}.{ext}"));
            let p = path.display().to_string();
            let res = if ext == "png" {
                let root = BitMapBackend::new(&path, (1200, 700)).into_drawing_area();
                draw(name, r, roof, root)
            } else {
                let root = SVGBackend::new(&path, (1200, 700)).into_drawing_area();
                draw(name, r, roof, root)
            };
            res.map_err(|e| PlotError {
                path: p.clone(),
                message: e.to_string(),
            })?;
            written.push(p);
        }
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    name: &str,
    r: &SimResult,
    roof: &Roof,
    root: DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    match name {
        "latency" => latency(r, &root)?,
        "energy" => energy(r, &root)?,
        _ => roofline(r, roof, &root)?,
    }
    root.present()?;
    Ok(())
}

fn latency<DB: DrawingBackend>(r: &SimResult, root: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let us = |c: u64| c as f64 / r.clock_mhz;
    // layers that take time, with their index in the report (JSON `layers[i]`, CSV data row i + 1)
    let (index, layers): (Vec<usize>, Vec<_>) = r
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.cycles > 0)
        .unzip();
    let n = layers.len().max(1);
    let ymax = layers
        .iter()
        .map(|l| us(l.cycles))
        .fold(0.0, f64::max)
        .max(1e-6)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Latency per layer: {} ({:.3} ms in all)",
                r.accelerator,
                r.latency_s() * 1e3
            ),
            ("sans-serif", 26),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("layer i, in execution order (JSON layers[i], CSV data row i + 1; layers that take no time left out)")
        .y_desc("latency (µs)")
        // every bar labelled while they fit (about 45 across the width), then evenly spaced ones
        .x_labels(n.min(45))
        .y_label_formatter(&|y| sig(*y))
        .x_label_formatter(&|x| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < index.len() {
                format!("{}", index[k as usize])
            } else {
                String::new()
            }
        })
        .label_style(("sans-serif", if n > 30 { 13 } else { 16 }))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    let compute = RGBColor(46, 110, 180);
    let stall = RGBColor(220, 90, 60);
    chart
        .draw_series(layers.iter().enumerate().map(|(k, l)| {
            let x = k as f64;
            Rectangle::new(
                [(x - 0.4, 0.0), (x + 0.4, us(l.compute_cycles))],
                compute.filled(),
            )
        }))?
        .label("compute (GEMM tiles, vector operations)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], compute.filled()));
    chart
        .draw_series(layers.iter().enumerate().map(|(k, l)| {
            let x = k as f64;
            Rectangle::new(
                [(x - 0.4, us(l.compute_cycles)), (x + 0.4, us(l.cycles))],
                stall.filled(),
            )
        }))?
        .label("stall (waiting for DRAM, a buffer slot or the previous layer)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], stall.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    Ok(())
}

fn energy<DB: DrawingBackend>(r: &SimResult, root: &DrawingArea<DB, Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let e = r.energy();
    let parts = e.parts();
    let total = e.total().max(1e-12);
    let (scale, unit) = energy_unit(parts.iter().map(|p| p.1).fold(0.0, f64::max));
    let uj = |pj: f64| pj / scale;
    let ymax = parts.iter().map(|p| uj(p.1)).fold(0.0, f64::max).max(1e-9) * 1.2;
    let labels = [
        "MAC",
        "register file",
        "PE-to-PE",
        "SRAM buffers",
        "DRAM",
        "vector unit",
    ];
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Energy per inference by component: {} in all ({})",
                super::energy_text(total).replace("uJ", "µJ"),
                r.accelerator
            ),
            ("sans-serif", 26),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5f64..5.5, 0f64..ymax)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(6)
        .x_label_formatter(&|x| {
            let k = x.round();
            if (x - k).abs() < 1e-6 && (0.0..6.0).contains(&k) {
                labels[k as usize].to_string()
            } else {
                String::new()
            }
        })
        .x_desc("component")
        .y_desc(format!("energy ({unit})"))
        .y_label_formatter(&|y| sig(*y))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    let colors = [
        RGBColor(46, 110, 180),
        RGBColor(120, 170, 60),
        RGBColor(240, 170, 40),
        RGBColor(150, 90, 180),
        RGBColor(220, 90, 60),
        RGBColor(90, 90, 90),
    ];
    for (k, ((_, v), col)) in parts.iter().zip(colors).enumerate() {
        let x = k as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.35, 0.0), (x + 0.35, uj(*v))],
                col.filled(),
            )))?
            .label(format!("{}: {:.1}%", labels[k], v / total * 100.0))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], col.filled()));
        chart.draw_series(std::iter::once(Text::new(
            format!("{:.1}%", v / total * 100.0),
            (x - 0.15, uj(*v) + ymax * 0.02),
            ("sans-serif", 16),
        )))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    Ok(())
}

fn roofline<DB: DrawingBackend>(
    r: &SimResult,
    roof: &Roof,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    // ops = 2 per MAC; intensity = ops per DRAM byte; performance in GOP/s
    // a layer with no DRAM traffic (all its data on chip) has no place on the intensity axis
    let array: Vec<_> = r
        .layers
        .iter()
        .filter(|l| l.macs_performed > 0 && l.cycles > 0)
        .collect();
    let on_chip = array.iter().filter(|l| l.dram_bytes() == 0).count();
    let pts: Vec<(f64, f64)> = array
        .iter()
        .filter(|l| l.dram_bytes() > 0)
        .map(|l| {
            let ops = 2.0 * l.macs_performed as f64;
            let secs = l.cycles as f64 / (r.clock_mhz * 1e6);
            (ops / l.dram_bytes() as f64, ops / secs / 1e9)
        })
        .collect();
    let ridge = roof.peak_gops / roof.bandwidth_gbs;
    let xmin = pts.iter().map(|p| p.0).fold(ridge, f64::min).max(1e-3) / 4.0;
    let xmax = pts.iter().map(|p| p.0).fold(ridge, f64::max) * 4.0;
    let ymax = roof.peak_gops * 2.0;
    let ymin = pts
        .iter()
        .map(|p| p.1)
        .fold(roof.bandwidth_gbs * xmin, f64::min)
        .max(1e-6)
        / 2.0;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "Roofline: {} (peak {:.1} GOP/s, DRAM {:.2} GB/s)",
                r.accelerator, roof.peak_gops, roof.bandwidth_gbs
            ),
            ("sans-serif", 26),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(90)
        .build_cartesian_2d((xmin..xmax).log_scale(), (ymin..ymax).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("arithmetic intensity (ops per DRAM byte, 2 ops per MAC)")
        .y_desc("performance (GOP/s)")
        .x_label_formatter(&|x| sig(*x))
        .y_label_formatter(&|y| sig(*y))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()?;
    let roof_pts: Vec<(f64, f64)> = (0..=200)
        .map(|k| {
            let x = xmin * (xmax / xmin).powf(k as f64 / 200.0);
            (x, (roof.bandwidth_gbs * x).min(roof.peak_gops))
        })
        .collect();
    chart
        .draw_series(LineSeries::new(roof_pts, BLACK.stroke_width(3)))?
        .label("roof: min(peak compute, DRAM bandwidth x intensity)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(3)));
    let col = RGBColor(220, 90, 60);
    chart
        .draw_series(pts.iter().map(|&p| Circle::new(p, 5, col.filled())))?
        .label(if on_chip > 0 {
            format!("array layers (simulated); {on_chip} with no DRAM traffic not shown")
        } else {
            "array layers (simulated)".to_string()
        })
        .legend(move |(x, y)| Circle::new((x + 10, y), 5, col.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 18))
        .draw()?;
    Ok(())
}

/// A unit for energies up to `max_pj`: (pJ per unit, name).
fn energy_unit(max_pj: f64) -> (f64, &'static str) {
    if max_pj >= 1e9 {
        (1e9, "mJ")
    } else if max_pj >= 1e6 {
        (1e6, "µJ")
    } else if max_pj >= 1e3 {
        (1e3, "nJ")
    } else {
        (1.0, "pJ")
    }
}

/// A tick label with at most three significant digits and no trailing zeros.
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Writes an SVG scatter of `points` over two objectives (`x`, `y`: their names), the ones on
/// the Pareto front in red and joined in x order, the others grey: `etch sweep pareto --plot`.
pub fn pareto_svg(
    path: &Path,
    x: &str,
    y: &str,
    points: &[(f64, f64)],
    front: &[(f64, f64)],
) -> Result<(), PlotError> {
    register_font();
    let fail = |e: Box<dyn std::error::Error>| PlotError {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let draw = || -> DrawResult {
        let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
        root.fill(&WHITE)?;
        let finite = |v: &f64| v.is_finite();
        let span = |get: fn(&(f64, f64)) -> f64| {
            let vs: Vec<f64> = points.iter().map(get).filter(finite).collect();
            let (lo, hi) = vs
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            if lo.is_finite() {
                let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(1e-12);
                (lo - pad)..(hi + pad)
            } else {
                0.0..1.0
            }
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("Pareto front: {} of {} points", front.len(), points.len()),
                ("sans-serif", 26),
            )
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(90)
            .build_cartesian_2d(span(|p| p.0), span(|p| p.1))?;
        chart
            .configure_mesh()
            .x_desc(x)
            .y_desc(y)
            .x_label_formatter(&|v| sig(*v))
            .y_label_formatter(&|v| sig(*v))
            .draw()?;
        chart.draw_series(
            points
                .iter()
                .map(|&(a, b)| Circle::new((a, b), 3, RGBColor(150, 150, 150).filled())),
        )?;
        let mut line: Vec<(f64, f64)> = front.to_vec();
        line.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.total_cmp(&q.1)));
        chart.draw_series(LineSeries::new(line.iter().copied(), &RED))?;
        chart.draw_series(
            line.iter()
                .map(|&(a, b)| Circle::new((a, b), 5, RED.filled())),
        )?;
        root.present()?;
        Ok(())
    };
    draw().map_err(fail)
}
