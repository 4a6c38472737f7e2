//! Does a description fit a target? Resources, clock and DRAM bandwidth, with the overrun stated.

use etch_targets::{Kind, Target};
use serde::Serialize;

use crate::area::{asic_area, fpga_resources};
use crate::Accelerator;

/// One resource: how much the description takes and how much the target has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    pub resource: String,
    pub used: f64,
    pub available: f64,
}

impl Usage {
    pub fn over(&self) -> bool {
        self.used > self.available * (1.0 + 1e-9)
    }
}

/// What a description takes of a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FitReport {
    pub target: String,
    pub usage: Vec<Usage>,
}

/// A description that does not fit, with every overrun.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{accelerator}` does not fit target `{target}`: {}", .over.iter().map(describe).collect::<Vec<_>>().join("; "))]
pub struct FitError {
    pub accelerator: String,
    pub target: String,
    pub over: Vec<Usage>,
}

fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let s = format!("{}", v as i64);
        let mut out = String::new();
        for (k, ch) in s.chars().enumerate() {
            if k > 0 && (s.len() - k) % 3 == 0 && ch != '-' {
                out.push(',');
            }
            out.push(ch);
        }
        out
    } else {
        format!("{v:.2}")
    }
}

fn describe(u: &Usage) -> String {
    let over = u.used - u.available;
    let pct = if u.available > 0.0 {
        format!(", {:.0}% over", over / u.available * 100.0)
    } else {
        String::new()
    };
    format!(
        "it needs {} {} but the target has {} ({} too many{pct})",
        fmt_num(u.used),
        u.resource,
        fmt_num(u.available),
        fmt_num(over)
    )
}

/// Checks a description against a target.
pub fn check(acc: &Accelerator, target: &Target) -> Result<FitReport, FitError> {
    let mut usage = vec![Usage {
        resource: "MHz of clock".into(),
        used: acc.clock_mhz,
        available: target.clock.max_mhz,
    }];
    let dram_bps = acc.dram.bytes_per_cycle * acc.clock_mhz * 1e6;
    usage.push(Usage {
        resource: format!("GB/s of off-chip bandwidth ({})", target.dram.kind),
        used: dram_bps / 1e9,
        available: target.dram.bytes_per_s / 1e9,
    });
    match &target.kind {
        Kind::Fpga(f) => {
            let r = fpga_resources(acc, f);
            usage.push(Usage {
                resource: f.dsp.name.clone(),
                used: r.dsps as f64,
                available: f.dsp.count as f64,
            });
            usage.push(Usage {
                resource: "LUTs".into(),
                used: r.luts as f64,
                available: f.luts as f64,
            });
            usage.push(Usage {
                resource: "flip-flops".into(),
                used: r.ffs as f64,
                available: f.ffs as f64,
            });
            for ((name, n), m) in r.memories.iter().zip(&f.memories) {
                usage.push(Usage {
                    resource: name.clone(),
                    used: *n as f64,
                    available: m.count as f64,
                });
            }
            if let Some((need, have)) = r.memory_shortfall {
                usage.push(Usage {
                    resource: "KiB of block memory (capacity and port widths of the buffer banks)"
                        .into(),
                    used: need.ceil(),
                    available: have,
                });
            }
        }
        Kind::Asic(a) => {
            let area = asic_area(acc, a.node_nm);
            usage.push(Usage {
                resource: "mm² of area".into(),
                used: (area.total_mm2 * 100.0).round() / 100.0,
                available: a.area_mm2,
            });
        }
    }
    let over: Vec<Usage> = usage.iter().filter(|u| u.over()).cloned().collect();
    if over.is_empty() {
        Ok(FitReport {
            target: target.name.clone(),
            usage,
        })
    } else {
        Err(FitError {
            accelerator: acc.name.clone(),
            target: target.name.clone(),
            over,
        })
    }
}
