// etch_int.h: the integer arithmetic of etch's quantized layers (DESIGN.md, "Integer semantics"),
// the same operations as etch-sim's reference/cpu/int (dot.rs, requant.rs) in <cstdint> types.
// Accumulators are 32-bit registers that wrap: sums are taken in uint32_t, where C++ defines
// wrap-around, and read back as int32_t.
#ifndef ETCH_INT_H
#define ETCH_INT_H

#include <cstdint>

// a + b in a 32-bit register.
static inline int32_t etch_wrap_add(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

// a - b in a 32-bit register.
static inline int32_t etch_wrap_sub(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

// a * b, low 32 bits.
static inline int32_t etch_wrap_mul(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a * (uint32_t)b);
}

// x << e, low 32 bits (the shift-add PE's barrel shifter).
static inline int32_t etch_wrap_shl(int32_t x, uint32_t e) {
    return (int32_t)((uint32_t)x << (e & 31u));
}

// Set bits of a 64-bit word.
static inline int32_t etch_popcount64(uint64_t v) {
    int32_t n = 0;
    for (int i = 0; i < 64; ++i) {
#pragma HLS unroll
        n += (int32_t)((v >> i) & 1u);
    }
    return n;
}

// round_half_even(acc * multiplier / 2^shift): a 64-bit product, half an LSB added to its
// magnitude, a shift, the lowest bit cleared where the dropped bits were exactly half; saturated
// to int32.
static inline int32_t etch_scale(int32_t acc, int32_t multiplier, uint32_t shift) {
    int64_t prod = (int64_t)acc * (int64_t)multiplier;
    int64_t half = (int64_t)1 << (shift - 1);
    int64_t abs = prod < 0 ? -prod : prod;
    int64_t magnitude = (abs + half) >> shift;
    if ((abs & ((half << 1) - 1)) == half) magnitude &= ~(int64_t)1;
    int64_t r = prod < 0 ? -magnitude : magnitude;
    if (r > (int64_t)INT32_MAX) r = INT32_MAX;
    if (r < (int64_t)INT32_MIN) r = INT32_MIN;
    return (int32_t)r;
}

// clamp(zero_point + round_half_even(acc * M), qmin, qmax): one output code.
static inline int32_t etch_requantize(int32_t acc, int32_t multiplier, uint32_t shift,
                                      int32_t zero_point, int32_t qmin, int32_t qmax) {
    int64_t q = (int64_t)zero_point + (int64_t)etch_scale(acc, multiplier, shift);
    if (q < qmin) q = qmin;
    if (q > qmax) q = qmax;
    return (int32_t)q;
}

#endif // ETCH_INT_H
