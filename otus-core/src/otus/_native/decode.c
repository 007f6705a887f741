/* Batch decoder: walks every packet of a raw batch, fills one otus_dec_t per packet, feeds IP
 * fragments to the reassembler and decodes completed datagrams in the same call, and
 * classifies each entry against the parsers' interests. Every read is bounds-checked against
 * the packet's end (min(caplen, buffer end), then trimmed to the IP/UDP lengths). */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "frag.h"

#define MAX_TUNNEL_DEPTH 4
#define MAX_VLANS 8
#define MAX_MPLS_LABELS 8
#define MAX_IPV6_EXT 16

enum {
    S_PACKETS = 0, S_BYTES, S_DECODED, S_NOT_IP, S_CLASSIFIED, S_UNCLASSIFIED,
    S_TUN_BASE, /* OTUS_TUN_COUNT - 1 tunnel counters follow */
    S_ERR_BASE = S_TUN_BASE + OTUS_TUN_COUNT - 1,
    S_COUNT = S_ERR_BASE + OTUS_ST_COUNT - OTUS_ST_FIRST_ERROR
};

struct otus_decoder {
    otus_dec_config_t cfg;
    otus_cls_t cls;
    otus_frag_table_t *frag;
    uint64_t st[S_COUNT];
    uint8_t *arena;
    uint64_t arena_len, arena_cap;
    otus_frag_dgram_t *done; /* datagram completed while decoding the current entry */
};

static const char *const STATUS_NAMES[OTUS_ST_COUNT] = {
    "ok", "fragment", "not_ip", "bad_descriptor", "unsupported_linktype", "truncated_l2",
    "too_many_vlans", "truncated_ip", "bad_ip_version", "bad_ip_header_len", "bad_ip_total_len",
    "bad_ip_ext", "truncated_l4", "bad_udp_len", "bad_tcp_offset", "bad_sctp_chunk",
    "truncated_tunnel", "bad_tunnel", "too_many_layers", "bad_fragment", "output_full",
};
static const char *const TUNNEL_NAMES[OTUS_TUN_COUNT] = {
    "none", "vxlan", "geneve", "gre", "erspan", "ipip",
};

const char *otus_status_name(uint32_t status) {
    return status < OTUS_ST_COUNT ? STATUS_NAMES[status] : "unknown";
}

/* ---- counters ------------------------------------------------------------------------- */

enum { F_FRAGMENTS = 0, F_REASSEMBLED, F_DUP, F_TEARDROP, F_TINY, F_REJECTED, F_EVICT_BASE,
       F_ACTIVE = F_EVICT_BASE + OTUS_FE_COUNT, F_MEMORY, F_COUNT };
#define N_STATS (S_COUNT + F_COUNT)

static char stat_names[N_STATS][48];
static int stat_names_ready;

static void build_stat_names(void) {
    static const char *base[] = {"packets", "bytes", "decoded", "ignored.not_ip", "classified",
                                 "unclassified"};
    for (int i = 0; i < S_TUN_BASE; i++) strcpy(stat_names[i], base[i]);
    for (int i = 1; i < OTUS_TUN_COUNT; i++)
        strcpy(stat_names[S_TUN_BASE + i - 1], "tunnel."), strcat(stat_names[S_TUN_BASE + i - 1], TUNNEL_NAMES[i]);
    for (int i = OTUS_ST_FIRST_ERROR; i < OTUS_ST_COUNT; i++) {
        char *s = stat_names[S_ERR_BASE + i - OTUS_ST_FIRST_ERROR];
        strcpy(s, "error.");
        strcat(s, STATUS_NAMES[i]);
    }
    static const char *fr[] = {"fragments", "reassembled", "frag_duplicate", "frag_attack.teardrop",
                               "frag_attack.tiny", "frag_rejected"};
    for (int i = 0; i < F_EVICT_BASE; i++) strcpy(stat_names[S_COUNT + i], fr[i]);
    for (int i = 0; i < OTUS_FE_COUNT; i++) {
        char *s = stat_names[S_COUNT + F_EVICT_BASE + i];
        strcpy(s, "frag_evicted.");
        strcat(s, otus_frag_reason_name((uint32_t)i));
    }
    strcpy(stat_names[S_COUNT + F_ACTIVE], "frag_active");
    strcpy(stat_names[S_COUNT + F_MEMORY], "frag_memory");
    stat_names_ready = 1;
}

uint32_t otus_decoder_stat_count(void) { return N_STATS; }

const char *otus_decoder_stat_name(uint32_t i) {
    if (!stat_names_ready) build_stat_names();
    return i < N_STATS ? stat_names[i] : "";
}

void otus_decoder_stats(const otus_decoder_t *d, uint64_t *out, uint32_t n) {
    uint64_t all[N_STATS];
    memcpy(all, d->st, sizeof d->st);
    const otus_frag_stats_t *fs = otus_frag_stats(d->frag);
    uint64_t *f = all + S_COUNT;
    f[F_FRAGMENTS] = fs->fragments;
    f[F_REASSEMBLED] = fs->reassembled;
    f[F_DUP] = fs->duplicates;
    f[F_TEARDROP] = fs->teardrop;
    f[F_TINY] = fs->tiny;
    f[F_REJECTED] = fs->rejected;
    for (int i = 0; i < OTUS_FE_COUNT; i++) f[F_EVICT_BASE + i] = fs->evicted[i];
    f[F_ACTIVE] = otus_frag_active(d->frag);
    f[F_MEMORY] = otus_frag_memory(d->frag);
    memcpy(out, all, (n < N_STATS ? n : N_STATS) * sizeof(uint64_t));
}

/* ---- life cycle ----------------------------------------------------------------------- */

otus_decoder_t *otus_decoder_new(const otus_dec_config_t *cfg) {
    otus_decoder_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->cfg = *cfg;
    if (d->cfg.n_vxlan_ports > OTUS_MAX_TUNNEL_PORTS) d->cfg.n_vxlan_ports = OTUS_MAX_TUNNEL_PORTS;
    if (d->cfg.n_geneve_ports > OTUS_MAX_TUNNEL_PORTS) d->cfg.n_geneve_ports = OTUS_MAX_TUNNEL_PORTS;
    otus_frag_limits_t lim = {cfg->frag_timeout_ns, cfg->frag_max_datagrams,
                              cfg->frag_max_fragments, cfg->frag_max_size, cfg->frag_max_memory};
    d->frag = otus_frag_new(&lim);
    if (!d->frag) {
        free(d);
        return NULL;
    }
    return d;
}

void otus_decoder_free(otus_decoder_t *d) {
    if (!d) return;
    otus_frag_free(d->frag);
    otus_cls_clear(&d->cls);
    free(d->arena);
    free(d);
}

int otus_decoder_add_interest(otus_decoder_t *d, uint32_t transports, uint32_t detector,
                              const uint16_t *ports, uint32_t n_ports, const uint8_t *prefixes,
                              const uint32_t *prefix_lens, uint32_t n_prefixes) {
    return otus_cls_add(&d->cls, transports, detector, ports, n_ports, prefixes, prefix_lens,
                        n_prefixes);
}

void otus_decoder_tick(otus_decoder_t *d, int64_t now_ns) { otus_frag_tick(d->frag, now_ns); }

uint8_t *otus_decoder_take_arena(otus_decoder_t *d, uint64_t *len) {
    uint8_t *a = d->arena;
    *len = d->arena_len;
    d->arena = NULL;
    d->arena_len = d->arena_cap = 0;
    return a;
}

void otus_arena_free(uint8_t *p) { free(p); }

/* ---- layers --------------------------------------------------------------------------- */

typedef struct ctx {
    otus_decoder_t *d;
    const uint8_t *p; /* buffer (batch or arena); offsets below are into it */
    otus_dec_t *o;
    int l2_depth;     /* Ethernet frames inside MPLS pseudowires so far (bounds the recursion) */
} ctx_t;

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
/* True when n bytes at off lie before end. */
static inline int has(uint32_t off, uint32_t n, uint32_t end) {
    return (uint64_t)off + n <= end;
}
static inline void fail(ctx_t *c, uint16_t st) {
    if (c->o->status == OTUS_ST_OK) c->o->status = st;
}

static void dec_eth(ctx_t *c, uint32_t off, uint32_t end);
static void dec_ipv4(ctx_t *c, uint32_t off, uint32_t end);
static void dec_ipv6(ctx_t *c, uint32_t off, uint32_t end);

static void dec_mpls(ctx_t *c, uint32_t off, uint32_t end);
static void dec_pppoe(ctx_t *c, uint32_t off, uint32_t end);

static void dec_ethertype(ctx_t *c, uint16_t type, uint32_t off, uint32_t end) {
    switch (type) {
    case 0x0800: dec_ipv4(c, off, end); break;
    case 0x86DD: dec_ipv6(c, off, end); break;
    case 0x8847: /* MPLS unicast */
    case 0x8848: dec_mpls(c, off, end); break; /* MPLS multicast */
    case 0x8864: dec_pppoe(c, off, end); break; /* PPPoE session (discovery 0x8863: no IP) */
    default: fail(c, OTUS_ST_NOT_IP); break;
    }
}

/* An MPLS label stack (RFC 3032) up to its bottom-of-stack entry, then what the labels carry:
 * IPv4 or IPv6 by the first nibble, or an Ethernet pseudowire behind its control word (a first
 * nibble of 0, RFC 4385). No label says which, so anything else is not IP. */
static void dec_mpls(ctx_t *c, uint32_t off, uint32_t end) {
    for (int n = 1;; n++) {
        if (!has(off, 4, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
        if (n > MAX_MPLS_LABELS) return fail(c, OTUS_ST_TOO_MANY_LAYERS);
        int bottom = c->p[off + 2] & 0x01;
        off += 4;
        if (bottom) break;
    }
    if (!has(off, 1, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
    switch (c->p[off] >> 4) {
    case 4: return dec_ipv4(c, off, end);
    case 6: return dec_ipv6(c, off, end);
    case 0:
        if (++c->l2_depth > MAX_TUNNEL_DEPTH) return fail(c, OTUS_ST_TOO_MANY_LAYERS);
        if (!has(off, 4, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
        return dec_eth(c, off + 4, end);
    default: return fail(c, OTUS_ST_NOT_IP);
    }
}

/* A PPPoE session header (RFC 2516: version/type, code, session, length) and the PPP protocol:
 * 0x0021 IPv4, 0x0057 IPv6; LCP, IPCP and the rest carry no IP. */
static void dec_pppoe(ctx_t *c, uint32_t off, uint32_t end) {
    if (!has(off, 8, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
    uint16_t proto = rd16(c->p + off + 6);
    if (proto == 0x0021) return dec_ipv4(c, off + 8, end);
    if (proto == 0x0057) return dec_ipv6(c, off + 8, end);
    return fail(c, OTUS_ST_NOT_IP);
}

static inline int is_vlan_tpid(uint16_t t) {
    return t == 0x8100 || t == 0x88a8 || t == 0x9100 || t == 0x9200;
}

static void add_vlan(otus_dec_t *o, uint16_t tci) {
    if (o->vlan_count == 0) o->vlan_outer = tci & 0x0fff;
    else if (o->vlan_count == 1) o->vlan_inner = tci & 0x0fff;
    if (o->vlan_count < 255) o->vlan_count++;
}

/* VLAN tags, then the ethertype; VLAN ids are recorded for the capture's own L2 only. */
static void dec_vlans(ctx_t *c, uint16_t type, uint32_t off, uint32_t end) {
    int n = 0;
    while (is_vlan_tpid(type)) {
        if (!has(off, 4, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
        if (++n > MAX_VLANS) return fail(c, OTUS_ST_TOO_MANY_VLANS);
        if (c->o->tunnel_depth == 0) add_vlan(c->o, rd16(c->p + off));
        type = rd16(c->p + off + 2);
        off += 4;
    }
    if (type < 0x0600) return fail(c, OTUS_ST_NOT_IP); /* 802.3 length: LLC, not IP */
    dec_ethertype(c, type, off, end);
}

static void dec_eth(ctx_t *c, uint32_t off, uint32_t end) {
    if (!has(off, 14, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
    dec_vlans(c, rd16(c->p + off + 12), off + 14, end);
}

static int enter_tunnel(ctx_t *c, uint8_t kind, uint32_t id) {
    otus_dec_t *o = c->o;
    if (o->tunnel_depth >= MAX_TUNNEL_DEPTH) {
        fail(c, OTUS_ST_TOO_MANY_LAYERS);
        return 0;
    }
    if (o->tunnel_depth == 0) {
        memcpy(o->outer_src, o->src_ip, 16);
        memcpy(o->outer_dst, o->dst_ip, 16);
        o->outer_version = o->ip_version;
        o->tunnel = kind;
        o->tunnel_id = id;
    }
    o->tunnel_depth++;
    o->src_port = o->dst_port = 0;
    c->d->st[S_TUN_BASE + kind - 1]++;
    return 1;
}

static void dec_inner_by_proto(ctx_t *c, uint16_t proto, uint32_t off, uint32_t end) {
    switch (proto) {
    case 0x6558: dec_eth(c, off, end); break;
    case 0x0800: dec_ipv4(c, off, end); break;
    case 0x86DD: dec_ipv6(c, off, end); break;
    default: fail(c, OTUS_ST_BAD_TUNNEL); break;
    }
}

static void dec_vxlan(ctx_t *c, uint32_t off, uint32_t end) {
    if (!has(off, 8, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
    if (!(c->p[off] & 0x08)) return; /* VNI flag clear: not VXLAN, keep it as a UDP datagram */
    if (!enter_tunnel(c, OTUS_TUN_VXLAN, rd32(c->p + off + 4) >> 8)) return;
    dec_eth(c, off + 8, end);
}

static void dec_geneve(ctx_t *c, uint32_t off, uint32_t end) {
    if (!has(off, 8, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
    const uint8_t *g = c->p + off;
    if (g[0] >> 6) return fail(c, OTUS_ST_BAD_TUNNEL); /* only version 0 exists */
    uint32_t hl = 8 + (uint32_t)(g[0] & 0x3f) * 4;
    if (!has(off, hl, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
    if (!enter_tunnel(c, OTUS_TUN_GENEVE, rd32(g + 4) >> 8)) return;
    dec_inner_by_proto(c, rd16(g + 2), off + hl, end);
}

static void dec_gre(ctx_t *c, uint32_t off, uint32_t end) {
    const otus_dec_config_t *cfg = &c->d->cfg;
    if (!has(off, 4, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
    const uint8_t *g = c->p + off;
    uint16_t flags = rd16(g), proto = rd16(g + 2);
    /* Version 1 is PPTP's enhanced GRE and routing (RFC 1701) is obsolete: left undecoded. */
    if ((flags & 7) != 0 || (flags & 0x4000)) return;
    uint32_t hl = 4, key = 0;
    if (flags & 0x8000) hl += 4;
    if (flags & 0x2000) {
        if (!has(off, hl + 4, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
        key = rd32(g + hl);
        hl += 4;
    }
    if (flags & 0x1000) hl += 4;
    if (!has(off, hl, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
    uint32_t x = off + hl;
    if (proto == 0x88BE || proto == 0x22EB) {
        if (!cfg->erspan) return;
        if (proto == 0x88BE && !(flags & 0x1000)) { /* type I: no ERSPAN header */
            if (!enter_tunnel(c, OTUS_TUN_ERSPAN, 0)) return;
            return dec_eth(c, x, end);
        }
        uint32_t eh = proto == 0x88BE ? 8 : 12;
        if (!has(x, eh, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
        const uint8_t *e = c->p + x;
        uint8_t ver = e[0] >> 4;
        if ((proto == 0x88BE && ver != 1) || (proto == 0x22EB && ver != 2))
            return fail(c, OTUS_ST_BAD_TUNNEL);
        uint32_t session = rd16(e + 2) & 0x03ff;
        if (proto == 0x22EB) {
            if ((e[10] >> 2) & 0x1f) return fail(c, OTUS_ST_BAD_TUNNEL); /* frame type not Ethernet */
            if (e[11] & 1) eh += 8; /* optional platform-specific subheader */
            if (!has(x, eh, end)) return fail(c, OTUS_ST_TRUNCATED_TUNNEL);
        }
        if (!enter_tunnel(c, OTUS_TUN_ERSPAN, session)) return;
        return dec_eth(c, x + eh, end);
    }
    if (proto != 0x0800 && proto != 0x86DD && proto != 0x6558) return;
    if (!enter_tunnel(c, OTUS_TUN_GRE, key)) return;
    dec_inner_by_proto(c, proto, x, end);
}

static int port_in(uint16_t port, const uint16_t *ports, uint16_t n) {
    for (uint16_t i = 0; i < n; i++)
        if (ports[i] == port) return 1;
    return 0;
}

static void dec_l4(ctx_t *c, uint8_t proto, uint32_t off, uint32_t end) {
    otus_dec_t *o = c->o;
    const otus_dec_config_t *cfg = &c->d->cfg;
    const uint8_t *p = c->p;
    o->ip_proto = proto;
    o->payload_offset = off;
    o->payload_len = end - off;
    switch (proto) {
    case 17: {
        if (!has(off, 8, end)) return fail(c, OTUS_ST_TRUNCATED_L4);
        o->src_port = rd16(p + off);
        o->dst_port = rd16(p + off + 2);
        uint32_t ulen = rd16(p + off + 4);
        if (ulen < 8 || ulen > end - off) return fail(c, OTUS_ST_BAD_UDP_LEN);
        o->payload_offset = off + 8;
        o->payload_len = ulen - 8;
        end = off + ulen;
        if (cfg->vxlan && port_in(o->dst_port, cfg->vxlan_ports, cfg->n_vxlan_ports))
            dec_vxlan(c, off + 8, end);
        else if (cfg->geneve && port_in(o->dst_port, cfg->geneve_ports, cfg->n_geneve_ports))
            dec_geneve(c, off + 8, end);
        return;
    }
    case 6: {
        if (!has(off, 20, end)) return fail(c, OTUS_ST_TRUNCATED_L4);
        o->src_port = rd16(p + off);
        o->dst_port = rd16(p + off + 2);
        o->tcp_seq = rd32(p + off + 4);
        o->tcp_ack = rd32(p + off + 8);
        o->tcp_flags = p[off + 13];
        uint32_t doff = (uint32_t)(p[off + 12] >> 4) * 4;
        if (doff < 20 || !has(off, doff, end)) return fail(c, OTUS_ST_BAD_TCP_OFFSET);
        o->payload_offset = off + doff;
        o->payload_len = end - off - doff;
        return;
    }
    case 132: {
        if (!has(off, 12, end)) return fail(c, OTUS_ST_TRUNCATED_L4);
        o->src_port = rd16(p + off);
        o->dst_port = rd16(p + off + 2);
        o->payload_offset = end;
        o->payload_len = 0;
        uint32_t ch = off + 12;
        while (has(ch, 4, end)) {
            uint8_t type = p[ch];
            uint32_t clen = rd16(p + ch + 2);
            if (clen < 4) return fail(c, OTUS_ST_BAD_SCTP_CHUNK);
            if (!has(ch, clen, end)) return fail(c, OTUS_ST_TRUNCATED_L4);
            if (type == 0 || type == 64) { /* DATA (RFC 9260) or I-DATA (RFC 8260) */
                uint32_t hl = type == 0 ? 16 : 20;
                if (clen < hl) return fail(c, OTUS_ST_BAD_SCTP_CHUNK);
                o->payload_offset = ch + hl;
                o->payload_len = clen - hl;
                return;
            }
            ch += (clen + 3) & ~3u;
        }
        return;
    }
    case 1:
    case 58:
        if (!has(off, 8, end)) return fail(c, OTUS_ST_TRUNCATED_L4);
        o->icmp_type = p[off];
        o->icmp_code = p[off + 1];
        o->payload_offset = off + 8;
        o->payload_len = end - off - 8;
        return;
    case 4:
    case 41:
        if (!cfg->ipip || !enter_tunnel(c, OTUS_TUN_IPIP, 0)) return;
        if (proto == 4) dec_ipv4(c, off, end); else dec_ipv6(c, off, end);
        return;
    case 47:
        if (cfg->gre) dec_gre(c, off, end);
        return;
    default:
        return;
    }
}

static void set_addr(otus_dec_t *o, const uint8_t *src, const uint8_t *dst, uint32_t n) {
    memset(o->src_ip, 0, 16);
    memset(o->dst_ip, 0, 16);
    memcpy(o->src_ip, src, n);
    memcpy(o->dst_ip, dst, n);
}

static void offer_fragment(ctx_t *c, otus_frag_in_t *in) {
    otus_dec_t *o = c->o;
    o->frag = OTUS_FRAG_FRAGMENT;
    o->frag_id = in->id;
    o->frag_offset = (uint16_t)in->offset;
    o->frag_more = (uint8_t)in->more;
    o->ip_proto = in->proto;
    o->payload_offset = (uint32_t)(in->data - c->p);
    o->payload_len = in->len;
    if (in->len == 0 || (in->more && (in->len & 7))) return fail(c, OTUS_ST_BAD_FRAGMENT);
    o->status = OTUS_ST_FRAGMENT;
    if (!c->d->cfg.reassembly) return;
    in->ts_ns = o->ts_ns;
    otus_frag_dgram_t *g = otus_frag_insert(c->d->frag, in);
    if (g) {
        if (c->d->done) otus_frag_release(c->d->frag, c->d->done); /* cannot happen: one per entry */
        c->d->done = g;
    }
}

static void dec_ipv4(ctx_t *c, uint32_t off, uint32_t end) {
    otus_dec_t *o = c->o;
    const uint8_t *p = c->p + off;
    if (!has(off, 1, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    if ((p[0] >> 4) != 4) return fail(c, OTUS_ST_BAD_IP_VERSION);
    if (!has(off, 20, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    uint32_t ihl = (uint32_t)(p[0] & 15) * 4;
    if (ihl < 20) return fail(c, OTUS_ST_BAD_IP_HEADER_LEN);
    if (!has(off, ihl, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    uint32_t tot = rd16(p + 2);
    if (tot < ihl) return fail(c, OTUS_ST_BAD_IP_TOTAL_LEN);
    o->ip_version = 4;
    o->ip_proto = p[9];
    o->l3_offset = off;
    set_addr(o, p + 12, p + 16, 4);
    if (!has(off, tot, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    end = off + tot; /* Ethernet padding never leaks into the payload */
    uint16_t fo = rd16(p + 6);
    if (fo & 0x3fff) {
        otus_frag_in_t in = {0};
        in.version = 4;
        in.proto = p[9];
        in.more = (fo & 0x2000) != 0;
        in.src = p + 12;
        in.dst = p + 16;
        in.id = rd16(p + 4);
        in.offset = (uint32_t)(fo & 0x1fff) * 8;
        in.hdr = p;
        in.hdr_len = ihl;
        in.data = p + ihl;
        in.len = tot - ihl;
        return offer_fragment(c, &in);
    }
    dec_l4(c, p[9], off + ihl, end);
}

static void dec_ipv6(ctx_t *c, uint32_t off, uint32_t end) {
    otus_dec_t *o = c->o;
    const uint8_t *p = c->p + off;
    if (!has(off, 1, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    if ((p[0] >> 4) != 6) return fail(c, OTUS_ST_BAD_IP_VERSION);
    if (!has(off, 40, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    uint32_t plen = rd16(p + 4);
    uint8_t nh = p[6];
    o->ip_version = 6;
    o->ip_proto = nh;
    o->l3_offset = off;
    set_addr(o, p + 8, p + 24, 16);
    if (plen == 0 && nh == 0) return fail(c, OTUS_ST_BAD_IP_TOTAL_LEN); /* jumbogram: unsupported */
    if (!has(off, 40 + plen, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
    end = off + 40 + plen;
    uint32_t cur = off + 40, nh_pos = off + 6;
    for (int n = 0; n < MAX_IPV6_EXT; n++) {
        uint32_t hl;
        switch (nh) {
        case 0: case 43: case 60: case 135: case 139: case 140:
            if (!has(cur, 8, end)) return fail(c, OTUS_ST_BAD_IP_EXT);
            hl = ((uint32_t)c->p[cur + 1] + 1) * 8;
            break;
        case 51: /* AH counts 4-byte words minus 2 */
            if (!has(cur, 8, end)) return fail(c, OTUS_ST_BAD_IP_EXT);
            hl = ((uint32_t)c->p[cur + 1] + 2) * 4;
            break;
        case 44: {
            if (!has(cur, 8, end)) return fail(c, OTUS_ST_BAD_IP_EXT);
            const uint8_t *f = c->p + cur;
            uint16_t om = rd16(f + 2);
            if ((om & 0xfff8) == 0 && !(om & 1)) { /* atomic fragment (RFC 6946) */
                nh_pos = cur;
                nh = f[0];
                cur += 8;
                continue;
            }
            otus_frag_in_t in = {0};
            in.version = 6;
            in.proto = f[0];
            in.more = om & 1;
            in.src = p + 8;
            in.dst = p + 24;
            in.id = rd32(f + 4);
            in.offset = om & 0xfff8;
            in.hdr = p;
            in.hdr_len = cur - off;
            in.nh_pos = nh_pos - off;
            in.data = f + 8;
            in.len = end - cur - 8;
            return offer_fragment(c, &in);
        }
        default:
            o->ip_proto = nh;
            return dec_l4(c, nh, cur, end);
        }
        if (!has(cur, hl, end)) return fail(c, OTUS_ST_BAD_IP_EXT);
        nh_pos = cur;
        nh = c->p[cur];
        cur += hl;
    }
    fail(c, OTUS_ST_BAD_IP_EXT);
}

static int null_family(const uint8_t *p, int *v6) {
    uint32_t le = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    uint32_t be = rd32(p);
    uint32_t fam = le < 256 ? le : be;
    if (fam == 2) { *v6 = 0; return 1; }
    if (fam == 10 || fam == 24 || fam == 28 || fam == 30) { *v6 = 1; return 1; }
    return 0;
}

static void dec_linktype(ctx_t *c, uint16_t linktype, uint32_t off, uint32_t end) {
    const uint8_t *p = c->p;
    switch (linktype) {
    case 1: return dec_eth(c, off, end);
    case 12:  /* DLT_RAW's value on most systems, found in files; libpcap reads it as 101 */
    case 101: /* raw IP: version from the first nibble */
        if (!has(off, 1, end)) return fail(c, OTUS_ST_TRUNCATED_IP);
        if ((p[off] >> 4) == 4) return dec_ipv4(c, off, end);
        if ((p[off] >> 4) == 6) return dec_ipv6(c, off, end);
        return fail(c, OTUS_ST_BAD_IP_VERSION);
    case 228: return dec_ipv4(c, off, end);
    case 229: return dec_ipv6(c, off, end);
    case 113: /* Linux cooked v1: protocol at offset 14 */
        if (!has(off, 16, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
        return dec_vlans(c, rd16(p + off + 14), off + 16, end);
    case 276: /* Linux cooked v2: protocol at offset 0 */
        if (!has(off, 20, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
        return dec_vlans(c, rd16(p + off), off + 20, end);
    case 0:   /* BSD loopback: address family in the capturing host's byte order */
    case 108: { /* OpenBSD loopback: network order */
        int v6;
        if (!has(off, 4, end)) return fail(c, OTUS_ST_TRUNCATED_L2);
        if (!null_family(p + off, &v6)) return fail(c, OTUS_ST_NOT_IP);
        return v6 ? dec_ipv6(c, off + 4, end) : dec_ipv4(c, off + 4, end);
    }
    default: return fail(c, OTUS_ST_UNSUPPORTED_LINKTYPE);
    }
}

/* ---- batch ---------------------------------------------------------------------------- */

static void finish(otus_decoder_t *d, otus_dec_t *o, uint32_t k, int32_t *idx, uint32_t stride,
                   uint32_t *counts) {
    if (o->status == OTUS_ST_OK) {
        d->st[S_DECODED]++;
        uint32_t m = o->match;
        if (m) {
            o->cls = (int16_t)__builtin_ctz(m);
            d->st[S_CLASSIFIED]++;
            for (uint32_t b = m; b; b &= b - 1) {
                uint32_t i = (uint32_t)__builtin_ctz(b);
                idx[(uint64_t)i * stride + counts[i]++] = (int32_t)k;
            }
        } else {
            d->st[S_UNCLASSIFIED]++;
        }
    } else if (o->status == OTUS_ST_NOT_IP) {
        d->st[S_NOT_IP]++;
    } else if (o->status >= OTUS_ST_FIRST_ERROR) {
        d->st[S_ERR_BASE + o->status - OTUS_ST_FIRST_ERROR]++;
    }
}

static void classify(otus_decoder_t *d, const uint8_t *buf, otus_dec_t *o) {
    if (o->status != OTUS_ST_OK || !d->cls.n) return;
    uint32_t t = o->ip_proto == 17 ? OTUS_T_UDP : o->ip_proto == 6 ? OTUS_T_TCP
               : o->ip_proto == 132 ? OTUS_T_SCTP : 0;
    if (!t) return;
    o->match = otus_cls_match(&d->cls, t, o->src_port, o->dst_port, buf + o->payload_offset,
                              o->payload_len);
}

static void init_entry(otus_dec_t *o, const otus_pkt_t *pk, uint32_t i) {
    memset(o, 0, sizeof *o);
    o->ts_ns = pk->ts_ns;
    o->pkt = i;
    o->ifindex = pk->ifindex;
    o->cls = -1;
    if (pk->flags & OTUS_PKT_FLAG_VLAN) add_vlan(o, pk->vlan_tci);
}

static int arena_reserve(otus_decoder_t *d, uint64_t n) {
    if (d->arena_len + n <= d->arena_cap) return 1;
    uint64_t nc = d->arena_cap ? d->arena_cap * 2 : 65536;
    while (nc < d->arena_len + n) nc *= 2;
    uint8_t *na = realloc(d->arena, nc);
    if (!na) return 0;
    d->arena = na;
    d->arena_cap = nc;
    return 1;
}

uint32_t otus_decode(otus_decoder_t *d, const uint8_t *buf, uint64_t buflen,
                     const otus_pkt_t *pkts, uint32_t n, otus_dec_t *out, uint32_t cap,
                     int32_t *idx, uint32_t stride, uint32_t *counts) {
    free(d->arena);
    d->arena = NULL;
    d->arena_len = d->arena_cap = 0;
    for (uint32_t i = 0; i < OTUS_MAX_INTERESTS; i++) counts[i] = 0;
    if (n > cap) n = cap;
    uint32_t k = n; /* next free entry for reassembled datagrams */
    for (uint32_t i = 0; i < n; i++) {
        const otus_pkt_t *pk = &pkts[i];
        otus_dec_t *o = &out[i];
        init_entry(o, pk, i);
        d->st[S_PACKETS]++;
        d->st[S_BYTES] += pk->caplen;
        ctx_t c = {d, buf, o};
        if (pk->offset > buflen || pk->caplen > buflen - pk->offset) {
            o->status = OTUS_ST_BAD_DESCRIPTOR;
        } else {
            dec_linktype(&c, pk->linktype, pk->offset, pk->offset + pk->caplen);
            classify(d, buf, o);
        }
        finish(d, o, i, idx, stride, counts);
        /* A completed datagram re-enters the decoder at its IP header, keeping the L2/tunnel
         * context of the fragment that completed it; it may itself complete another. */
        const otus_dec_t *ctxsrc = o;
        while (d->done) {
            otus_frag_dgram_t *g = d->done;
            d->done = NULL;
            uint32_t size = otus_frag_size(g);
            if (k >= cap || !arena_reserve(d, size)) {
                otus_frag_release(d->frag, g);
                d->st[S_ERR_BASE + OTUS_ST_OUTPUT_FULL - OTUS_ST_FIRST_ERROR]++;
                break;
            }
            uint32_t at = (uint32_t)d->arena_len;
            otus_frag_assemble(g, d->arena + at);
            d->arena_len += size;
            otus_frag_release(d->frag, g);
            otus_dec_t *r = &out[k];
            *r = *ctxsrc;
            r->status = OTUS_ST_OK;
            r->frag = OTUS_FRAG_REASSEMBLED;
            r->frag_offset = 0;
            r->frag_more = 0;
            r->match = 0;
            r->cls = -1;
            r->buf = 1;
            ctx_t rc = {d, d->arena, r};
            if (r->tunnel_depth == 0) r->src_port = r->dst_port = 0;
            if ((d->arena[at] >> 4) == 4) dec_ipv4(&rc, at, at + size);
            else dec_ipv6(&rc, at, at + size);
            classify(d, d->arena, r);
            finish(d, r, k, idx, stride, counts);
            ctxsrc = r;
            k++;
        }
    }
    return k;
}
