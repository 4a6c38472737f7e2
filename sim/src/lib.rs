//! etch's executors and simulators. `reference` runs a model exactly (the golden model every other
//! path is checked against).

pub mod cycle;
pub mod map;
pub mod program;
pub mod reference;
pub mod report;
pub mod scalesim;
