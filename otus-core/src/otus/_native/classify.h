/* Classification of decoded packets against the parsers' interests (ports, payload prefixes,
 * built-in detectors). Internal to decode.c. */
#ifndef OTUS_CLASSIFY_H
#define OTUS_CLASSIFY_H
#include <stdint.h>

typedef struct otus_cls_prefix {
    uint32_t bit;  /* 1 << interest index */
    uint32_t off;  /* into otus_cls_t.prefix_bytes */
    uint32_t len;
} otus_cls_prefix_t;

typedef struct otus_cls {
    uint32_t n;                /* interests */
    uint32_t trans_mask[8];    /* indexed by OTUS_T_* bit: interests listening on it */
    uint32_t any_mask;         /* interests with no ports, prefixes or detector */
    uint32_t sip_mask;         /* interests with detector "sip" */
    uint8_t  port_any[8192];   /* bitmap: some interest names this port */
    uint32_t *port_mask;       /* 65536 entries, allocated with the first port */
    otus_cls_prefix_t *prefixes;
    uint32_t n_prefixes;
    uint8_t *prefix_bytes;
    uint32_t prefix_bytes_len;
} otus_cls_t;

int otus_cls_add(otus_cls_t *c, uint32_t transports, uint32_t detector, const uint16_t *ports,
                 uint32_t n_ports, const uint8_t *prefixes, const uint32_t *prefix_lens,
                 uint32_t n_prefixes);
void otus_cls_clear(otus_cls_t *c);
/* Bitmask of the interests that want a packet of transport bit t. */
uint32_t otus_cls_match(const otus_cls_t *c, uint32_t t, uint16_t sport, uint16_t dport,
                        const uint8_t *payload, uint32_t len);

#endif
