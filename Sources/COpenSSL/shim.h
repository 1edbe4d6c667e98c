/*
 * PopGate's window onto OpenSSL 3.
 *
 * Swift imports OpenSSL's functions directly, but not its function-like
 * macros, and not the SSL_OP_* constants (they expand to SSL_OP_BIT(n), a
 * 64-bit shift Swift's importer gives up on). Everything the TLS module needs
 * from those is wrapped here as a `static inline` function prefixed `popgate_`,
 * so the Swift side never reaches for SSL_ctrl/BIO_ctrl command numbers itself.
 */
#ifndef POPGATE_COPENSSL_SHIM_H
#define POPGATE_COPENSSL_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* ---- SSL_OP_* option bits (uint64_t in OpenSSL 3) ---- */

static inline uint64_t popgate_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t popgate_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline uint64_t popgate_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }

static inline uint64_t popgate_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options) {
    return SSL_CTX_set_options(ctx, options);
}

/* ---- SSL_MODE_* bits and the ctrl macros that set them ---- */

static inline long popgate_SSL_MODE_ENABLE_PARTIAL_WRITE(void) { return (long)SSL_MODE_ENABLE_PARTIAL_WRITE; }
static inline long popgate_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void) { return (long)SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER; }
static inline long popgate_SSL_MODE_RELEASE_BUFFERS(void) { return (long)SSL_MODE_RELEASE_BUFFERS; }

static inline long popgate_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }

/* ---- session cache ---- */

static inline long popgate_SSL_SESS_CACHE_OFF(void) { return SSL_SESS_CACHE_OFF; }
static inline long popgate_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

/* ---- protocol versions ---- */

static inline int popgate_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }

static inline int popgate_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

/* ---- SNI ---- */

static inline int popgate_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/* ---- memory BIOs ---- */

/* How much ciphertext is waiting in a BIO (BIO_pending is a macro over BIO_ctrl). */
static inline size_t popgate_BIO_pending(BIO *bio) { return BIO_ctrl_pending(bio); }

/* The BUF_MEM behind a memory BIO: its `max` is what the BIO holds allocated (it never shrinks). */
static inline BUF_MEM *popgate_BIO_get_mem_buf(BIO *bio) {
    BUF_MEM *mem = NULL;
    BIO_get_mem_ptr(bio, &mem);
    return mem;
}

/* What BIO_read on an empty memory BIO reports: -1 means "retry later" rather than EOF,
 * which is what a BIO fed from a socket in pieces must say. */
static inline int popgate_BIO_set_mem_eof_return(BIO *bio, int value) {
    return (int)BIO_set_mem_eof_return(bio, value);
}

#endif /* POPGATE_COPENSSL_SHIM_H */
