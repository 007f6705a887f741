/* Interest table and the built-in payload detectors (see classify.h). */
#include "classify.h"

#include <stdlib.h>
#include <string.h>

#include "decode.h"

int otus_cls_add(otus_cls_t *c, uint32_t transports, uint32_t detector, const uint16_t *ports,
                 uint32_t n_ports, const uint8_t *prefixes, const uint32_t *prefix_lens,
                 uint32_t n_prefixes) {
    if (c->n >= OTUS_MAX_INTERESTS || detector > OTUS_DET_SIP) return -1;
    uint32_t bit = 1u << c->n;
    if (n_ports && !c->port_mask) {
        c->port_mask = calloc(65536, sizeof(uint32_t));
        if (!c->port_mask) return -1;
    }
    uint32_t total = 0;
    for (uint32_t i = 0; i < n_prefixes; i++) total += prefix_lens[i];
    if (n_prefixes) {
        otus_cls_prefix_t *np = realloc(c->prefixes, (c->n_prefixes + n_prefixes) * sizeof *np);
        if (!np) return -1;
        c->prefixes = np;
        uint8_t *nb = realloc(c->prefix_bytes, c->prefix_bytes_len + total + 1);
        if (!nb) return -1;
        c->prefix_bytes = nb;
        uint32_t off = 0;
        for (uint32_t i = 0; i < n_prefixes; i++) {
            otus_cls_prefix_t *p = &c->prefixes[c->n_prefixes++];
            p->bit = bit;
            p->off = c->prefix_bytes_len;
            p->len = prefix_lens[i];
            memcpy(c->prefix_bytes + c->prefix_bytes_len, prefixes + off, prefix_lens[i]);
            c->prefix_bytes_len += prefix_lens[i];
            off += prefix_lens[i];
        }
    }
    for (uint32_t i = 0; i < n_ports; i++) {
        c->port_mask[ports[i]] |= bit;
        c->port_any[ports[i] >> 3] |= (uint8_t)(1u << (ports[i] & 7));
    }
    for (uint32_t t = 1; t < 8; t <<= 1)
        if (transports & t) c->trans_mask[t] |= bit;
    if (detector == OTUS_DET_SIP) c->sip_mask |= bit;
    if (!n_ports && !n_prefixes && detector == OTUS_DET_NONE) c->any_mask |= bit;
    c->n++;
    return 0;
}

void otus_cls_clear(otus_cls_t *c) {
    free(c->port_mask);
    free(c->prefixes);
    free(c->prefix_bytes);
    memset(c, 0, sizeof *c);
}

/* RFC 3261 token characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" */
static int is_token(uint8_t ch) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return 1;
    switch (ch) {
    case '-': case '.': case '!': case '%': case '*': case '_': case '+': case '`': case '\'':
    case '~':
        return 1;
    default:
        return 0;
    }
}

#define SIP_SCAN_MAX 1024u

/* A SIP start line: "SIP/2.0 DDD " (status) or "TOKEN SP Request-URI SP SIP/2.0" followed by
 * CRLF/LF (request), all within the first line. */
int otus_detect_sip(const uint8_t *p, uint32_t len) {
    if (len < 12) return 0;
    if (!memcmp(p, "SIP/2.0 ", 8))
        return p[8] >= '1' && p[8] <= '6' && p[9] >= '0' && p[9] <= '9' && p[10] >= '0' &&
               p[10] <= '9' && (p[11] == ' ' || p[11] == '\r' || p[11] == '\n');
    uint32_t lim = len < SIP_SCAN_MAX ? len : SIP_SCAN_MAX;
    uint32_t i = 0;
    while (i < lim && is_token(p[i])) i++;
    if (i == 0 || i >= lim || p[i] != ' ') return 0;
    uint32_t uri = ++i;
    while (i < lim && p[i] > ' ' && p[i] < 0x7f) i++;
    if (i == uri || i >= lim || p[i] != ' ') return 0;
    i++;
    if (i + 7 > lim || memcmp(p + i, "SIP/2.0", 7)) return 0;
    i += 7;
    return i == len || p[i] == '\r' || p[i] == '\n';
}

uint32_t otus_cls_match(const otus_cls_t *c, uint32_t t, uint16_t sport, uint16_t dport,
                        const uint8_t *payload, uint32_t len) {
    uint32_t want = c->trans_mask[t];
    if (!want) return 0;
    uint32_t m = c->any_mask;
    if (c->port_mask) {
        if (c->port_any[sport >> 3] & (1u << (sport & 7))) m |= c->port_mask[sport];
        if (c->port_any[dport >> 3] & (1u << (dport & 7))) m |= c->port_mask[dport];
    }
    for (uint32_t i = 0; i < c->n_prefixes; i++) {
        const otus_cls_prefix_t *pf = &c->prefixes[i];
        if ((want & pf->bit & ~m) && len >= pf->len &&
            !memcmp(payload, c->prefix_bytes + pf->off, pf->len))
            m |= pf->bit;
    }
    if ((c->sip_mask & want & ~m) && otus_detect_sip(payload, len)) m |= c->sip_mask;
    return m & want;
}
