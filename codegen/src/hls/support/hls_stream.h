// hls_stream.h: the part of Vitis HLS's hls::stream that etch's emitted C++ uses (read, write,
// empty, size), written for plain g++ C simulation. Vitis HLS brings its own hls_stream.h; this
// file is only on the include path of the C simulation that `etch verify` builds.
#ifndef ETCH_HLS_STREAM_H
#define ETCH_HLS_STREAM_H

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

#endif // ETCH_HLS_STREAM_H
