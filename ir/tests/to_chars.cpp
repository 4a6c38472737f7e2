// Prints random f32 values as `bits text`, with C++17 std::to_chars: what onnx 1.23 uses to print floats.
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
}
