/* AF_PACKET TPACKET_V3 helpers: see afpacket.h. */
#define _GNU_SOURCE
#include "afpacket.h"

#include <errno.h>
#include <net/if.h> /* before the linux/ headers, which then skip their copies */
#include <linux/filter.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/net_tstamp.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#define LT_ETHERNET 1
#define LT_RAW 101
#define LT_IEEE802_11 105
#define LT_IEEE802_11_RADIOTAP 127

uint8_t *otus_afp_mmap(int fd, size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    return p == MAP_FAILED ? NULL : (uint8_t *)p;
}

int otus_afp_munmap(uint8_t *map, size_t len)
{
    return munmap(map, len) == 0 ? 0 : -errno;
}

int otus_afp_attach_filter(int fd, const struct bpf_insn *insns, unsigned int len)
{
    /* struct bpf_insn (libpcap) and struct sock_filter (kernel) have the same layout. */
    struct sock_fprog prog = {.len = (unsigned short)len, .filter = (struct sock_filter *)insns};
    if (len == 0 || len > BPF_MAXINSNS)
        return -EINVAL;
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0 ? 0 : -errno;
}

int otus_afp_attach_drop_all(int fd)
{
    struct sock_filter drop = BPF_STMT(BPF_RET | BPF_K, 0);
    struct sock_fprog prog = {.len = 1, .filter = &drop};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) == 0 ? 0 : -errno;
}

int otus_afp_bind(int fd, int ifindex)
{
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    return bind(fd, (struct sockaddr *)&sll, sizeof sll) == 0 ? 0 : -errno;
}

int otus_afp_enable_hwtstamp(int fd, const char *ifname)
{
    struct hwtstamp_config cfg = {.flags = 0, .tx_type = HWTSTAMP_TX_OFF,
                                  .rx_filter = HWTSTAMP_FILTER_ALL};
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
    ifr.ifr_data = (char *)&cfg;
    return ioctl(fd, SIOCSHWTSTAMP, &ifr) == 0 ? 0 : -errno;
}

int otus_afp_block_ready(const uint8_t *block)
{
    const struct tpacket_block_desc *bd = (const struct tpacket_block_desc *)block;
    return (__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER) != 0;
}

uint32_t otus_afp_block_num_pkts(const uint8_t *block)
{
    return ((const struct tpacket_block_desc *)block)->hdr.bh1.num_pkts;
}

void otus_afp_block_release(uint8_t *block)
{
    struct tpacket_block_desc *bd = (struct tpacket_block_desc *)block;
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
}

int otus_afp_linktype(unsigned int arphrd)
{
    switch (arphrd) {
    case ARPHRD_ETHER:
    case ARPHRD_LOOPBACK: /* Linux loopback frames carry a (zeroed) Ethernet header */
    case ARPHRD_IEEE802:
        return LT_ETHERNET;
    case ARPHRD_NONE: /* tun, wireguard: the frame starts at the IP header */
    case ARPHRD_RAWIP:
    case ARPHRD_TUNNEL:
    case ARPHRD_TUNNEL6:
    case ARPHRD_SIT:
    case ARPHRD_PPP:
        return LT_RAW;
    case ARPHRD_IEEE80211:
        return LT_IEEE802_11;
    case ARPHRD_IEEE80211_RADIOTAP:
        return LT_IEEE802_11_RADIOTAP;
    default:
        return -1;
    }
}

uint32_t otus_afp_walk(const uint8_t *block, uint32_t block_size, otus_pkt_t *out, uint32_t max,
                       otus_afp_counters_t *c)
{
    const struct tpacket_block_desc *bd = (const struct tpacket_block_desc *)block;
    uint32_t n = bd->hdr.bh1.num_pkts;
    uint32_t off = bd->hdr.bh1.offset_to_first_pkt;
    uint32_t count = 0;

    c->blocks++;
    if (bd->hdr.bh1.block_status & TP_STATUS_LOSING)
        c->losing_blocks++;
    for (uint32_t i = 0; i < n && count < max; i++) {
        /* Never trust offsets blindly: a corrupt block must not make us read past its end. */
        if (off < sizeof(struct tpacket_block_desc) ||
            off > block_size - sizeof(struct tpacket3_hdr))
            break;
        const struct tpacket3_hdr *h = (const struct tpacket3_hdr *)(block + off);
        const struct sockaddr_ll *sll =
            (const struct sockaddr_ll *)((const uint8_t *)h + TPACKET_ALIGN(sizeof *h));
        uint32_t data = off + h->tp_mac;
        uint32_t caplen = h->tp_snaplen;
        if (data > block_size || caplen > block_size - data)
            break;
        int lt = otus_afp_linktype(sll->sll_hatype);
        if (sll->sll_hatype == ARPHRD_LOOPBACK && sll->sll_pkttype == PACKET_OUTGOING) {
            /* Loopback shows every packet twice, leaving and arriving; keep the arrival
             * (as libpcap does). */
            c->loopback_outgoing++;
        } else if (lt < 0) {
            c->unknown_link++;
        } else {
            otus_pkt_t *p = &out[count++];
            p->ts_ns = (int64_t)h->tp_sec * 1000000000LL + h->tp_nsec;
            p->offset = data;
            p->caplen = caplen;
            p->wirelen = h->tp_len;
            p->ifindex = (uint32_t)sll->sll_ifindex;
            p->linktype = (uint16_t)lt;
            if (h->tp_status & TP_STATUS_VLAN_VALID) {
                p->vlan_tci = h->hv1.tp_vlan_tci;
                p->vlan_tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid
                                                                          : ETH_P_8021Q;
                p->flags = OTUS_PKT_FLAG_VLAN;
            } else {
                p->vlan_tci = 0;
                p->vlan_tpid = 0;
                p->flags = 0;
            }
            c->packets++;
            c->bytes += h->tp_len;
            if (caplen < h->tp_len)
                c->truncated++;
            if (h->tp_status & TP_STATUS_TS_RAW_HARDWARE)
                c->hw_timestamps++;
        }
        if (h->tp_next_offset == 0)
            break;
        off += h->tp_next_offset;
    }
    return count;
}

int otus_afp_poll(int fd, int stopfd, int timeout_ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN | POLLERR}, {.fd = stopfd, .events = POLLIN}};
    int r = poll(p, stopfd >= 0 ? 2 : 1, timeout_ms);
    if (r < 0)
        return errno == EINTR ? 0 : -errno;
    if (stopfd >= 0 && (p[1].revents & POLLIN))
        return 2;
    if (p[0].revents & (POLLERR | POLLNVAL))
        return p[0].revents & POLLNVAL ? -EBADF : 1;
    return r > 0 ? 1 : 0;
}
