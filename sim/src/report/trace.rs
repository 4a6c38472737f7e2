//! The timeline in the Chrome trace-event format (open it in Perfetto or chrome://tracing): one
//! track per unit of the load / compute / store machine, one for the DRAM channel the load and
//! store units share (and one for the global buffer's), and one with a bar per layer; one complete ("X") event per interval, times
//! in microseconds at the accelerator's clock.

use serde_json::{json, Value};

use crate::cycle::SimResult;

/// The trace document.
pub fn chrome_trace(r: &SimResult) -> Value {
    let us = |cycles: u64| cycles as f64 / r.clock_mhz;
    // the three units, and the DRAM channel that the load and store units share
    let tracks = [
        "load unit",
        "compute unit",
        "store unit",
        "dram channel",
        "global buffer channel",
    ];
    let mut events: Vec<Value> =
        vec![json!({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": r.accelerator}})];
    for (k, t) in tracks.iter().enumerate() {
        events.push(
            json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": k + 1, "args": {"name": t}}),
        );
    }
    // one bar per layer on its own track, so the layers are visible at any zoom
    let layers_tid = tracks.len() + 1;
    events.push(
        json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": layers_tid, "args": {"name": "layers"}}),
    );
    for l in &r.layers {
        if l.cycles > 0 {
            events.push(json!({"name": l.name, "cat": l.unit, "ph": "X", "pid": 1, "tid": layers_tid, "ts": us(l.start), "dur": us(l.cycles),
                "args": {"cycles": l.cycles, "stall_cycles": l.stall_cycles, "dram_bytes": l.dram_bytes(), "energy_pj": l.energy.total()}}));
        }
    }
    let tid = |name: &str| tracks.iter().position(|t| *t == name).unwrap_or(0) + 1;
    for e in r.events.iter().filter(|e| e.end > e.start) {
        let layer = r.layers.get(e.layer).map_or("", |l| l.name.as_str());
        let channel = match e.phase.resource() {
            "dram" => Some(tid("dram channel")),
            "global buffer" => Some(tid("global buffer channel")),
            _ => None,
        };
        let places = [Some(tid(e.phase.unit())), channel];
        for t in places.into_iter().flatten() {
            events.push(json!({
                "name": e.phase.name(),
                "cat": layer,
                "ph": "X",
                "pid": 1,
                "tid": t,
                "ts": us(e.start),
                "dur": us(e.end - e.start),
                "args": {"layer": layer, "step": e.step, "start_cycle": e.start, "end_cycle": e.end, "bytes": e.bytes},
            }));
        }
    }
    json!({"traceEvents": events, "displayTimeUnit": "ns", "otherData": {"clock_mhz": r.clock_mhz, "total_cycles": r.total_cycles}})
}
