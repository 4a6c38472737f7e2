#include <cstdint>
#include "etch_top.h"
#include "etch_int.h"
#include "etch_weights.h"

// /conv1/Conv: Conv (integer multiply-accumulate), [1, 1, 8, 8] -> [1, 16, 8, 8]
void l0_conv1_Conv(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[64];
    int8_t y[1024];
    #pragma HLS array_partition variable=l0_conv1_Conv_w complete dim=2
    read: for (int i = 0; i < 64; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    pixel: for (int p = 0; p < 64; ++p) {
        const int oi = p / 8;
        const int oj = p % 8;
        int32_t f[9];
        #pragma HLS array_partition variable=f complete
        field: for (int t = 0; t < 9; ++t) {
            #pragma HLS pipeline II=1
            const int c = t / 9;
            const int ii = oi - 1 + ((t / 3) % 3);
            const int jj = oj - 1 + (t % 3);
            const bool inside = ii >= 0 && ii < 8 && jj >= 0 && jj < 8;
            f[t] = inside ? (int32_t)x[(c * 8 + ii) * 8 + jj] - (-128) : 0;
        }
        channel: for (int o = 0; o < 16; ++o) {
            #pragma HLS pipeline II=1
            int32_t acc = 0;
            mac: for (int t = 0; t < 9; ++t) {
                acc = etch_wrap_add(acc, etch_wrap_mul(f[t], l0_conv1_Conv_w[o][t]));
            }
            y[o * 64 + p] = (int8_t)etch_requantize(etch_wrap_add(acc, l0_conv1_Conv_bias[o]), l0_conv1_Conv_mult[o], l0_conv1_Conv_shift[o], -128, -128, 127);
        }
    }
    write: for (int i = 0; i < 1024; ++i) {
        #pragma HLS pipeline II=1
        out.write(y[i]);
    }
}

// /MaxPool: MaxPool 2x2 on codes, [1, 16, 8, 8] -> [1, 16, 4, 4]
void l1_MaxPool(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[1024];
    read: for (int i = 0; i < 1024; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    pool: for (int i = 0; i < 256; ++i) {
        #pragma HLS pipeline II=1
        const int ch = i / 16;
        const int oi = (i / 4) % 4;
        const int oj = i % 4;
        int32_t best = INT32_MIN;
        window: for (int t = 0; t < 4; ++t) {
            const int ii = oi * 2 + (t / 2);
            const int jj = oj * 2 + (t % 2);
            if (ii >= 0 && ii < 8 && jj >= 0 && jj < 8) {
                const int32_t v = x[(ch * 8 + ii) * 8 + jj];
                if (v > best) {
                    best = v;
                }
            }
        }
        out.write((int8_t)best);
    }
}

// /conv2/Conv: Conv (XNOR-popcount), [1, 16, 4, 4] -> [1, 32, 4, 4]
void l2_conv2_Conv(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[256];
    int8_t y[512];
    #pragma HLS array_partition variable=l2_conv2_Conv_w complete dim=2
    read: for (int i = 0; i < 256; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    pixel: for (int p = 0; p < 16; ++p) {
        const int oi = p / 4;
        const int oj = p % 4;
        uint64_t xb[3];
        uint64_t vb[3];
        #pragma HLS array_partition variable=xb complete
        #pragma HLS array_partition variable=vb complete
        clear: for (int v = 0; v < 3; ++v) {
            #pragma HLS unroll
            xb[v] = 0;
            vb[v] = 0;
        }
        field: for (int t = 0; t < 144; ++t) {
            #pragma HLS pipeline II=1
            const int c = t / 9;
            const int ii = oi - 1 + ((t / 3) % 3);
            const int jj = oj - 1 + (t % 3);
            const bool inside = ii >= 0 && ii < 4 && jj >= 0 && jj < 4;
            if (inside) {
                vb[t / 64] |= (uint64_t)1 << (t % 64);
                if ((int32_t)x[(c * 4 + ii) * 4 + jj] >= l2_conv2_Conv_thr[c]) {
                    xb[t / 64] |= (uint64_t)1 << (t % 64);
                }
            }
        }
        channel: for (int o = 0; o < 32; ++o) {
            #pragma HLS pipeline II=1
            int32_t matches = 0;
            int32_t valid = 0;
            xnor_popcount: for (int v = 0; v < 3; ++v) {
                matches += etch_popcount64(~(xb[v] ^ l2_conv2_Conv_w[o][v]) & vb[v]);
                valid += etch_popcount64(vb[v]);
            }
            const int32_t acc = 2 * matches - valid;
            y[o * 16 + p] = (int8_t)etch_requantize(etch_wrap_add(acc, l2_conv2_Conv_bias[o]), l2_conv2_Conv_mult[o], l2_conv2_Conv_shift[o], -128, -128, 127);
        }
    }
    write: for (int i = 0; i < 512; ++i) {
        #pragma HLS pipeline II=1
        out.write(y[i]);
    }
}

// /MaxPool_1: MaxPool 2x2 on codes, [1, 32, 4, 4] -> [1, 32, 2, 2]
void l3_MaxPool_1(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[512];
    read: for (int i = 0; i < 512; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    pool: for (int i = 0; i < 128; ++i) {
        #pragma HLS pipeline II=1
        const int ch = i / 4;
        const int oi = (i / 2) % 2;
        const int oj = i % 2;
        int32_t best = INT32_MIN;
        window: for (int t = 0; t < 4; ++t) {
            const int ii = oi * 2 + (t / 2);
            const int jj = oj * 2 + (t % 2);
            if (ii >= 0 && ii < 4 && jj >= 0 && jj < 4) {
                const int32_t v = x[(ch * 4 + ii) * 4 + jj];
                if (v > best) {
                    best = v;
                }
            }
        }
        out.write((int8_t)best);
    }
}

// /fc/Gemm: Gemm (integer multiply-accumulate), [1, 128] -> [1, 10]
void l5_fc_Gemm(hls::stream<int8_t> &in, hls::stream<int8_t> &out) {
    int8_t x[128];
    int8_t y[10];
    #pragma HLS array_partition variable=l5_fc_Gemm_w complete dim=2
    read: for (int i = 0; i < 128; ++i) {
        #pragma HLS pipeline II=1
        x[i] = in.read();
    }
    int32_t f[128];
    #pragma HLS array_partition variable=f complete
    field: for (int t = 0; t < 128; ++t) {
        #pragma HLS pipeline II=1
        f[t] = (int32_t)x[t] - (-128);
    }
    channel: for (int o = 0; o < 10; ++o) {
        #pragma HLS pipeline II=1
        int32_t acc = 0;
        mac: for (int t = 0; t < 128; ++t) {
            acc = etch_wrap_add(acc, etch_wrap_mul(f[t], l5_fc_Gemm_w[o][t]));
        }
        y[o] = (int8_t)etch_requantize(etch_wrap_add(acc, l5_fc_Gemm_bias[o]), l5_fc_Gemm_mult[o], l5_fc_Gemm_shift[o], 39, -128, 127);
    }
    write: for (int i = 0; i < 10; ++i) {
        #pragma HLS pipeline II=1
        out.write(y[i]);
    }
}

// digits_cnn: one sample's input codes in, its output codes out.
// in: `/Div_output_0_quantized` [1, 1, 8, 8]; out: `logits_quantized` [1, 10].
void etch_top(hls::stream<etch_in_t> &in, hls::stream<etch_out_t> &out) {
    #pragma HLS interface axis port=in
    #pragma HLS interface axis port=out
    #pragma HLS dataflow
    hls::stream<int8_t> s0("s0");
    #pragma HLS stream variable=s0 depth=1024
    hls::stream<int8_t> s1("s1");
    #pragma HLS stream variable=s1 depth=256
    hls::stream<int8_t> s2("s2");
    #pragma HLS stream variable=s2 depth=512
    hls::stream<int8_t> s3("s3");
    #pragma HLS stream variable=s3 depth=128
    l0_conv1_Conv(in, s0);
    l1_MaxPool(s0, s1);
    l2_conv2_Conv(s1, s2);
    l3_MaxPool_1(s2, s3);
    l5_fc_Gemm(s3, out);
}
