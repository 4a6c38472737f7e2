// etch_stream.h: hls::stream. Under Vitis HLS (or wherever Xilinx's <hls_stream.h> is on the
// include path) it is Xilinx's own, which synthesizes to FIFOs; elsewhere it is the part of it that
// etch's emitted C++ uses (read, write, empty, size) for a plain g++ C simulation.
#ifndef ETCH_STREAM_H
#define ETCH_STREAM_H

#if __has_include(<hls_stream.h>)
#include <hls_stream.h>
#else

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>

namespace hls {

template <typename T>
class stream {
public:
    stream() : name_("stream") {}
    explicit stream(const char *name) : name_(name) {}
    stream(const stream &) = delete;
    stream &operator=(const stream &) = delete;

    void write(const T &v) { fifo_.push_back(v); }

    // In hardware a read of an empty FIFO blocks forever; in C simulation it is a bug in the
    // design: say which stream and stop.
    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "error: read from empty stream `%s`\n", name_.c_str());
            std::exit(3);
        }
        T v = fifo_.front();
        fifo_.pop_front();
        return v;
    }

    bool empty() const { return fifo_.empty(); }
    std::size_t size() const { return fifo_.size(); }

private:
    std::string name_;
    std::deque<T> fifo_;
};

} // namespace hls

#endif // __has_include(<hls_stream.h>)

#endif // ETCH_STREAM_H
