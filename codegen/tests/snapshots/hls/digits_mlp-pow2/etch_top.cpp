#include <cstdint>
#include "etch_top.h"
#include "etch_int.h"
#include "etch_weights.h"

// /fc1/Gemm: Gemm (power-of-two shift-add), [1, 64] -> [1, 64]
void l0_fc1_Gemm(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[64];
    int8_t y[64];
    #pragma HLS array_partition variable=l0_fc1_Gemm_w_sign complete dim=2
    #pragma HLS array_partition variable=l0_fc1_Gemm_w_exp complete dim=2
    read: for (int i = 0; i < 64; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    int32_t f[64];
    #pragma HLS array_partition variable=f complete
    field: for (int t = 0; t < 64; ++t) {
        #pragma HLS pipeline II=1
        f[t] = (int32_t)x[t] - (-128);
    }
    channel: for (int o = 0; o < 64; ++o) {
        #pragma HLS pipeline II=1
        int32_t acc = 0;
        shift_add: for (int t = 0; t < 64; ++t) {
            const int32_t prod = etch_wrap_shl(f[t], l0_fc1_Gemm_w_exp[o][t]);
            acc = l0_fc1_Gemm_w_sign[o][t] > 0 ? etch_wrap_add(acc, prod) : l0_fc1_Gemm_w_sign[o][t] < 0 ? etch_wrap_sub(acc, prod) : acc;
        }
        y[o] = (int8_t)etch_requantize(etch_wrap_add(acc, l0_fc1_Gemm_bias[o]), l0_fc1_Gemm_mult[o], l0_fc1_Gemm_shift[o], -128, -128, 127);
    }
    write: for (int i = 0; i < 64; ++i) {
        #pragma HLS pipeline II=1
        out.write(y[i]);
    }
}

// /fc2/Gemm: Gemm (power-of-two shift-add), [1, 64] -> [1, 10]
void l1_fc2_Gemm(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[64];
    int8_t y[10];
    #pragma HLS array_partition variable=l1_fc2_Gemm_w_sign complete dim=2
    #pragma HLS array_partition variable=l1_fc2_Gemm_w_exp complete dim=2
    read: for (int i = 0; i < 64; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    int32_t f[64];
    #pragma HLS array_partition variable=f complete
    field: for (int t = 0; t < 64; ++t) {
        #pragma HLS pipeline II=1
        f[t] = (int32_t)x[t] - (-128);
    }
    channel: for (int o = 0; o < 10; ++o) {
        #pragma HLS pipeline II=1
        int32_t acc = 0;
        shift_add: for (int t = 0; t < 64; ++t) {
            const int32_t prod = etch_wrap_shl(f[t], l1_fc2_Gemm_w_exp[o][t]);
            acc = l1_fc2_Gemm_w_sign[o][t] > 0 ? etch_wrap_add(acc, prod) : l1_fc2_Gemm_w_sign[o][t] < 0 ? etch_wrap_sub(acc, prod) : acc;
        }
        y[o] = (int8_t)etch_requantize(etch_wrap_add(acc, l1_fc2_Gemm_bias[o]), l1_fc2_Gemm_mult[o], l1_fc2_Gemm_shift[o], 27, -128, 127);
    }
    write: for (int i = 0; i < 10; ++i) {
        #pragma HLS pipeline II=1
        out.write(y[i]);
    }
}

// digits_mlp: one sample's input codes in, its output codes out.
// in: `/Div_output_0_quantized` [1, 64]; out: `logits_quantized` [1, 10].
void etch_top(hls::stream<etch_in_t> &in, hls::stream<etch_out_t> &out) {
    #pragma HLS interface axis port=in
    #pragma HLS interface axis port=out
    #pragma HLS dataflow
    hls::stream<int8_t> s0("s0");
    #pragma HLS stream variable=s0 depth=64
    l0_fc1_Gemm(in, s0);
    l1_fc2_Gemm(s0, out);
}
