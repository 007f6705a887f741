/* Batch decoder of Otus (design §3, stage 2): L2-L4, tunnels, IP fragment reassembly and
 * classification against the parsers' interests, one call per raw batch.
 * The Python side is otus/_decode/decoder.py; the cffi declarations are in decode.cdef. */
#ifndef OTUS_DECODE_H
#define OTUS_DECODE_H
#include <stddef.h>
#include <stdint.h>

#include "otus_batch.h"

/* Status of a decoded entry. Below OTUS_ST_FIRST_ERROR: not an error. Keep in step with
 * otus_status_name() in decode.c. */
enum {
    OTUS_ST_OK = 0,
    OTUS_ST_FRAGMENT,         /* an IP fragment: held for reassembly (or reassembly is off) */
    OTUS_ST_NOT_IP,           /* a well-formed frame that carries no IP (ARP, LLDP, 802.3) */
    OTUS_ST_FIRST_ERROR,
    OTUS_ST_BAD_DESCRIPTOR = OTUS_ST_FIRST_ERROR, /* offset/caplen outside the batch buffer */
    OTUS_ST_UNSUPPORTED_LINKTYPE,
    OTUS_ST_TRUNCATED_L2,
    OTUS_ST_TOO_MANY_VLANS,
    OTUS_ST_TRUNCATED_IP,
    OTUS_ST_BAD_IP_VERSION,
    OTUS_ST_BAD_IP_HEADER_LEN,
    OTUS_ST_BAD_IP_TOTAL_LEN,
    OTUS_ST_BAD_IP_EXT,
    OTUS_ST_TRUNCATED_L4,
    OTUS_ST_BAD_UDP_LEN,
    OTUS_ST_BAD_TCP_OFFSET,
    OTUS_ST_BAD_SCTP_CHUNK,
    OTUS_ST_TRUNCATED_TUNNEL,
    OTUS_ST_BAD_TUNNEL,
    OTUS_ST_TOO_MANY_LAYERS,
    OTUS_ST_BAD_FRAGMENT,
    OTUS_ST_OUTPUT_FULL,
    OTUS_ST_COUNT
};

/* Tunnel kinds (of the outermost tunnel of a packet). */
enum {
    OTUS_TUN_NONE = 0,
    OTUS_TUN_VXLAN,
    OTUS_TUN_GENEVE,
    OTUS_TUN_GRE,
    OTUS_TUN_ERSPAN,
    OTUS_TUN_IPIP,
    OTUS_TUN_COUNT
};

/* Fragment state of a decoded entry. */
enum {
    OTUS_FRAG_NONE = 0,
    OTUS_FRAG_FRAGMENT = 1,    /* this packet is a fragment (its datagram may complete later) */
    OTUS_FRAG_REASSEMBLED = 2, /* this entry is a reassembled datagram (buf == 1) */
};

/* Transport bits of an interest. */
#define OTUS_T_UDP 1u
#define OTUS_T_TCP 2u
#define OTUS_T_SCTP 4u

#define OTUS_DET_NONE 0u
#define OTUS_DET_SIP 1u

#define OTUS_MAX_INTERESTS 32
#define OTUS_MAX_TUNNEL_PORTS 8

/* One decoded packet (or reassembled datagram). Offsets are into the batch buffer (buf 0) or
 * into the reassembly arena of the same decode call (buf 1). Addresses are in network order,
 * IPv4 in the first 4 bytes. */
typedef struct otus_dec {
    int64_t  ts_ns;
    uint32_t pkt;            /* index of the raw packet (the completing fragment if reassembled) */
    uint32_t ifindex;
    uint8_t  src_ip[16];     /* innermost IP header */
    uint8_t  dst_ip[16];
    uint8_t  outer_src[16];  /* outermost IP header when tunnelled */
    uint8_t  outer_dst[16];
    uint32_t l3_offset;      /* innermost IP header */
    uint32_t payload_offset; /* L4 payload (L7 bytes), trimmed to IP/UDP lengths */
    uint32_t payload_len;
    uint32_t tcp_seq;
    uint32_t tcp_ack;
    uint32_t frag_id;
    uint32_t tunnel_id;      /* VNI, GRE key or ERSPAN session of the outermost tunnel */
    uint32_t match;          /* bit i: interest i wants this entry */
    uint16_t src_port;
    uint16_t dst_port;
    uint16_t vlan_outer;     /* VLAN id (12 bits) of the outermost tag (out-of-band first) */
    uint16_t vlan_inner;     /* VLAN id of the second tag */
    uint16_t frag_offset;    /* in bytes */
    uint16_t status;         /* OTUS_ST_* */
    int16_t  cls;            /* lowest interest index in match, or -1 */
    uint8_t  ip_version;     /* 4, 6 or 0 */
    uint8_t  ip_proto;       /* innermost L4 protocol */
    uint8_t  outer_version;
    uint8_t  tunnel;         /* OTUS_TUN_* of the outermost tunnel */
    uint8_t  tunnel_depth;
    uint8_t  vlan_count;
    uint8_t  frag;           /* OTUS_FRAG_* */
    uint8_t  frag_more;      /* MF flag of a fragment */
    uint8_t  tcp_flags;
    uint8_t  icmp_type;
    uint8_t  icmp_code;
    uint8_t  buf;            /* 0: batch buffer, 1: reassembly arena */
    uint8_t  reserved[2];
} otus_dec_t;

typedef struct otus_dec_config {
    uint8_t  vxlan;
    uint8_t  geneve;
    uint8_t  gre;
    uint8_t  erspan;
    uint8_t  ipip;
    uint8_t  reassembly;
    uint16_t n_vxlan_ports;
    uint16_t vxlan_ports[OTUS_MAX_TUNNEL_PORTS];
    uint16_t n_geneve_ports;
    uint16_t geneve_ports[OTUS_MAX_TUNNEL_PORTS];
    int64_t  frag_timeout_ns;
    uint32_t frag_max_datagrams;
    uint32_t frag_max_fragments;
    uint32_t frag_max_size;
    uint64_t frag_max_memory;
} otus_dec_config_t;

typedef struct otus_decoder otus_decoder_t;

otus_decoder_t *otus_decoder_new(const otus_dec_config_t *cfg);
void otus_decoder_free(otus_decoder_t *d);
/* Append interest number n (0, 1, ...); returns 0, or -1 when full / bad arguments. */
int otus_decoder_add_interest(otus_decoder_t *d, uint32_t transports, uint32_t detector,
                              const uint16_t *ports, uint32_t n_ports, const uint8_t *prefixes,
                              const uint32_t *prefix_lens, uint32_t n_prefixes);
/* Decode n raw packets of one batch into out (capacity cap >= n). Entry i describes packet i;
 * reassembled datagrams follow from index n. idx[k * stride + j] (j < counts[k]) lists the
 * entries wanted by interest k. Returns the number of entries written. */
uint32_t otus_decode(otus_decoder_t *d, const uint8_t *buf, uint64_t buflen,
                     const otus_pkt_t *pkts, uint32_t n, otus_dec_t *out, uint32_t cap,
                     int32_t *idx, uint32_t stride, uint32_t *counts);
/* The reassembly arena written by the last otus_decode call (malloc'd; the caller owns it and
 * releases it with otus_arena_free), or NULL. */
uint8_t *otus_decoder_take_arena(otus_decoder_t *d, uint64_t *len);
void otus_arena_free(uint8_t *p);
void otus_decoder_tick(otus_decoder_t *d, int64_t now_ns);
/* Counters: names are stable; values are read in one call. */
uint32_t otus_decoder_stat_count(void);
const char *otus_decoder_stat_name(uint32_t i);
void otus_decoder_stats(const otus_decoder_t *d, uint64_t *out, uint32_t n);
const char *otus_status_name(uint32_t status);
/* The C SIP start-line heuristic (exposed for tests). */
int otus_detect_sip(const uint8_t *p, uint32_t len);

#endif
