// Matrix products out = alpha·A·B + beta·C, batched: Gemm, MatMul, and convolution as an implicit
// GEMM (B is then the unrolled receptive fields, read from the input on the fly, never stored).
// Element (r, c) of A is at a_off + r·a_rs + c·a_cs, and likewise for B (mode 0), C and out.
// p: [M, N, K, a_rs, a_cs, b_rs, b_cs, o_rs, o_cs, c_rs, c_cs, has C, alpha, beta, mode,
//     accumulate (add to what out holds: a product split along K),
//     convolution (mode 1) at 16: h, w, wo, stride h, stride w, pad h, pad w, 0 …,
//     per batch z at 32 + 4z: a_off, b_off, o_off, c_off,
//     convolution: at p[24], per receptive-field row k: input offset (channel, row, column),
//     row offset, column offset]
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

// Where output column n reads the input (mode 1): its window's top-left row and column; for
// mode 0 its offset n·b_cs (in .x).
fn column(n: u32) -> vec2<i32> {
    if (p[14] == 0u) {
        return vec2<i32>(i32(n * p[6]), 0);
    }
    let wo = p[18];
    return vec2<i32>(i32((n / wo) * p[19]) - pi(21u), i32((n % wo) * p[20]) - pi(22u));
}

// B's element (k, n) for a column from `column`, or 0 outside the input (padding) or the matrix.
fn fetch_b(off: u32, k: u32, col: vec2<i32>, inside: bool) -> f32 {
    if (!inside || k >= p[2]) {
        return 0.0;
    }
    if (p[14] == 0u) {
        return b[off + k * p[5] + u32(col.x)];
    }
    let t = p[24] + 3u * k;
    let ii = col.x + pi(t + 1u);
    let jj = col.y + pi(t + 2u);
    if (ii < 0 || ii >= pi(16u) || jj < 0 || jj >= pi(17u)) {
        return 0.0;
    }
    return b[u32(i32(off + p[t]) + col.x * pi(17u) + col.y)];
}

fn store(z: u32, m: u32, n: u32, acc: f32) {
    if (m >= p[0] || n >= p[1]) {
        return;
    }
    let t = 32u + 4u * z;
    var v = pf(12u) * acc;
    if (p[11] != 0u) {
        v += pf(13u) * c[p[t + 3u] + m * p[9] + n * p[10]];
    }
    let at = p[t + 2u] + m * p[7] + n * p[8];
    if (p[15] != 0u) {
        v += o[at];
    }
    o[at] = v;
}

fn load_a(off: u32, m: u32, k: u32) -> f32 {
    if (m >= p[0] || k >= p[2]) {
        return 0.0;
    }
    return a[off + m * p[3] + k * p[4]];
}

// 64×64 output tiles per workgroup of 16×16; invocation (x, y) computes rows y + 16i and
// columns x + 16j (i, j < 4) as vec4s over j. K goes through workgroup memory 32 at a time (16 KiB).
var<workgroup> ta: array<vec4<f32>, 512>;
var<workgroup> tb: array<vec4<f32>, 512>;

@compute @workgroup_size(16, 16)
fn tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = 32u + 4u * wg.z;
    let a_off = p[t];
    let b_off = p[t + 1u];
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    // this invocation loads A's rows ra + 16i at k0 + li % 16 (+ 16), and B's columns cb + 16j at
    // k0 + li / 16 (+ 16)
    let ra = row0 + li / 16u;
    let cb = col0 + li % 16u;
    let c0 = column(cb);
    let c1 = column(cb + 16u);
    let c2 = column(cb + 32u);
    let c3 = column(cb + 48u);
    let n_all = p[1];
    let in0 = cb < n_all;
    let in1 = cb + 16u < n_all;
    let in2 = cb + 32u < n_all;
    let in3 = cb + 48u < n_all;
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    for (var k0 = 0u; k0 < p[2]; k0 += 32u) {
        for (var h = 0u; h < 2u; h++) {
            let ka = k0 + 16u * h + li % 16u;
            ta[(li / 16u) * 32u + 16u * h + li % 16u] = vec4<f32>(load_a(a_off, ra, ka), load_a(a_off, ra + 16u, ka), load_a(a_off, ra + 32u, ka), load_a(a_off, ra + 48u, ka));
            let kb = k0 + 16u * h + li / 16u;
            tb[li + 256u * h] = vec4<f32>(fetch_b(b_off, kb, c0, in0), fetch_b(b_off, kb, c1, in1), fetch_b(b_off, kb, c2, in2), fetch_b(b_off, kb, c3, in3));
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 32u; kk++) {
            let av = ta[lid.y * 32u + kk];
            let bv = tb[kk * 16u + lid.x];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let m = row0 + lid.y + 16u * i;
        let n = col0 + lid.x;
        store(wg.z, m, n, accs[i].x);
        store(wg.z, m, n + 16u, accs[i].y);
        store(wg.z, m, n + 32u, accs[i].z);
        store(wg.z, m, n + 48u, accs[i].w);
    }
}

// Few rows (fully connected layers at small batch, narrow convolution groups): one output column
// per invocation (consecutive invocations, consecutive columns) for a block of 16 rows, over all
// of K. A's element depends only on the workgroup and k: every invocation reads the same weight.
@compute @workgroup_size(64)
fn skinny(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let t = 32u + 4u * wg.z;
    let a_off = p[t];
    let b_off = p[t + 1u];
    let n = wg.x * 64u + li;
    let inside = n < p[1];
    let col = column(n);
    let row0 = wg.y * 16u;
    // rows past M repeat the last row (and are not stored)
    let last = p[0] - 1u;
    let a_rs = p[3];
    let a_cs = p[4];
    let r0 = a_off + min(row0, last) * a_rs;
    let r1 = a_off + min(row0 + 1u, last) * a_rs;
    let r2 = a_off + min(row0 + 2u, last) * a_rs;
    let r3 = a_off + min(row0 + 3u, last) * a_rs;
    let r4 = a_off + min(row0 + 4u, last) * a_rs;
    let r5 = a_off + min(row0 + 5u, last) * a_rs;
    let r6 = a_off + min(row0 + 6u, last) * a_rs;
    let r7 = a_off + min(row0 + 7u, last) * a_rs;
    let r8 = a_off + min(row0 + 8u, last) * a_rs;
    let r9 = a_off + min(row0 + 9u, last) * a_rs;
    let r10 = a_off + min(row0 + 10u, last) * a_rs;
    let r11 = a_off + min(row0 + 11u, last) * a_rs;
    let r12 = a_off + min(row0 + 12u, last) * a_rs;
    let r13 = a_off + min(row0 + 13u, last) * a_rs;
    let r14 = a_off + min(row0 + 14u, last) * a_rs;
    let r15 = a_off + min(row0 + 15u, last) * a_rs;
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    for (var k = 0u; k < p[2]; k++) {
        let bv = fetch_b(b_off, k, col, inside);
        let ak = k * a_cs;
        acc0 += bv * vec4<f32>(a[r0 + ak], a[r1 + ak], a[r2 + ak], a[r3 + ak]);
        acc1 += bv * vec4<f32>(a[r4 + ak], a[r5 + ak], a[r6 + ak], a[r7 + ak]);
        acc2 += bv * vec4<f32>(a[r8 + ak], a[r9 + ak], a[r10 + ak], a[r11 + ak]);
        acc3 += bv * vec4<f32>(a[r12 + ak], a[r13 + ak], a[r14 + ak], a[r15 + ak]);
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let m = row0 + 4u * i;
        store(wg.z, m, n, accs[i].x);
        store(wg.z, m + 1u, n, accs[i].y);
        store(wg.z, m + 2u, n, accs[i].z);
        store(wg.z, m + 3u, n, accs[i].w);
    }
}
