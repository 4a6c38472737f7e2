// Matrix products out = alpha·A·B + beta·C, batched: Gemm, MatMul, and convolution as an implicit
// GEMM (B is then the unrolled receptive fields, computed on the fly and never stored).
// Element (r, c) of A is at a_off + r·a_rs + c·a_cs, and likewise for B (mode 0), C and out.
// p: [M, N, K, a_rs, a_cs, b_rs, b_cs, o_rs, o_cs, c_rs, c_cs, has C, alpha, beta, mode, batches,
//     convolution (mode 1) at 16: h, w, kh, kw, stride h, stride w, pad h, pad w, dilation h,
//     dilation w, wo, 0 …,
//     per batch z at 32 + 4z: a_off, b_off, o_off, c_off]
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

// B's element (k, n): strided, or (mode 1) input pixel of receptive-field row k at output pixel n.
fn fetch_b(off: u32, k: u32, n: u32) -> f32 {
    if (p[14] == 0u) {
        return b[off + k * p[5] + n * p[6]];
    }
    let kh = p[18];
    let kw = p[19];
    let ch = k / (kh * kw);
    let ki = (k / kw) % kh;
    let kj = k % kw;
    let wo = p[26];
    let ii = i32((n / wo) * p[20] + ki * p[24]) - pi(22u);
    let jj = i32((n % wo) * p[21] + kj * p[25]) - pi(23u);
    let h = pi(16u);
    let w = pi(17u);
    if (ii < 0 || ii >= h || jj < 0 || jj >= w) {
        return 0.0;
    }
    return b[off + ch * u32(h * w) + u32(ii * w + jj)];
}

fn store(z: u32, m: u32, n: u32, acc: f32) {
    let t = 32u + 4u * z;
    var v = pf(12u) * acc;
    if (p[11] != 0u) {
        v += pf(13u) * c[p[t + 3u] + m * p[9] + n * p[10]];
    }
    o[p[t + 2u] + m * p[7] + n * p[8]] = v;
}

// 64×64 tiles of the output per workgroup, 4×4 values per invocation, K in steps of 16.
var<workgroup> ta: array<f32, 1024>;
var<workgroup> tb: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let m_all = p[0];
    let n_all = p[1];
    let k_all = p[2];
    let t = 32u + 4u * wg.z;
    let a_off = p[t];
    let b_off = p[t + 1u];
    let row0 = wg.y * 64u;
    let col0 = wg.x * 64u;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < k_all; k0 += 16u) {
        for (var q = 0u; q < 4u; q++) {
            let e = li + q * 256u;
            // A: consecutive invocations along k; stored k-major
            let m = row0 + e / 16u;
            let ka = k0 + e % 16u;
            var av = 0.0;
            if (m < m_all && ka < k_all) {
                av = a[a_off + m * p[3] + ka * p[4]];
            }
            ta[(e % 16u) * 64u + e / 16u] = av;
            // B: consecutive invocations along n
            let kb = k0 + e / 64u;
            let n = col0 + e % 64u;
            var bv = 0.0;
            if (kb < k_all && n < n_all) {
                bv = fetch_b(b_off, kb, n);
            }
            tb[e] = bv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var ar: array<f32, 4>;
            var br: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ar[i] = ta[kk * 64u + lid.y + 16u * i];
                br[i] = tb[kk * 64u + lid.x + 16u * i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += ar[i] * br[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let m = row0 + lid.y + 16u * i;
            let n = col0 + lid.x + 16u * j;
            if (m < m_all && n < n_all) {
                store(wg.z, m, n, acc[i * 4u + j]);
            }
        }
    }
}

// Few rows (a fully connected layer at small batch): one workgroup per output column and block of
// 8 rows; its 64 invocations split K and add their partial sums in a tree.
var<workgroup> part: array<f32, 512>;

@compute @workgroup_size(64)
fn skinny(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let m_all = p[0];
    let k_all = p[2];
    let t = 32u + 4u * wg.z;
    let a_off = p[t];
    let b_off = p[t + 1u];
    let n = wg.x;
    let row0 = wg.y * 8u;
    var acc: array<f32, 8>;
    for (var k = li; k < k_all; k += 64u) {
        let bv = fetch_b(b_off, k, n);
        for (var i = 0u; i < 8u; i++) {
            let m = min(row0 + i, m_all - 1u);
            acc[i] += a[a_off + m * p[3] + k * p[4]] * bv;
        }
    }
    for (var i = 0u; i < 8u; i++) {
        part[i * 64u + li] = acc[i];
    }
    workgroupBarrier();
    for (var s = 32u; s > 0u; s = s / 2u) {
        if (li < s) {
            for (var i = 0u; i < 8u; i++) {
                part[i * 64u + li] += part[i * 64u + li + s];
            }
        }
        workgroupBarrier();
    }
    if (li < 8u && row0 + li < m_all) {
        store(wg.z, row0 + li, n, part[li * 64u]);
    }
}
