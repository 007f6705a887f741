/* IPv4/IPv6 fragment reassembly (see frag.h and docs/decoder.md for the policy).
 *
 * Policy: fragments are kept per datagram sorted by offset. An exact duplicate (same offset,
 * length and bytes) is ignored; any other overlap drops the whole datagram (RFC 5722 for IPv6,
 * applied to IPv4 too): overlaps have no legitimate use and are how teardrop and IDS-evasion
 * attacks work. A first fragment too short to hold its transport header, or an IPv4 TCP
 * fragment at offset 8 (RFC 1858), drops the datagram as a tiny-fragment attack. Memory,
 * datagram count, fragment count and size are bounded; the oldest datagram is evicted first. */
#include "frag.h"

#include <stdlib.h>
#include <string.h>

typedef struct frag {
    uint32_t off;
    uint32_t len;
    uint8_t *data;
} frag_t;

struct otus_frag_dgram {
    otus_frag_dgram_t *hnext;
    otus_frag_dgram_t *prev, *next; /* age list, oldest first */
    uint32_t hash;
    uint8_t  version;
    uint8_t  proto;
    uint8_t  src[16];
    uint8_t  dst[16];
    uint32_t id;
    int64_t  first_ts;
    uint32_t total;    /* payload length once the last fragment arrived, else 0 */
    uint32_t max_end;
    uint32_t received;
    uint32_t nfrags, capfrags;
    frag_t  *frags;
    uint8_t *hdr;
    uint32_t hdr_len;
    uint32_t nh_pos;
    uint64_t mem;
};

struct otus_frag_table {
    otus_frag_limits_t lim;
    otus_frag_stats_t  st;
    otus_frag_dgram_t **buckets;
    uint32_t mask;
    uint32_t active;
    uint64_t mem;
    otus_frag_dgram_t *head, *tail;
};

static const char *const REASONS[OTUS_FE_COUNT] = {
    "timeout", "memory", "max_datagrams", "too_many_fragments", "too_large",
    "overlap", "inconsistent", "tiny", "shutdown",
};

const char *otus_frag_reason_name(uint32_t reason) {
    return reason < OTUS_FE_COUNT ? REASONS[reason] : "unknown";
}

otus_frag_table_t *otus_frag_new(const otus_frag_limits_t *lim) {
    otus_frag_table_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->lim = *lim;
    if (t->lim.max_fragments < 2) t->lim.max_fragments = 2;
    if (t->lim.max_datagrams < 1) t->lim.max_datagrams = 1;
    if (t->lim.max_size > 65535) t->lim.max_size = 65535;
    uint32_t nb = 64;
    while (nb < t->lim.max_datagrams && nb < (1u << 20)) nb <<= 1;
    t->buckets = calloc(nb, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    t->mask = nb - 1;
    return t;
}

static void dgram_free(otus_frag_dgram_t *g) {
    for (uint32_t i = 0; i < g->nfrags; i++) free(g->frags[i].data);
    free(g->frags);
    free(g->hdr);
    free(g);
}

/* Remove g from the hash chain and the age list, and give its memory back. */
static void detach(otus_frag_table_t *t, otus_frag_dgram_t *g) {
    otus_frag_dgram_t **pp = &t->buckets[g->hash & t->mask];
    while (*pp && *pp != g) pp = &(*pp)->hnext;
    if (*pp) *pp = g->hnext;
    if (g->prev) g->prev->next = g->next; else t->head = g->next;
    if (g->next) g->next->prev = g->prev; else t->tail = g->prev;
    g->prev = g->next = g->hnext = NULL;
    t->active--;
    t->mem -= g->mem;
}

static void evict(otus_frag_table_t *t, otus_frag_dgram_t *g, uint32_t reason) {
    detach(t, g);
    t->st.evicted[reason]++;
    dgram_free(g);
}

void otus_frag_free(otus_frag_table_t *t) {
    if (!t) return;
    while (t->head) evict(t, t->head, OTUS_FE_SHUTDOWN);
    free(t->buckets);
    free(t);
}

void otus_frag_tick(otus_frag_table_t *t, int64_t now_ns) {
    while (t->head && t->head->first_ts + t->lim.timeout_ns <= now_ns)
        evict(t, t->head, OTUS_FE_TIMEOUT);
}

static uint32_t key_hash(const otus_frag_in_t *in) {
    uint32_t h = 2166136261u;
    uint32_t alen = in->version == 4 ? 4 : 16;
    for (uint32_t i = 0; i < alen; i++) h = (h ^ in->src[i]) * 16777619u;
    for (uint32_t i = 0; i < alen; i++) h = (h ^ in->dst[i]) * 16777619u;
    h = (h ^ (in->id & 0xffff)) * 16777619u;
    h = (h ^ (in->id >> 16)) * 16777619u;
    h = (h ^ (in->version == 4 ? in->proto : 0)) * 16777619u;
    return h ^ (h >> 15);
}

static otus_frag_dgram_t *lookup(otus_frag_table_t *t, const otus_frag_in_t *in, uint32_t h) {
    uint32_t alen = in->version == 4 ? 4 : 16;
    for (otus_frag_dgram_t *g = t->buckets[h & t->mask]; g; g = g->hnext) {
        /* RFC 791: (src, dst, protocol, id); RFC 8200: (src, dst, id). */
        if (g->hash == h && g->version == in->version && g->id == in->id &&
            (in->version != 4 || g->proto == in->proto) && !memcmp(g->src, in->src, alen) &&
            !memcmp(g->dst, in->dst, alen))
            return g;
    }
    return NULL;
}

static uint32_t min_l4(uint8_t proto) {
    switch (proto) {
    case 6: return 20;
    case 17: case 1: case 58: return 8;
    case 132: return 12;
    default: return 1;
    }
}

otus_frag_dgram_t *otus_frag_insert(otus_frag_table_t *t, const otus_frag_in_t *in) {
    t->st.fragments++;
    otus_frag_tick(t, in->ts_ns);
    uint32_t h = key_hash(in);
    otus_frag_dgram_t *g = lookup(t, in, h);
    uint64_t end = (uint64_t)in->offset + in->len;

    if (end > t->lim.max_size) {
        if (g) evict(t, g, OTUS_FE_TOO_LARGE); else t->st.evicted[OTUS_FE_TOO_LARGE]++;
        return NULL;
    }
    /* RFC 1858: a TCP fragment at offset 8 can rewrite the flags; a first fragment shorter
     * than the transport header hides the ports/flags from filters. */
    if ((in->version == 4 && in->offset == 8 && in->proto == 6) ||
        (in->offset == 0 && in->more && in->len < min_l4(in->proto))) {
        t->st.tiny++;
        if (g) evict(t, g, OTUS_FE_TINY); else t->st.evicted[OTUS_FE_TINY]++;
        return NULL;
    }
    uint64_t need = in->len + (in->offset == 0 ? in->hdr_len : 0) + 2 * sizeof(frag_t) +
                    (g ? 0 : sizeof(otus_frag_dgram_t));
    if (need > t->lim.max_memory) {
        t->st.rejected++;
        if (g) evict(t, g, OTUS_FE_MEMORY);
        return NULL;
    }
    while (t->head && t->mem + need > t->lim.max_memory) {
        if (t->head == g) g = NULL;
        evict(t, t->head, OTUS_FE_MEMORY);
    }
    if (!g) {
        if (t->active >= t->lim.max_datagrams) evict(t, t->head, OTUS_FE_MAX_DATAGRAMS);
        g = calloc(1, sizeof *g);
        if (!g) return NULL;
        g->hash = h;
        g->version = in->version;
        g->proto = in->proto;
        memcpy(g->src, in->src, in->version == 4 ? 4 : 16);
        memcpy(g->dst, in->dst, in->version == 4 ? 4 : 16);
        g->id = in->id;
        g->first_ts = in->ts_ns;
        g->mem = sizeof *g;
        g->hnext = t->buckets[h & t->mask];
        t->buckets[h & t->mask] = g;
        g->prev = t->tail;
        if (t->tail) t->tail->next = g; else t->head = g;
        t->tail = g;
        t->active++;
        t->mem += g->mem;
    }
    if ((g->total && end > g->total) || (!in->more && g->total && g->total != end) ||
        (!in->more && end < g->max_end)) {
        evict(t, g, OTUS_FE_INCONSISTENT);
        return NULL;
    }
    /* Insertion point: fragments mostly arrive in order, so scan from the end. */
    uint32_t i = g->nfrags;
    while (i > 0 && g->frags[i - 1].off > in->offset) i--;
    frag_t *prev = i > 0 ? &g->frags[i - 1] : NULL;
    frag_t *next = i < g->nfrags ? &g->frags[i] : NULL;
    frag_t *hit = NULL;
    if (prev && (uint64_t)prev->off + prev->len > in->offset) hit = prev;
    else if (next && next->off < end) hit = next;
    if (hit) {
        if (hit->off == in->offset && hit->len == in->len && !memcmp(hit->data, in->data, in->len)) {
            t->st.duplicates++;
            return NULL;
        }
        if (in->offset >= hit->off && end <= (uint64_t)hit->off + hit->len) t->st.teardrop++;
        evict(t, g, OTUS_FE_OVERLAP);
        return NULL;
    }
    if (g->nfrags >= t->lim.max_fragments) {
        evict(t, g, OTUS_FE_TOO_MANY_FRAGMENTS);
        return NULL;
    }
    if (g->nfrags == g->capfrags) {
        uint32_t nc = g->capfrags ? g->capfrags * 2 : 4;
        frag_t *nf = realloc(g->frags, nc * sizeof *nf);
        if (!nf) return NULL;
        g->frags = nf;
        g->mem += (uint64_t)(nc - g->capfrags) * sizeof *nf;
        t->mem += (uint64_t)(nc - g->capfrags) * sizeof *nf;
        g->capfrags = nc;
    }
    uint8_t *copy = malloc(in->len ? in->len : 1);
    if (!copy) return NULL;
    memcpy(copy, in->data, in->len);
    memmove(&g->frags[i + 1], &g->frags[i], (g->nfrags - i) * sizeof(frag_t));
    g->frags[i].off = in->offset;
    g->frags[i].len = in->len;
    g->frags[i].data = copy;
    g->nfrags++;
    g->received += in->len;
    g->mem += in->len;
    t->mem += in->len;
    if (end > g->max_end) g->max_end = (uint32_t)end;
    if (!in->more) g->total = (uint32_t)end;
    if (in->offset == 0) {
        g->hdr = malloc(in->hdr_len);
        if (!g->hdr) return NULL;
        memcpy(g->hdr, in->hdr, in->hdr_len);
        g->hdr_len = in->hdr_len;
        g->nh_pos = in->nh_pos;
        g->proto = in->proto;
        g->mem += in->hdr_len;
        t->mem += in->hdr_len;
    }
    if (g->total && g->hdr && g->received == g->total) {
        if ((uint64_t)g->hdr_len + g->total > 65535 + (g->version == 6 ? 40u : 0u)) {
            evict(t, g, OTUS_FE_TOO_LARGE);
            return NULL;
        }
        detach(t, g);
        t->st.reassembled++;
        return g;
    }
    return NULL;
}

uint32_t otus_frag_size(const otus_frag_dgram_t *g) { return g->hdr_len + g->total; }

void otus_frag_assemble(const otus_frag_dgram_t *g, uint8_t *dst) {
    memcpy(dst, g->hdr, g->hdr_len);
    uint8_t *p = dst + g->hdr_len;
    for (uint32_t i = 0; i < g->nfrags; i++) memcpy(p + g->frags[i].off, g->frags[i].data, g->frags[i].len);
    if (g->version == 4) {
        uint32_t tot = g->hdr_len + g->total;
        dst[2] = (uint8_t)(tot >> 8);
        dst[3] = (uint8_t)tot;
        dst[6] &= 0x40; /* keep DF, clear MF and the offset */
        dst[7] = 0;
    } else {
        uint32_t plen = g->hdr_len - 40 + g->total;
        dst[4] = (uint8_t)(plen >> 8);
        dst[5] = (uint8_t)plen;
        dst[g->nh_pos] = g->proto;
    }
}

void otus_frag_release(otus_frag_table_t *t, otus_frag_dgram_t *g) {
    (void)t;
    dgram_free(g);
}

const otus_frag_stats_t *otus_frag_stats(const otus_frag_table_t *t) { return &t->st; }
uint32_t otus_frag_active(const otus_frag_table_t *t) { return t->active; }
uint64_t otus_frag_memory(const otus_frag_table_t *t) { return t->mem; }
