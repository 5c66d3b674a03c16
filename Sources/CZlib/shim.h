#ifndef GEMELLO_CZLIB_SHIM_H
#define GEMELLO_CZLIB_SHIM_H
#include <zlib.h>

/* deflateInit/inflateInit are macros that pass the library version and struct size. */
static inline int gemello_deflate_init(z_streamp stream, int level) {
    return deflateInit(stream, level);
}
static inline int gemello_inflate_init(z_streamp stream) {
    return inflateInit(stream);
}
static inline int gemello_deflate_init_gzip(z_streamp stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
/* windowBits 15 + 16: a gzip stream (RFC 1952), as HTTP's Content-Encoding: gzip sends. */
static inline int gemello_inflate_init_gzip(z_streamp stream) {
    return inflateInit2(stream, 15 + 16);
}
#endif
