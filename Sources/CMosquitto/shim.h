#ifndef GEMELLO_CMOSQUITTO_SHIM_H
#define GEMELLO_CMOSQUITTO_SHIM_H
#include <mosquitto.h>
#endif
