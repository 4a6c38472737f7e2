// Mean or max over some axes (ReduceMean, GlobalAveragePool, GlobalMaxPool), one invocation per
// output value, summing in row-major order over the reduced axes.
// p: [outputs, mode (0 mean, 1 max), rank, reduced axes, reduced count, 0, 0, 0,
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
    let is_max = p[1] == 1u;
    var acc = select(0.0, bitcast<f32>(0xff800000u), is_max);
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
        if (is_max) {
            acc = max(acc, v);
        } else {
            acc += v;
        }
    }
    if (!is_max) {
        acc = acc / f32(max(p[4], 1u));
    }
    y[e] = acc;
}
