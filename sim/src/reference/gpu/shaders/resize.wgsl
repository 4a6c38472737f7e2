// Resize by the taps the host computed per axis (the CPU executor's tables, cpu/resize.rs):
// t holds, per axis from word p[10 + 3k] on, per output coordinate: [i0, w0 bits, i1, w1 bits].
// Each output element sums its taps' products in the CPU's order (axis 0's tap outermost, the
// weight multiplied axis by axis from axis 0).
// p: [count, rank, taps per axis (1 nearest, 2 linear), 0, 0, 0, 0, 0, 0, 0,
//     per axis k at 10 + 3k: output extent, input stride, table offset]
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> t: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    let rank = p[1];
    let taps = p[2];
    // this element's row of each axis's table
    var row: array<u32, 8>;
    var rem = e;
    for (var k = i32(rank) - 1; k >= 0; k--) {
        let at = 10u + 3u * u32(k);
        row[k] = p[at + 2u] + 4u * (rem % p[at]);
        rem = rem / p[at];
    }
    var combos = 1u;
    for (var k = 0u; k < rank; k++) {
        combos *= taps;
    }
    var s = 0.0;
    for (var c = 0u; c < combos; c++) {
        var digit: array<u32, 8>;
        var q = c;
        for (var k = i32(rank) - 1; k >= 0; k--) {
            digit[k] = q % taps;
            q = q / taps;
        }
        var w = 1.0;
        var off = 0u;
        for (var k = 0u; k < rank; k++) {
            let at = row[k] + 2u * digit[k];
            off += t[at] * p[10u + 3u * k + 1u];
            w = w * bitcast<f32>(t[at + 1u]);
        }
        s = s + w * x[off];
    }
    y[e] = s;
}
