#ifndef GEMELLO_CMODBUS_SHIM_H
#define GEMELLO_CMODBUS_SHIM_H
#include <modbus.h>
#include <errno.h>

/* libmodbus reports errors through errno, with its own codes above MODBUS_ENOBASE. */
static inline int gemello_modbus_errno(void) { return errno; }
/* Whether an error code is a Modbus exception the device answered (illegal address, busy, ...),
   as opposed to a failure of the link (timeout, reset, bad CRC). */
static inline int gemello_modbus_is_exception(int code) {
    return code > MODBUS_ENOBASE && code < MODBUS_ENOBASE + MODBUS_EXCEPTION_MAX;
}
#endif
