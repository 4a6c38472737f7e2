// A quantized unary activation as a table of codes (the CPU's IntTable): y = table[x − qmin].
// Codes travel in f32 (exact). p: [count, qmin as i32 bits]
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    y[e] = table[u32(i32(x[e]) - pi(1u))];
}
