// A reduction over some axes (ReduceMean/Max/Min/Sum/L2, GlobalAveragePool, GlobalMaxPool), one
// invocation per output value, accumulating in row-major order over the reduced axes (as
// etch_ir::op::Reduction::step does on the CPU).
// p: [outputs, mode (0 mean, 1 max, 2 min, 3 sum, 4 L2), rank, reduced axes, reduced count, 0, 0, 0,
//     per axis k at 8 + 2k: output extent (1 on a reduced axis), input stride,
//     per reduced axis j at 24 + 2j: extent, input stride]
fn item(e: u32) {
    var rem = e;
    var base = 0u;
    for (var k = i32(p[2]) - 1; k >= 0; k--) {
        let at = 8u + 2u * u32(k);
        base += (rem % p[at]) * p[at + 1u];
        rem = rem / p[at];
    }
    let mode = p[1];
    var acc = 0.0;
    if (mode == 1u) {
        acc = bitcast<f32>(0xff800000u);
    } else if (mode == 2u) {
        acc = bitcast<f32>(0x7f800000u);
    }
    let nred = p[3];
    for (var r = 0u; r < p[4]; r++) {
        var q = r;
        var off = base;
        for (var j = i32(nred) - 1; j >= 0; j--) {
            let at = 24u + 2u * u32(j);
            off += (q % p[at]) * p[at + 1u];
            q = q / p[at];
        }
        let v = x[off];
        if (mode == 1u) {
            acc = max(acc, v);
        } else if (mode == 2u) {
            acc = min(acc, v);
        } else if (mode == 4u) {
            acc += v * v;
        } else {
            acc += v;
        }
    }
    if (mode == 0u) {
        acc = acc / f32(max(p[4], 1u));
    } else if (mode == 4u) {
        acc = sqrt(acc);
    }
    y[e] = acc;
}
