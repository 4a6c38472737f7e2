// Add, Sub, Mul, Div with numpy broadcasting.
// p: [count, op, rank, 0, then per output axis k at 4 + 3k: extent, stride in a, stride in b]
// (stride 0 where an input is broadcast). op 0 Add, 1 Sub, 2 Mul, 3 Div.
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

fn item(e: u32) {
    var rem = e;
    var ia = 0u;
    var ib = 0u;
    for (var k = i32(p[2]) - 1; k >= 0; k--) {
        let at = 4u + 3u * u32(k);
        let i = rem % p[at];
        rem = rem / p[at];
        ia += i * p[at + 1u];
        ib += i * p[at + 2u];
    }
    let u = a[ia];
    let v = b[ib];
    var r: f32;
    switch p[1] {
        case 0u: {
            r = u + v;
        }
        case 1u: {
            r = u - v;
        }
        case 2u: {
            r = u * v;
        }
        default: {
            r = u / v;
        }
    }
    y[e] = r;
}
