/* pcap / pcapng record walker (docs/pcap.md). Python reads big chunks of the file; one call of
 * otus_pcap_walk() walks as many complete records of a chunk as fit in a descriptor array,
 * converting timestamps to nanoseconds. A record cut by the end of the chunk is left for the
 * next call (the caller carries its bytes over), so Python never touches a single packet. */
#ifndef OTUS_PCAP_H
#define OTUS_PCAP_H
#include <stddef.h>
#include <stdint.h>
#include "otus_batch.h"

#define OTUS_PCAP_MAX_IF 256

/* Return codes of otus_pcap_walk(). */
#define OTUS_PCAP_LIMIT 0     /* a batch limit was reached; more records may follow */
#define OTUS_PCAP_NEED_MORE 1 /* every complete record was walked; read more bytes */
#define OTUS_PCAP_ERROR 2     /* the file is damaged at err_pos; see err_what/err_detail */
#define OTUS_PCAP_END 3       /* eof was given and every byte was walked */

typedef struct otus_pcap_iface {
    uint32_t linktype;
    uint32_t snaplen;
    uint32_t tsres_pow2; /* 0: units of 10^-tsres_exp s, 1: units of 2^-tsres_exp s */
    uint32_t tsres_exp;
    int64_t ts_offset_ns; /* if_tsoffset */
} otus_pcap_iface_t;

typedef struct otus_pcap_state {
    uint32_t format;   /* 0: file header not seen yet, 1: pcap, 2: pcapng */
    uint32_t swapped;  /* the current file/section is in the other byte order */
    uint32_t nsec;     /* pcap: nanosecond timestamps */
    uint32_t linktype; /* pcap */
    uint32_t snaplen;  /* pcap */
    uint32_t n_if;     /* pcapng: interfaces of the current section */
    uint32_t n_sections;
    uint32_t major, minor;
    uint64_t records;        /* records (pcap) or blocks (pcapng) walked, file header included */
    uint64_t packets;        /* packet records walked */
    uint64_t bytes;          /* captured bytes of those packets */
    uint64_t skipped_blocks; /* pcapng blocks of types that carry no packet */
    int64_t last_ts_ns;      /* for SPB, which has no timestamp */
    uint64_t need;           /* after NEED_MORE: bytes the next record needs, 0 if unknown */
    uint64_t err_pos;        /* after ERROR: offset in the buffer of the damaged record */
    char err_what[64];       /* "truncated record 1234" */
    char err_detail[160];    /* "header says 1514 bytes, 200 remain" */
    otus_pcap_iface_t ifs[OTUS_PCAP_MAX_IF];
} otus_pcap_state_t;

/* Walk records in buf[pos, len). Fills up to max_pkts descriptors in out (offsets relative to
 * buf) while the captured bytes stay within max_bytes (at least one packet per call) and, when
 * max_span_ns > 0, while timestamps stay within max_span_ns of the first packet of the call.
 * Sets *consumed to the end of the last walked record and *npkts to the descriptors filled.
 * With eof set, bytes that do not form a complete record are an error (truncated file). */
int otus_pcap_walk(otus_pcap_state_t *st, const uint8_t *buf, size_t pos, size_t len, int eof,
                   otus_pkt_t *out, uint32_t max_pkts, uint64_t max_bytes, int64_t max_span_ns,
                   size_t *consumed, uint32_t *npkts);

#endif
