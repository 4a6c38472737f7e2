// Strided copy with padding, the one kernel behind Transpose, Slice, Split, Concat and Pad.
// For each index (i_k) of the copied shape: the destination is dst_off + sum(i_k * dst_stride_k);
// the source coordinate on axis k is c_k = start_k + i_k * step_k, read at src_off +
// sum(c_k * src_stride_k) when 0 <= c_k < extent_k, and otherwise, by mode: 0 the fill value,
// 1 the nearest edge, 2 the reflection (-c, or 2(extent-1) - c).
// p: [count, rank, mode, fill, src_off, dst_off, 0, 0,
//     per axis k at 8 + 6k: copied extent, dst stride, src stride, start (i32), step (i32), source extent]
fn item(e: u32) {
    let mode = p[2];
    var rem = e;
    var dst = p[5];
    var src = i32(p[4]);
    var inside = true;
    for (var k = i32(p[1]) - 1; k >= 0; k--) {
        let at = 8u + 6u * u32(k);
        let i = rem % p[at];
        rem = rem / p[at];
        dst += i * p[at + 1u];
        let d = i32(p[at + 5u]);
        var c = pi(at + 3u) + i32(i) * pi(at + 4u);
        if (c < 0 || c >= d) {
            if (mode == 0u) {
                inside = false;
            } else if (mode == 1u) {
                c = clamp(c, 0, d - 1);
            } else {
                c = select(2 * (d - 1) - c, -c, c < 0);
            }
        }
        src += c * i32(p[at + 2u]);
    }
    if (inside) {
        y[dst] = x[u32(src)];
    } else {
        y[dst] = pf(3u);
    }
}
