/* pcap / pcapng record walker; see pcap.h and docs/pcap.md.
 * Formats: https://www.tcpdump.org/manpages/pcap-savefile.5.html and
 * https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pcap.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAP_HDR_LEN 24u
#define PCAP_REC_LEN 16u
#define PCAP_MAX_CAPLEN 262144u /* libpcap's bound for every link type but a few */

#define NG_SHB 0x0A0D0D0Au /* a palindrome: readable before the byte order is known */
#define NG_BOM 0x1A2B3C4Du
#define NG_IDB 1u
#define NG_OPB 2u
#define NG_SPB 3u
#define NG_EPB 6u
#define NG_MAX_BLOCK (16u * 1024u * 1024u) /* libpcap's default maximum block size */
#define NG_OPT_TSRESOL 9u
#define NG_OPT_TSOFFSET 14u

static const uint64_t POW10[20] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
    100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
    10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
    100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull};

static inline uint16_t rd16(const uint8_t *p, uint32_t sw) {
    uint16_t v;
    memcpy(&v, p, 2);
    return sw ? __builtin_bswap16(v) : v;
}

static inline uint32_t rd32(const uint8_t *p, uint32_t sw) {
    uint32_t v;
    memcpy(&v, p, 4);
    return sw ? __builtin_bswap32(v) : v;
}

static inline uint64_t rd64(const uint8_t *p, uint32_t sw) {
    uint64_t v;
    memcpy(&v, p, 8);
    return sw ? __builtin_bswap64(v) : v;
}

/* Record the damage: what ("truncated record 12") and the details; returns OTUS_PCAP_ERROR. */
static int fail(otus_pcap_state_t *st, size_t pos, const char *kind, const char *detail, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(otus_pcap_state_t *st, size_t pos, const char *kind, const char *detail, ...) {
    va_list ap;
    st->err_pos = pos;
    if (st->format == 0)
        snprintf(st->err_what, sizeof st->err_what, "%s file header", kind);
    else
        snprintf(st->err_what, sizeof st->err_what, "%s %s %llu", kind,
                 st->format == 1 ? "record" : "block", (unsigned long long)st->records + 1);
    va_start(ap, detail);
    vsnprintf(st->err_detail, sizeof st->err_detail, detail, ap);
    va_end(ap);
    return OTUS_PCAP_ERROR;
}

/* Bytes missing: at eof the file is truncated, otherwise ask for more (need = whole record). */
static int short_read(otus_pcap_state_t *st, size_t pos, size_t avail, int eof, uint64_t need,
                      const char *what, uint64_t said) {
    if (!eof) {
        st->need = need;
        return OTUS_PCAP_NEED_MORE;
    }
    if (said)
        return fail(st, pos, "truncated", "%s says %llu bytes, %zu remain", what,
                    (unsigned long long)said, avail);
    return fail(st, pos, "truncated", "%zu bytes of a %llu-byte %s", avail,
                (unsigned long long)need, what);
}

static int64_t ng_ts(const otus_pcap_iface_t *f, uint64_t t) {
    uint32_t e = f->tsres_exp;
    int64_t ns;
    if (f->tsres_pow2)
        ns = (int64_t)(((unsigned __int128)t * 1000000000u) >> e);
    else if (e <= 9)
        ns = (int64_t)(t * POW10[9 - e]);
    else
        ns = (int64_t)(t / POW10[e - 9]);
    return ns + f->ts_offset_ns;
}

static int pcap_header(otus_pcap_state_t *st, const uint8_t *p, size_t pos, size_t avail, int eof,
                       uint32_t magic) {
    if (avail < PCAP_HDR_LEN)
        return short_read(st, pos, avail, eof, PCAP_HDR_LEN, "pcap file header", 0);
    st->swapped = magic != PCAP_MAGIC_US && magic != PCAP_MAGIC_NS;
    st->nsec = (st->swapped ? __builtin_bswap32(magic) : magic) == PCAP_MAGIC_NS;
    st->major = rd16(p + 4, st->swapped);
    st->minor = rd16(p + 6, st->swapped);
    st->snaplen = rd32(p + 16, st->swapped);
    /* The upper bits of "network" hold FCS information; the link type is the low 16 bits. */
    st->linktype = rd32(p + 20, st->swapped) & 0xffffu;
    st->format = 1;
    return OTUS_PCAP_LIMIT;
}

static int ng_idb(otus_pcap_state_t *st, const uint8_t *p, size_t pos, uint32_t blen) {
    uint32_t sw = st->swapped, off = 16, end = blen - 4;
    otus_pcap_iface_t *f;
    if (blen < 20)
        return fail(st, pos, "corrupt", "interface description block of %u bytes (min 20)", blen);
    if (st->n_if >= OTUS_PCAP_MAX_IF)
        return fail(st, pos, "corrupt", "more than %d interfaces in one section",
                    OTUS_PCAP_MAX_IF);
    f = &st->ifs[st->n_if];
    f->linktype = rd16(p + 8, sw);
    f->snaplen = rd32(p + 12, sw);
    f->tsres_pow2 = 0;
    f->tsres_exp = 6;
    f->ts_offset_ns = 0;
    while (off + 4 <= end) {
        uint32_t code = rd16(p + off, sw), olen = rd16(p + off + 2, sw);
        if (code == 0)
            break;
        if (off + 4 + olen > end)
            return fail(st, pos, "corrupt", "option %u of %u bytes overruns the block", code,
                        olen);
        if (code == NG_OPT_TSRESOL && olen >= 1) {
            uint8_t v = p[off + 4];
            f->tsres_pow2 = v >> 7;
            f->tsres_exp = v & 0x7fu;
            if ((f->tsres_pow2 && f->tsres_exp > 63) || (!f->tsres_pow2 && f->tsres_exp > 19))
                return fail(st, pos, "corrupt", "unsupported if_tsresol 0x%02x", v);
        } else if (code == NG_OPT_TSOFFSET && olen == 8) {
            f->ts_offset_ns = (int64_t)rd64(p + off + 4, sw) * 1000000000;
        }
        off += 4 + ((olen + 3u) & ~3u);
    }
    st->n_if++;
    return OTUS_PCAP_LIMIT;
}

int otus_pcap_walk(otus_pcap_state_t *st, const uint8_t *buf, size_t pos, size_t len, int eof,
                   otus_pkt_t *out, uint32_t max_pkts, uint64_t max_bytes, int64_t max_span_ns,
                   size_t *consumed, uint32_t *npkts) {
    size_t p = pos;
    uint32_t n = 0;
    uint64_t bytes = 0;
    int64_t first_ts = 0;
    int rc = OTUS_PCAP_LIMIT;

    st->need = 0;
    for (;;) {
        const uint8_t *r = buf + p;
        size_t avail = len - p;
        uint32_t caplen, wirelen, ifindex = 0, linktype;
        size_t data;
        int64_t ts;

        if (st->format == 0) {
            uint32_t magic;
            if (avail < 4) {
                if (eof && avail == 0 && p == 0) {
                    rc = fail(st, p, "empty", "no pcap or pcapng header");
                    break;
                }
                rc = short_read(st, p, avail, eof, PCAP_HDR_LEN, "file header", 0);
                break;
            }
            memcpy(&magic, r, 4);
            if (magic == PCAP_MAGIC_US || magic == PCAP_MAGIC_NS ||
                magic == __builtin_bswap32(PCAP_MAGIC_US) ||
                magic == __builtin_bswap32(PCAP_MAGIC_NS)) {
                rc = pcap_header(st, r, p, avail, eof, magic);
                if (rc != OTUS_PCAP_LIMIT)
                    break;
                p += PCAP_HDR_LEN;
                continue;
            }
            if (magic != NG_SHB) {
                rc = fail(st, p, "unknown", "not a pcap or pcapng file (magic %02x %02x %02x %02x)",
                          r[0], r[1], r[2], r[3]);
                break;
            }
            /* a pcapng file: the section header block is walked below like any block */
        }

        if (st->format == 1) {
            if (avail < PCAP_REC_LEN) {
                if (avail == 0) {
                    rc = eof ? OTUS_PCAP_END : OTUS_PCAP_NEED_MORE;
                    if (!eof)
                        st->need = PCAP_REC_LEN;
                    break;
                }
                rc = short_read(st, p, avail, eof, PCAP_REC_LEN, "record header", 0);
                break;
            }
            caplen = rd32(r + 8, st->swapped);
            wirelen = rd32(r + 12, st->swapped);
            {
                uint32_t snap = st->snaplen > NG_MAX_BLOCK ? NG_MAX_BLOCK : st->snaplen;
                uint32_t max = snap > PCAP_MAX_CAPLEN ? snap : PCAP_MAX_CAPLEN;
                if (caplen > max) {
                    rc = fail(st, p, "corrupt", "captured length %u exceeds the limit %u", caplen,
                              max);
                    break;
                }
            }
            if (avail - PCAP_REC_LEN < caplen) {
                rc = short_read(st, p, avail - PCAP_REC_LEN, eof, PCAP_REC_LEN + (uint64_t)caplen,
                                "header", caplen);
                break;
            }
            ts = (int64_t)rd32(r, st->swapped) * 1000000000 +
                 (int64_t)rd32(r + 4, st->swapped) * (st->nsec ? 1 : 1000);
            linktype = st->linktype;
            data = p + PCAP_REC_LEN;
            if (n && (n >= max_pkts || bytes + caplen > max_bytes ||
                      (max_span_ns > 0 && ts - first_ts > max_span_ns)))
                break;
            p = data + caplen;
        } else {
            uint32_t type, blen, sw;
            if (avail < 12) {
                if (avail == 0) {
                    rc = eof ? OTUS_PCAP_END : OTUS_PCAP_NEED_MORE;
                    if (!eof)
                        st->need = 12;
                    break;
                }
                rc = short_read(st, p, avail, eof, 12, "block header", 0);
                break;
            }
            memcpy(&type, r, 4);
            if (type == NG_SHB) {
                uint32_t bom;
                memcpy(&bom, r + 8, 4);
                if (bom == NG_BOM)
                    st->swapped = 0;
                else if (bom == __builtin_bswap32(NG_BOM))
                    st->swapped = 1;
                else {
                    rc = fail(st, p, "corrupt", "bad byte-order magic %08x in section header",
                              bom);
                    break;
                }
            }
            sw = st->swapped;
            type = rd32(r, sw);
            blen = rd32(r + 4, sw);
            if (blen < 12 || blen % 4) {
                rc = fail(st, p, "corrupt", "block total length %u (must be >= 12, a multiple of 4)",
                          blen);
                break;
            }
            if (blen > NG_MAX_BLOCK) {
                rc = fail(st, p, "corrupt", "block total length %u exceeds %u", blen,
                          NG_MAX_BLOCK);
                break;
            }
            if (avail < blen) {
                rc = short_read(st, p, avail, eof, blen, "block header", blen);
                break;
            }
            if (rd32(r + blen - 4, sw) != blen) {
                rc = fail(st, p, "corrupt", "trailing block length %u differs from %u",
                          rd32(r + blen - 4, sw), blen);
                break;
            }
            if (type == NG_SHB) {
                if (blen < 28) {
                    rc = fail(st, p, "corrupt", "section header block of %u bytes (min 28)", blen);
                    break;
                }
                st->major = rd16(r + 12, sw);
                st->minor = rd16(r + 14, sw);
                if (st->major != 1) {
                    rc = fail(st, p, "unsupported", "pcapng version %u.%u", st->major, st->minor);
                    break;
                }
                st->format = 2;
                st->n_if = 0;
                st->n_sections++;
                st->records++;
                p += blen;
                continue;
            }
            if (type == NG_IDB) {
                rc = ng_idb(st, r, p, blen);
                if (rc != OTUS_PCAP_LIMIT)
                    break;
                st->records++;
                p += blen;
                continue;
            }
            if (type == NG_EPB || type == NG_OPB) {
                const otus_pcap_iface_t *f;
                if (blen < 32) {
                    rc = fail(st, p, "corrupt", "packet block of %u bytes (min 32)", blen);
                    break;
                }
                ifindex = type == NG_EPB ? rd32(r + 8, sw) : rd16(r + 8, sw);
                caplen = rd32(r + 20, sw);
                wirelen = rd32(r + 24, sw);
                if (ifindex >= st->n_if) {
                    rc = fail(st, p, "corrupt", "interface %u has no description block (%u known)",
                              ifindex, st->n_if);
                    break;
                }
                if (caplen > blen - 32) {
                    rc = fail(st, p, "corrupt", "captured length %u overruns the %u-byte block",
                              caplen, blen);
                    break;
                }
                f = &st->ifs[ifindex];
                ts = ng_ts(f, ((uint64_t)rd32(r + 12, sw) << 32) | rd32(r + 16, sw));
                linktype = f->linktype;
                data = p + 28;
            } else if (type == NG_SPB) {
                uint32_t snap;
                if (blen < 16) {
                    rc = fail(st, p, "corrupt", "simple packet block of %u bytes (min 16)", blen);
                    break;
                }
                if (st->n_if == 0) {
                    rc = fail(st, p, "corrupt", "simple packet block before any interface block");
                    break;
                }
                wirelen = rd32(r + 8, sw);
                caplen = blen - 16;
                snap = st->ifs[0].snaplen;
                if (wirelen < caplen)
                    caplen = wirelen;
                if (snap && snap < caplen)
                    caplen = snap;
                ts = st->last_ts_ns; /* an SPB has no timestamp: keep the previous one */
                linktype = st->ifs[0].linktype;
                data = p + 12;
            } else {
                st->skipped_blocks++;
                st->records++;
                p += blen;
                continue;
            }
            if (n && (n >= max_pkts || bytes + caplen > max_bytes ||
                      (max_span_ns > 0 && ts - first_ts > max_span_ns)))
                break;
            p += blen;
        }

        /* one packet */
        if (n == 0)
            first_ts = ts;
        out[n].ts_ns = ts;
        out[n].offset = (uint32_t)data;
        out[n].caplen = caplen;
        out[n].wirelen = wirelen;
        out[n].ifindex = ifindex;
        out[n].linktype = (uint16_t)linktype;
        out[n].vlan_tci = 0;
        out[n].vlan_tpid = 0;
        out[n].flags = 0;
        n++;
        bytes += caplen;
        st->records++;
        st->packets++;
        st->bytes += caplen;
        st->last_ts_ns = ts;
        if (n >= max_pkts)
            break; /* LIMIT */
    }
    *consumed = p;
    *npkts = n;
    return rc;
}
