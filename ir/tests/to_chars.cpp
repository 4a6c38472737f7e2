// Prints random f32 values as `bits text` and f64 values as `dbits text`, with C++17 std::to_chars: what onnx 1.23 uses to print floats.
#include <charconv>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <random>
int main() {
  std::mt19937_64 rng(42);
  char buf[64];
  for (int i = 0; i < 300000; i++) {
    uint32_t bits = (uint32_t)rng();
    if (i % 4 == 1) { float f = (float)(int64_t)(rng() % 100000000000000ULL); memcpy(&bits, &f, 4); }
    if (i % 4 == 2) { float f = (float)((int64_t)(rng() % 2000001) - 1000000) / 1000.0f; memcpy(&bits, &f, 4); }
    float f; memcpy(&f, &bits, 4);
    if (f != f || f - f != 0) continue;
    auto r = std::to_chars(buf, buf + 64, f);
    *r.ptr = 0;
    printf("%u %s\n", bits, buf);
  }
  for (int i = 0; i < 100000; i++) {
    uint64_t bits = rng();
    if (i % 3 == 1) { double d = (double)(int64_t)(rng() % 100000000000000000ULL); memcpy(&bits, &d, 8); }
    if (i % 3 == 2) { double d = (double)((int64_t)(rng() % 2000001) - 1000000) / 1000.0; memcpy(&bits, &d, 8); }
    double d; memcpy(&d, &bits, 8);
    if (d != d || d - d != 0) continue;
    auto r = std::to_chars(buf, buf + 64, d);
    *r.ptr = 0;
    printf("d%llu %s\n", (unsigned long long)bits, buf);
  }
}
