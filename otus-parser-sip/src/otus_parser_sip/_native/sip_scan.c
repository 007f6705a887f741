/* SIP header indexer (RFC 3261 7.3): the fast path of otus_parser_sip._message.
 *
 * Scans buf[0:hend] (the header block without the final CRLFCRLF) once. Writes, per header
 * line, the span of the name (trailing whitespace removed), the span of the value (surrounding
 * whitespace removed) and the id of the canonical name (index into SIP_NAMES of _scan.py,
 * compact forms folded; -1 when unknown). Returns the header count, or -1 whenever the block
 * needs the general Python path: a non-ASCII byte, a control character other than TAB, a
 * folded or colon-less or empty line, a line above max_line, or more than max_headers lines.
 * The Python path then gives the exact same result or the specific error.
 */
#include "sip_scan.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Must match SIP_NAMES in _scan.py (same order). */
static const char *const NAMES[] = {
    "via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type",
    "max-forwards", "user-agent", "server", "expires", "reason", "subject", "supported",
    "allow", "event", "route", "record-route", "p-asserted-identity", "date",
    "content-encoding", "allow-events", "refer-to", "referred-by", "session-expires",
    "identity", "accept-contact", "request-disposition", "reject-contact", "identity-info",
    "authorization", "www-authenticate", "proxy-authenticate", "proxy-authorization",
    "require", "proxy-require", "unsupported", "accept",
};
#define N_NAMES ((int)(sizeof(NAMES) / sizeof(NAMES[0])))

/* Compact forms (RFC 3261 7.3.3 and later registrations) as indexes into NAMES. */
static int compact_id(uint8_t c) {
    switch (c | 0x20) {
    case 'v': return 0;
    case 'f': return 1;
    case 't': return 2;
    case 'i': return 3;
    case 'm': return 5;
    case 'l': return 6;
    case 'c': return 7;
    case 's': return 13;
    case 'k': return 14;
    case 'o': return 16;
    case 'e': return 21;
    case 'u': return 22;
    case 'r': return 23;
    case 'b': return 24;
    case 'x': return 25;
    case 'y': return 26;
    case 'a': return 27;
    case 'd': return 28;
    case 'j': return 29;
    case 'n': return 30;
    default: return -1;
    }
}

#define MAX_NAME 19 /* "request-disposition" */
/* Candidates per (length, first letter): head[n][c] is the first index into NAMES, next[k] the
 * following one with the same length and letter (-1 ends). Filled once at load time. */
static int8_t name_head[MAX_NAME + 1][26];
static int8_t name_next[N_NAMES];
static int names_ready;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((constructor))
#endif
static void names_init(void) {
    memset(name_head, -1, sizeof(name_head));
    for (int k = N_NAMES - 1; k >= 0; k--) { /* backwards: lists keep NAMES order */
        size_t n = strlen(NAMES[k]);
        int c = NAMES[k][0] - 'a';
        name_next[k] = name_head[n][c];
        name_head[n][c] = (int8_t)k;
    }
    names_ready = 1;
}

static inline uint64_t ld8(const void *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static inline uint32_t ld4(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint16_t ld2(const void *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* s[0:n] equals the name c (lower case, same length n) ignoring case: compared a word at a
 * time (overlapping loads inside both, never past their n bytes). OR-ing 0x20 is an exact
 * case fold here: it maps only letters onto letters, and onto '-' only '-' and CR, which
 * cannot be in a name (the scan stops at it). */
static int name_eq(const char *c, const uint8_t *s, size_t n) {
    if (n >= 8) {
        const uint64_t f = 0x2020202020202020ULL;
        for (size_t i = 0; i + 8 < n; i += 8)
            if ((ld8(s + i) | f) != ld8(c + i))
                return 0;
        return (ld8(s + n - 8) | f) == ld8(c + n - 8);
    }
    if (n >= 4)
        return (ld4(s) | 0x20202020U) == ld4(c) && (ld4(s + n - 4) | 0x20202020U) == ld4(c + n - 4);
    return (uint16_t)(ld2(s) | 0x2020U) == ld2(c) &&
           (uint16_t)(ld2(s + n - 2) | 0x2020U) == ld2(c + n - 2);
}

static int name_id(const uint8_t *s, size_t n) {
    if (n == 1)
        return compact_id(s[0]);
    uint8_t b = s[0];
    if (b >= 'A' && b <= 'Z')
        b |= 0x20;
    if (n > MAX_NAME || b < 'a' || b > 'z')
        return -1;
    if (!names_ready) { /* no constructor support: a linear search */
        for (int k = 0; k < N_NAMES; k++)
            if ((uint8_t)NAMES[k][0] == b && strlen(NAMES[k]) == n && name_eq(NAMES[k], s, n))
                return k;
        return -1;
    }
    for (int k = name_head[n][b - 'a']; k >= 0; k = name_next[k])
        if (name_eq(NAMES[k], s, n))
            return k;
    return -1;
}

static int is_ws(uint8_t c) { return c == ' ' || c == '\t'; }

int sip_scan(const uint8_t *buf, size_t hend, int32_t *out, int max_headers, int max_line) {
    /* Skip the start line (the caller parses it). */
    const uint8_t *first = memchr(buf, '\n', hend);
    size_t sl_end = first == NULL ? hend : (size_t)(first - buf);
    size_t pos;
    int count = 0, lines = 1;
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= sl_end; i += 16) /* the sign bits: a byte >= 0x80 */
        if (_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)(buf + i))))
            return -1;
#endif
    for (; i < sl_end; i++)
        if (buf[i] >= 0x80)
            return -1; /* the start line must decode the same way too */
    if (first == NULL)
        return 0; /* start line only */
    pos = sl_end + 1;
    if (pos < 2 || buf[pos - 2] != '\r')
        return -1;
    while (pos <= hend) {
        size_t end = pos, colon = 0;
        int have_colon = 0;
        /* To the line's CR: ordinary bytes are skipped (16 at a time with SSE2); a control
         * byte, DEL, non-ASCII or the first colon stops the skip and is looked at. */
        for (;;) {
#ifdef __SSE2__
            while (end + 16 <= hend) {
                __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(buf + end));
                /* signed compare: bytes >= 0x80 are negative, so below 0x20 too */
                __m128i m = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                         _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
                if (!have_colon)
                    m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(':')));
                unsigned mask = (unsigned)_mm_movemask_epi8(m);
                if (mask) {
                    end += (size_t)__builtin_ctz(mask);
                    goto special;
                }
                end += 16;
            }
#endif
            while (end < hend) {
                uint8_t c = buf[end];
                if (c < 0x20 || c >= 0x7f || (c == ':' && !have_colon))
                    break;
                end++;
            }
#ifdef __SSE2__
        special:
#endif
            if (end >= hend)
                break;
            uint8_t c = buf[end];
            if (c == '\r') {
                if (end + 1 < hend && buf[end + 1] == '\n')
                    break;
                return -1;
            }
            if (c == '\t') {
                end++;
            } else if (c == ':') {
                have_colon = 1;
                colon = end++;
            } else {
                return -1;
            }
        }
        if (++lines > max_headers + 1)
            return -1;
        if (end - pos > (size_t)max_line || end == pos || is_ws(buf[pos]) || !have_colon ||
            colon == pos)
            return -1;
        size_t ne = colon;
        while (ne > pos && is_ws(buf[ne - 1]))
            ne--;
        size_t vs = colon + 1, ve = end;
        while (vs < ve && is_ws(buf[vs]))
            vs++;
        while (ve > vs && is_ws(buf[ve - 1]))
            ve--;
        int32_t *o = out + (size_t)count * SIP_SCAN_FIELDS;
        o[0] = (int32_t)pos;
        o[1] = (int32_t)ne;
        o[2] = (int32_t)vs;
        o[3] = (int32_t)ve;
        o[4] = ne > pos ? name_id(buf + pos, ne - pos) : -1;
        count++;
        pos = end + 2;
    }
    return count;
}
