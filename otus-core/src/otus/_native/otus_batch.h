/* Shared batch layouts of Otus (design §3). The Python mirror of otus_pkt_t is
 * otus.capture.PACKET_DESC; keep both in step (a test checks sizes and offsets). */
#ifndef OTUS_BATCH_H
#define OTUS_BATCH_H
#include <stdint.h>

#define OTUS_PKT_FLAG_VLAN 0x0001u /* vlan_tci/vlan_tpid hold an out-of-band tag */

/* One captured packet inside a raw batch buffer. 32 bytes, native byte order. */
typedef struct otus_pkt {
    int64_t  ts_ns;
    uint32_t offset;   /* of the first byte of the frame inside the batch buffer */
    uint32_t caplen;   /* bytes present in the buffer */
    uint32_t wirelen;  /* bytes on the wire */
    uint32_t ifindex;
    uint16_t linktype; /* pcap LINKTYPE_* */
    uint16_t vlan_tci;
    uint16_t vlan_tpid;
    uint16_t flags;    /* OTUS_PKT_FLAG_* */
} otus_pkt_t;

#endif
