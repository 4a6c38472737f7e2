#ifndef ETCH_ETCH_TOP_H
#define ETCH_ETCH_TOP_H

// digits_cnn as HLS C++, written by etch (`etch compile --emit hls`).

#include <cstdint>
#include "etch_stream.h"

typedef int8_t etch_in_t;

typedef int8_t etch_out_t;

static const int ETCH_IN_LEN = 64;

static const int ETCH_OUT_LEN = 10;

// digits_cnn: one sample's input codes in, its output codes out.
// in: `/Div_output_0_quantized` [1, 1, 8, 8]; out: `logits_quantized` [1, 10].
void etch_top(hls::stream<etch_in_t> &in, hls::stream<etch_out_t> &out);

#endif // ETCH_ETCH_TOP_H
