//! Where each activation lives between the layer that makes it and the layers that read it: in
//! the description's global buffer when it fits there for its whole life, else in DRAM. Weights
//! are always in DRAM (the compiler places them after the activations).
//!
//! A tensor may stay on chip when a layer (on the array or the vector unit) makes it, it is not a
//! graph output (the host reads those from DRAM), and every layer that reads it reads nothing
//! else (a layer's activation loads come from one space; residual Adds, Concats and two-operand
//! MatMuls read from DRAM). Layout-only and fused layers alias their input; a Concat whose inputs
//! are contiguous runs of its output (`Layer::gathers`) has each input made where its run is, in
//! DRAM, so it moves nothing. Tensors are placed in
//! program order by first fit, each freed after the last layer that reads it: layers run one
//! after another, so a later layer's stores never overwrite what an earlier one still reads.

use std::collections::{HashMap, HashSet};

use crate::isa::Space;
use crate::lower::{Layer, Work};

/// A tensor's space and its address there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub space: Space,
    pub addr: u64,
}

/// Every activation's place, and the DRAM bytes the activations take (weights go after them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    places: HashMap<String, Place>,
    /// The Concats (by output) whose inputs are laid out in their output: they move nothing.
    pub gathered: HashSet<String>,
    pub dram_end: u64,
    /// The most global-buffer bytes live at once.
    pub global_peak: u64,
}

impl Placement {
    /// Where a tensor (by its value name) lives.
    pub fn of(&self, name: &str) -> Option<Place> {
        self.places.get(name).copied()
    }
}

/// Rounds a size up to the 64-byte alignment every tensor starts at.
pub fn aligned(bytes: u64) -> u64 {
    bytes.div_ceil(64) * 64
}

/// Places the activations of `layers` (program order). `output_bytes(i)` is layer `i`'s output
/// size, `input_bytes(i)` the size of a graph input it reads; `outputs` are the graph's outputs;
/// `global_bytes` the global buffer's size (0: none).
pub fn place<'a>(
    layers: &'a [Layer],
    output_bytes: impl Fn(usize) -> u64,
    input_bytes: impl Fn(usize) -> u64,
    outputs: &HashSet<&'a str>,
    global_bytes: u64,
) -> Placement {
    let aliases = |w: &Work| matches!(w, Work::Free | Work::Fused);
    // the tensor each value is (layout-only and fused layers alias their input)
    let mut root: HashMap<&str, &str> = HashMap::new();
    for l in layers {
        if aliases(&l.work) {
            if let Some(i) = l.inputs.first() {
                let r = root.get(i.as_str()).copied().unwrap_or(i.as_str());
                root.insert(l.output.as_str(), r);
            }
        }
    }
    fn root_in<'a>(root: &HashMap<&'a str, &'a str>, v: &'a str) -> &'a str {
        root.get(v).copied().unwrap_or(v)
    }
    let root_of = |v: &'a str| root_in(&root, v);
    // each tensor's last reader, and whether any reader reads something else too
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    let mut shared: HashSet<&str> = HashSet::new();
    for (li, l) in layers.iter().enumerate() {
        if aliases(&l.work) {
            continue;
        }
        for i in &l.inputs {
            let r = root_of(i);
            last_use.insert(r, li);
            if l.inputs.len() != 1 {
                shared.insert(r);
            }
        }
    }
    let pinned: HashSet<&str> = outputs.iter().map(|o| root_of(o)).collect();
    // concatenations laid out in place: each input tensor (made by a layer, read once by the
    // concatenation, in no other) goes to its run of the output, in DRAM
    let made_by: HashMap<&str, usize> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| !aliases(&l.work))
        .map(|(i, l)| (l.output.as_str(), i))
        .collect();
    let mut slice_of: HashMap<&str, (&str, u64)> = HashMap::new();
    let mut gathered: HashSet<String> = HashSet::new();
    for l in layers.iter().filter(|l| l.gathers) {
        let members: Vec<&str> = l.inputs.iter().map(|i| root_of(i)).collect();
        let distinct: HashSet<&str> = members.iter().copied().collect();
        let ok = distinct.len() == members.len()
            && members
                .iter()
                .all(|m| made_by.contains_key(m) && !slice_of.contains_key(m));
        if !ok {
            continue;
        }
        let mut offset = 0;
        for m in members {
            slice_of.insert(m, (l.output.as_str(), offset));
            offset += output_bytes(made_by[m]);
        }
        gathered.insert(l.output.clone());
    }
    // each gathering concatenation's region in DRAM, allocated when its first input is made
    let mut regions: HashMap<&str, u64> = HashMap::new();
    let mut p = Placement {
        gathered,
        ..Placement::default()
    };
    // tensors in the global buffer: (start, end, last reader), by start
    let mut live: Vec<(u64, u64, usize)> = Vec::new();
    let dram = |p: &mut Placement, bytes: u64| {
        let addr = p.dram_end;
        p.dram_end += aligned(bytes);
        Place {
            space: Space::Dram,
            addr,
        }
    };
    for (li, l) in layers.iter().enumerate() {
        live.retain(|&(_, _, last)| last >= li);
        for i in &l.inputs {
            if p.of(root_of(i)).is_none() {
                let at = dram(&mut p, input_bytes(li));
                p.places.insert(root_of(i).to_string(), at);
            }
        }
        if aliases(&l.work) {
            if let Some(at) = l.inputs.first().and_then(|i| p.of(root_of(i))) {
                p.places.insert(l.output.clone(), at);
                continue;
            }
        }
        let out = l.output.as_str();
        if let Some(&(concat, offset)) = slice_of.get(out) {
            let base = match regions.get(concat) {
                Some(&a) => a,
                None => {
                    let total: u64 = layers.iter().find(|c| c.output == concat).map_or(0, |c| {
                        c.inputs
                            .iter()
                            .map(|i| output_bytes(made_by[root_of(i)]))
                            .sum()
                    });
                    let a = dram(&mut p, total).addr;
                    regions.insert(concat, a);
                    a
                }
            };
            p.places.insert(
                out.to_string(),
                Place {
                    space: Space::Dram,
                    addr: base + offset,
                },
            );
            continue;
        }
        let bytes = aligned(output_bytes(li).max(1));
        let keep = global_bytes > 0
            && !pinned.contains(out)
            && !shared.contains(out)
            && last_use.get(out).is_some_and(|&last| last > li);
        // first fit among the live tensors
        let mut spot = None;
        if keep {
            let mut at = 0;
            for &(s, e, _) in &live {
                if s >= at + bytes {
                    break;
                }
                at = at.max(e);
            }
            if at + bytes <= global_bytes {
                spot = Some(at);
            }
        }
        let place = match spot {
            Some(addr) => {
                let k = live.partition_point(|&(s, _, _)| s < addr);
                live.insert(k, (addr, addr + bytes, last_use[out]));
                let used: u64 = live.iter().map(|&(s, e, _)| e - s).sum();
                p.global_peak = p.global_peak.max(used);
                Place {
                    space: Space::Global,
                    addr,
                }
            }
            None => dram(&mut p, bytes),
        };
        p.places.insert(out.to_string(), place);
    }
    p
}
