// A quantized Conv/Gemm in integers (DESIGN.md, "Integer semantics"; the CPU's cpu/int/), one
// invocation per output code. Codes travel in f32 buffers (exact below 2^24); everything else is
// i32 arithmetic, which wraps like the CPU's 32-bit accumulator. A Gemm is the 1×1 convolution of
// an [N, K, 1, 1] input.
// p: [count, c, h, w, m, channels per group, outputs per group, ho, wo, binary input,
//     rows at 10: kernel, stride, dilation, pad begin; columns at 14: the same,
//     18: input zero point, 19: output zero point, 20: qmin, 21: qmax, 22: thresholds (0: one
//     for every channel, else one per input channel)]
// wt: per output channel, cg·kh·kw effective weights (an int code; ±2^e for a power-of-two code,
//     which is the same product as the shift; ±1 for a binary code, whose product with a ±1
//     input is the XNOR); bias: i32 per output channel; rq: per output channel [multiplier,
//     shift], then the input thresholds.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read> rq: array<u32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// The decoded input: its code less the zero point, or ±1 against the channel's threshold.
fn decode(q: i32, ch: u32) -> i32 {
    if (p[9] == 0u) {
        return q - pi(18u);
    }
    var t = 0u;
    if (p[22] != 0u) {
        t = ch;
    }
    let threshold = bitcast<i32>(rq[2u * p[4] + t]);
    return select(-1, 1, q >= threshold);
}

// a · b as a 64-bit product [lo, hi] of two u32.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let ll = a0 * b0;
    let lh = a0 * b1;
    let hl = a1 * b0;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let lo = (ll & 0xffffu) | (mid << 16u);
    let hi = a1 * b1 + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(lo, hi);
}

// clamp(zp + round_half_even(acc · multiplier / 2^shift), qmin, qmax) (cpu/int/requant.rs): the
// magnitude of the 64-bit product, plus half an LSB, shifted right, ties to even; saturated at 2^30, far past
// any code range the GPU path accepts (the host checks |qmin|, |qmax| < 2^24).
fn requantize(acc: i32, oc: u32) -> i32 {
    let mult = rq[2u * oc];
    let shift = rq[2u * oc + 1u];
    var mag = bitcast<u32>(acc);
    if (acc < 0) {
        mag = ~mag + 1u;
    }
    var prod = mul_wide(mag, mult);
    let hs = shift - 1u;
    // a tie: the `shift` dropped bits are exactly 2^(shift − 1) (shift is 1..=62)
    var tie: bool;
    if (shift < 32u) {
        tie = (prod.x & ((1u << shift) - 1u)) == (1u << hs);
    } else if (shift == 32u) {
        tie = prod.x == 0x80000000u;
    } else {
        tie = prod.x == 0u && (prod.y & ((1u << (shift - 32u)) - 1u)) == (1u << (hs - 32u));
    }
    // + 2^(shift − 1)
    if (hs < 32u) {
        let add = 1u << hs;
        let lo = prod.x + add;
        prod.y += select(0u, 1u, lo < prod.x);
        prod.x = lo;
    } else {
        prod.y += 1u << (hs - 32u);
    }
    var r_lo: u32;
    var r_hi: u32;
    if (shift < 32u) {
        r_lo = (prod.x >> shift) | (prod.y << (32u - shift));
        r_hi = prod.y >> shift;
    } else {
        r_lo = prod.y >> (shift - 32u);
        r_hi = 0u;
    }
    // ties to even
    if (tie) {
        r_lo = r_lo & ~1u;
    }
    var r = i32(min(r_lo, 0x40000000u));
    if (r_hi != 0u) {
        r = 0x40000000;
    }
    if (acc < 0) {
        r = -r;
    }
    return clamp(pi(19u) + r, pi(20u), pi(21u));
}

fn item(e: u32) {
    let h = pi(2u);
    let w = pi(3u);
    let cg = p[5];
    let ho = p[7];
    let wo = p[8];
    let oj = i32(e % wo);
    let oi = i32((e / wo) % ho);
    let oc = (e / (wo * ho)) % p[4];
    let img = e / (wo * ho * p[4]);
    let g = oc / p[6];
    let kh = pi(10u);
    let kw = pi(14u);
    let hs = oi * pi(11u) - pi(13u);
    let ws = oj * pi(15u) - pi(17u);
    var acc = 0;
    for (var c = 0u; c < cg; c++) {
        let ch = g * cg + c;
        let xb = (img * p[1] + ch) * u32(h * w);
        let wb = (oc * cg + c) * u32(kh * kw);
        for (var ki = 0; ki < kh; ki++) {
            let ii = hs + ki * pi(12u);
            if (ii < 0 || ii >= h) {
                continue;
            }
            for (var kj = 0; kj < kw; kj++) {
                let jj = ws + kj * pi(16u);
                if (jj >= 0 && jj < w) {
                    let q = i32(x[xb + u32(ii * w + jj)]);
                    acc += decode(q, ch) * bitcast<i32>(wt[wb + u32(ki * kw + kj)]);
                }
            }
        }
    }
    acc += bitcast<i32>(bias[oc]);
    y[e] = f32(requantize(acc, oc));
}
