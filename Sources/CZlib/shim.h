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
#endif
