/* AF_PACKET TPACKET_V3 helpers for otus_capture_afpacket: the calls that need C pointers
 * (ring mmap, BPF attach) and the per-block walk that fills Otus packet descriptors. */
#ifndef OTUS_AFPACKET_H
#define OTUS_AFPACKET_H
#include <stddef.h>
#include <stdint.h>
#include <pcap/pcap.h>

/* Identical to otus_pkt_t of otus-core (otus/_native/otus_batch.h); a test compares the
 * layout with otus.capture.PACKET_DESC. Declared here so this extension builds on its own. */
#define OTUS_PKT_FLAG_VLAN 0x0001u
typedef struct otus_pkt {
    int64_t  ts_ns;
    uint32_t offset;
    uint32_t caplen;
    uint32_t wirelen;
    uint32_t ifindex;
    uint16_t linktype;
    uint16_t vlan_tci;
    uint16_t vlan_tpid;
    uint16_t flags;
} otus_pkt_t;

/* Counters the block walk adds to (plain integers, read from Python by stats()). */
typedef struct otus_afp_counters {
    uint64_t packets;        /* descriptors produced */
    uint64_t bytes;          /* sum of wire lengths of those */
    uint64_t truncated;      /* caplen < wirelen (snap length or block too small) */
    uint64_t hw_timestamps;  /* packets stamped by the NIC */
    uint64_t unknown_link;   /* skipped: ARPHRD type without a pcap link type */
    uint64_t loopback_outgoing; /* skipped: lo's outgoing copy of a packet it also receives */
    uint64_t blocks;         /* blocks walked */
    uint64_t losing_blocks;  /* blocks the kernel marked TP_STATUS_LOSING */
} otus_afp_counters_t;

/* mmap the RX ring of fd (after PACKET_RX_RING); NULL and errno on failure. */
uint8_t *otus_afp_mmap(int fd, size_t len);
int otus_afp_munmap(uint8_t *map, size_t len);

/* SO_ATTACH_FILTER with a compiled program; 0 or -errno. */
int otus_afp_attach_filter(int fd, const struct bpf_insn *insns, unsigned int len);
/* SO_ATTACH_FILTER with a program that drops everything (used until the real one is set). */
int otus_afp_attach_drop_all(int fd);
/* bind to ifindex (0: all interfaces) for every protocol; 0 or -errno. */
int otus_afp_bind(int fd, int ifindex);

/* Ask the NIC behind ifname to timestamp every received packet (SIOCSHWTSTAMP); 0 or -errno. */
int otus_afp_enable_hwtstamp(int fd, const char *ifname);

/* Block state: 1 when the kernel handed the block to user space. */
int otus_afp_block_ready(const uint8_t *block);
uint32_t otus_afp_block_num_pkts(const uint8_t *block);
/* Give the block back to the kernel (TP_STATUS_KERNEL with a release barrier). */
void otus_afp_block_release(uint8_t *block);
/* Walk a ready block and fill at most max descriptors; offsets are relative to block. */
uint32_t otus_afp_walk(const uint8_t *block, uint32_t block_size, otus_pkt_t *out, uint32_t max,
                       otus_afp_counters_t *c);

/* Wait until fd is readable (1), stopfd is readable (2), timeout (0) or error (-errno). */
int otus_afp_poll(int fd, int stopfd, int timeout_ms);

/* pcap LINKTYPE_* for an ARPHRD_* device type, or -1 when Otus cannot decode it. */
int otus_afp_linktype(unsigned int arphrd);

#endif
