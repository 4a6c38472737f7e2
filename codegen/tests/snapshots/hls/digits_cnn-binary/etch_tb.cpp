// C-simulation testbench: every output code of `logits_quantized` against the CPU executor's.

#include <cstdio>
#include <string>
#include <vector>
#include "etch_top.h"

// The dims of logits_quantized on one sample.
static const int ETCH_OUT_DIMS[2] = {
    1, 10
};

// Reads a vector file: `samples codes_per_sample`, then the codes; false (with the reason
// on stderr) when it is missing, malformed, or holds another number of codes per sample.
static bool read_vectors(const char *path, int per, std::vector<long long> &codes, int &samples) {
    std::FILE *f = std::fopen(path, "r");
    if (!f) {
        std::fprintf(stderr, "error: cannot open vector file %s\n", path);
        return false;
    }
    int file_per = 0;
    if (std::fscanf(f, "%d %d", &samples, &file_per) != 2 || samples < 0) {
        std::fprintf(stderr, "error: %s: the first line must be `samples codes_per_sample`\n", path);
        std::fclose(f);
        return false;
    }
    if (file_per != per) {
        std::fprintf(stderr, "error: %s holds %d codes per sample; the design has %d\n", path, file_per, per);
        std::fclose(f);
        return false;
    }
    codes.resize((size_t)samples * (size_t)per);
    for (size_t i = 0; i < codes.size(); ++i) {
        if (std::fscanf(f, "%lld", &codes[i]) != 1) {
            std::fprintf(stderr, "error: %s ends or is malformed at code %zu of %zu\n", path, i, codes.size());
            std::fclose(f);
            return false;
        }
    }
    std::fclose(f);
    return true;
}

// The multi-index of output element `flat`, e.g. `[0, 7]`.
static std::string out_index(int flat) {
    int idx[2];
    for (int d = 1; d >= 0; --d) {
        idx[d] = flat % ETCH_OUT_DIMS[d];
        flat /= ETCH_OUT_DIMS[d];
    }
    std::string s = "[";
    name: for (int d = 0; d < 2; ++d) {
        if (d > 0) {
            s += ", ";
        }
        s += std::to_string(idx[d]);
    }
    return s + "]";
}

// usage: etch_tb [tb_input.txt [tb_golden.txt]]
int main(int argc, char **argv) {
    const char *input_path = argc > 1 ? argv[1] : "tb_input.txt";
    const char *golden_path = argc > 2 ? argv[2] : "tb_golden.txt";
    std::vector<long long> inputs, golden;
    int n_in = 0, n_golden = 0;
    if (!read_vectors(input_path, ETCH_IN_LEN, inputs, n_in) || !read_vectors(golden_path, ETCH_OUT_LEN, golden, n_golden)) {
        return 2;
    }
    if (n_in != n_golden || n_in == 0) {
        std::fprintf(stderr, "error: %d input samples but %d golden samples\n", n_in, n_golden);
        return 2;
    }
    std::FILE *outputs = std::fopen("tb_output.txt", "w");
    if (!outputs) {
        std::fprintf(stderr, "error: cannot write tb_output.txt\n");
        return 2;
    }
    for (int s = 0; s < n_in; ++s) {
        hls::stream<etch_in_t> in("in");
        hls::stream<etch_out_t> out("out");
        feed: for (int i = 0; i < 64; ++i) {
            in.write((etch_in_t)inputs[(size_t)s * ETCH_IN_LEN + i]);
        }
        etch_top(in, out);
        std::vector<long long> got_codes;
        while (!out.empty()) {
            got_codes.push_back((long long)out.read());
        }
        // etch verify compares this file with the golden codes itself
        for (size_t i = 0; i < got_codes.size(); ++i) {
            std::fprintf(outputs, i ? " %lld" : "%lld", got_codes[i]);
        }
        std::fprintf(outputs, "\n");
        std::fflush(outputs);
        if (!in.empty() || got_codes.size() != (size_t)ETCH_OUT_LEN) {
            std::printf("MISMATCH: sample %d: the design left %zu input codes unread and wrote %zu output codes (expected %d)\n", s, in.size(), got_codes.size(), ETCH_OUT_LEN);
            std::printf("etch-csim: mismatch sample=%d index=-1 got=%zu expected=%d\n", s, got_codes.size(), ETCH_OUT_LEN);
            return 1;
        }
        compare: for (int i = 0; i < 10; ++i) {
            const long long got = got_codes[i];
            const long long want = golden[(size_t)s * ETCH_OUT_LEN + i];
            if (got != want) {
                std::printf("MISMATCH: sample %d, output logits_quantized%s (element %d of %d): got %lld, expected %lld\n", s, out_index(i).c_str(), i, ETCH_OUT_LEN, got, want);
                std::printf("etch-csim: mismatch sample=%d index=%d got=%lld expected=%lld\n", s, i, got, want);
                return 1;
            }
        }
    }
    std::fclose(outputs);
    std::printf("PASS: %d samples, %d output codes each, bit-exact\n", n_in, ETCH_OUT_LEN);
    std::printf("etch-csim: pass samples=%d outputs=%d\n", n_in, n_in * ETCH_OUT_LEN);
    return 0;
}
