//! etch's code generators: they turn a compressed model and an accelerator description into a
//! design a user can build (Verilog, HLS C++), with testbenches that check it bit for bit against
//! the CPU executor's golden outputs and, for the RTL, cycle for cycle against `etch_sim::cycle`.

pub mod program;
