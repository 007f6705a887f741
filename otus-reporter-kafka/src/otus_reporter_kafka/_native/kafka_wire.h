/* Kafka's integer encodings, as static inline functions (they run per field of every
 * record): zigzag varints (record framing, header counts and lengths) with their reader, and
 * big-endian fixed-width integers (the RecordBatch header).
 */
#ifndef OTUS_KAFKA_WIRE_H
#define OTUS_KAFKA_WIRE_H

#include "kafka_common.h"

/* -- varints (Kafka: zigzag, 7 bits a byte, least significant first) ---------------------- */

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static inline Py_ssize_t uvarint_len(uint64_t n) {
    Py_ssize_t len = 1;
    while (n > 0x7F) {
        n >>= 7;
        len++;
    }
    return len;
}

static inline char *uvarint_put(char *p, uint64_t n) {
    while (n > 0x7F) {
        *p++ = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    *p++ = (char)n;
    return p;
}

/* A length (never negative) as a varint. */
static inline Py_ssize_t len_varint_len(Py_ssize_t n) { return uvarint_len((uint64_t)n << 1); }
static inline char *len_varint_put(char *p, Py_ssize_t n) {
    return uvarint_put(p, (uint64_t)n << 1);
}

/* Read one varint at *pp (bounded by end); -1 on a malformed one. */
static inline int uvarint_get(const unsigned char **pp, const unsigned char *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *pp < end; shift += 7) {
        unsigned char b = *(*pp)++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* -- big-endian integers (the RecordBatch header) ------------------------------------------ */

/* The low ``bytes`` bytes of v, most significant first. */
static inline char *be_put(char *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) *p++ = (char)(v >> (8 * i));
    return p;
}

#endif
