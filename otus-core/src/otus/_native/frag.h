/* IPv4 and IPv6 fragment reassembly of the Otus decoder (bounded memory, timeouts, overlap
 * policy: see docs/decoder.md). Internal to decode.c; not declared to Python. */
#ifndef OTUS_FRAG_H
#define OTUS_FRAG_H
#include <stdint.h>

/* Why a datagram under reassembly was dropped. Keep in step with otus_frag_reason_name(). */
enum {
    OTUS_FE_TIMEOUT = 0,
    OTUS_FE_MEMORY,
    OTUS_FE_MAX_DATAGRAMS,
    OTUS_FE_TOO_MANY_FRAGMENTS,
    OTUS_FE_TOO_LARGE,
    OTUS_FE_OVERLAP,
    OTUS_FE_INCONSISTENT,
    OTUS_FE_TINY,
    OTUS_FE_SHUTDOWN,
    OTUS_FE_COUNT
};

typedef struct otus_frag_stats {
    uint64_t fragments;   /* fragments offered */
    uint64_t reassembled; /* datagrams completed */
    uint64_t duplicates;  /* exact duplicates ignored */
    uint64_t teardrop;    /* fragments lying inside an earlier one (teardrop shape) */
    uint64_t tiny;        /* tiny-fragment attacks (RFC 1858) */
    uint64_t rejected;    /* single fragments refused (too big for the memory cap) */
    uint64_t evicted[OTUS_FE_COUNT];
} otus_frag_stats_t;

typedef struct otus_frag_limits {
    int64_t  timeout_ns;
    uint32_t max_datagrams;
    uint32_t max_fragments;
    uint32_t max_size; /* of the reassembled IP payload */
    uint64_t max_memory;
} otus_frag_limits_t;

/* One fragment as the decoder found it. hdr/hdr_len: the IP header (IPv4 with options; IPv6
 * fixed header plus the unfragmentable extension headers); nh_pos: IPv6 only, offset in hdr of
 * the next-header byte that named the fragment header. */
typedef struct otus_frag_in {
    uint8_t        version;
    uint8_t        proto; /* IPv4 protocol / IPv6 next header after the fragment header */
    int            more;
    const uint8_t *src;
    const uint8_t *dst;
    uint32_t       id;
    uint32_t       offset; /* bytes */
    const uint8_t *hdr;
    uint32_t       hdr_len;
    uint32_t       nh_pos;
    const uint8_t *data;
    uint32_t       len;
    int64_t        ts_ns;
} otus_frag_in_t;

typedef struct otus_frag_table otus_frag_table_t;
typedef struct otus_frag_dgram otus_frag_dgram_t;

otus_frag_table_t *otus_frag_new(const otus_frag_limits_t *lim);
void otus_frag_free(otus_frag_table_t *t);
/* Offer one fragment. Returns a completed datagram (detached from the table; the caller
 * assembles then releases it) or NULL. */
otus_frag_dgram_t *otus_frag_insert(otus_frag_table_t *t, const otus_frag_in_t *in);
uint32_t otus_frag_size(const otus_frag_dgram_t *g);
void otus_frag_assemble(const otus_frag_dgram_t *g, uint8_t *dst);
void otus_frag_release(otus_frag_table_t *t, otus_frag_dgram_t *g);
void otus_frag_tick(otus_frag_table_t *t, int64_t now_ns);
const otus_frag_stats_t *otus_frag_stats(const otus_frag_table_t *t);
uint32_t otus_frag_active(const otus_frag_table_t *t);
uint64_t otus_frag_memory(const otus_frag_table_t *t);
const char *otus_frag_reason_name(uint32_t reason);

#endif
