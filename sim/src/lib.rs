//! etch's executors and simulators. `reference` runs a model exactly (the golden model every other
//! path is checked against).

pub mod cycle;
/// The lowering of a graph to layers moved to `etch_program::lower`; the analytical model reads it here.
pub use etch_program::lower as map;
pub mod pipeline;
pub mod program;
pub mod reference;
pub mod report;
pub mod scalesim;
