#ifndef GEMELLO_CMOSQUITTO_SHIM_H
#define GEMELLO_CMOSQUITTO_SHIM_H
#include <mosquitto.h>

/* OpenSSL's SSL_pending, from the libssl that libmosquitto's TLS runs on: the bytes already
   decrypted and buffered inside a TLS session, which poll(2) on the socket cannot see. Declared
   here (not through <openssl/ssl.h>) so that OpenSSL's API is not imported into Swift. */
int SSL_pending(const void *ssl);

/* Bytes of this client's TLS session read from the socket but not yet taken by libmosquitto. */
static inline int gemello_mosquitto_tls_pending(struct mosquitto *mosq) {
    void *ssl = mosquitto_ssl_get(mosq);
    return ssl ? SSL_pending(ssl) : 0;
}
#endif
