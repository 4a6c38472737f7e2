// Shared by every etch kernel (prepended to each shader). Binding 0 holds the kernel's parameter
// words: counts, extents and strides as u32, signed values as i32 bits, floats as f32 bits.
@group(0) @binding(0) var<storage, read> p: array<u32>;

// Invocations per workgroup of the one-dimensional kernels.
const WG: u32 = 256u;

fn pf(i: u32) -> f32 {
    return bitcast<f32>(p[i]);
}

fn pi(i: u32) -> i32 {
    return bitcast<i32>(p[i]);
}
