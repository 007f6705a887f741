/* The JSON output buffer shared by sip_json.c (payload) and sip_sdp.c (body description):
 * a growing byte buffer and orjson's string escaping (control characters, '"' and '\\'). */
#ifndef OTUS_SIP_JB_H
#define OTUS_SIP_JB_H
#include "sip_sv.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* A growing output buffer; oom set once an allocation failed. [rd_lo, rd_hi) is memory known
 * to be readable (the message at hand): jb_chars may load whole 16-byte blocks there past the
 * end of a string it escapes (the bytes beyond are loaded, never used). */
typedef struct jb {
    char *p;
    size_t n, cap;
    int oom;
    uintptr_t rd_lo, rd_hi;
    char stack[6144];
} jb;

static inline void jb_init(jb *b) {
    b->p = b->stack;
    b->n = 0;
    b->cap = sizeof(b->stack);
    b->oom = 0;
    b->rd_lo = b->rd_hi = 0;
}

/* Marks [p, p + n) readable for jb_chars's block loads. */
static inline void jb_readable(jb *b, const char *p, Py_ssize_t n) {
    b->rd_lo = (uintptr_t)p;
    b->rd_hi = (uintptr_t)p + (uintptr_t)n;
}

static inline void jb_free(jb *b) {
    if (b->p != b->stack)
        PyMem_Free(b->p);
}

static inline int jb_grow(jb *b, size_t extra) {
    if (b->oom)
        return 0;
    size_t cap = b->cap * 2;
    while (cap < b->n + extra)
        cap *= 2;
    char *q = b->p == b->stack ? PyMem_Malloc(cap) : PyMem_Realloc(b->p, cap);
    if (q == NULL) {
        b->oom = 1;
        return 0;
    }
    if (b->p == b->stack)
        memcpy(q, b->stack, b->n);
    b->p = q;
    b->cap = cap;
    return 1;
}

static inline int jb_reserve(jb *b, size_t extra) {
    return b->n + extra <= b->cap || jb_grow(b, extra);
}

static inline void jb_put(jb *b, const char *s, size_t n) {
    if (!jb_reserve(b, n))
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* A string literal (only: the "" makes anything else a compile error). */
#define LIT(b, s) jb_put((b), "" s, sizeof("" s) - 1)

static const char HEX[] = "0123456789abcdef";
/* 1 for the bytes orjson escapes: control characters, '"' and '\\' (DEL and up are kept). */
static const unsigned char ESC[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
};

static inline char *esc1(char *d, unsigned char c) {
    *d++ = '\\';
    switch (c) {
    case '"': *d++ = '"'; break;
    case '\\': *d++ = '\\'; break;
    case '\b': *d++ = 'b'; break;
    case '\f': *d++ = 'f'; break;
    case '\n': *d++ = 'n'; break;
    case '\r': *d++ = 'r'; break;
    case '\t': *d++ = 't'; break;
    default:
        *d++ = 'u';
        *d++ = '0';
        *d++ = '0';
        *d++ = HEX[c >> 4];
        *d++ = HEX[c & 15];
    }
    return d;
}

#ifdef __SSE2__
/* The bytes of a block orjson escapes (below 0x20, '"', '\\') and, by the signed compare,
 * every non-ASCII byte (which the byte loop then copies as is). */
static inline __m128i esc_bytes(__m128i v) {
    return _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
}
#endif

/* The characters of s as orjson escapes them, written at d (room for 6 bytes per character
 * plus 16 reserved by the caller); returns the new end. Runs of plain characters are copied
 * at once. The cursor stays in a register: nothing here writes through a pointer into a jb.
 * [lo, hi) is the readable range of the jb (jb_readable). */
static inline char *w_esc(char *d, sv s, uintptr_t lo, uintptr_t hi) {
    const unsigned char *p = (const unsigned char *)s.p, *e = p + s.n;
#ifdef __SSE2__
    /* 16 bytes at a time: a block without a byte to escape is stored as is; else up to the
     * first flagged byte (signed compare: non-ASCII is flagged too and then copied as is by
     * the ESC check). Within the readable range, the last (short) block of s is loaded whole
     * too and only its first bytes kept; a string shorter than a block is then one load and
     * one store instead of a byte loop. */
    int wide = (uintptr_t)p >= lo && (uintptr_t)e + 16 <= hi;
    if (wide && s.n <= 16) { /* the usual short string: one block, two branches */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = esc_bytes(v);
        _mm_storeu_si128((__m128i *)(void *)d, v);
        if (!((unsigned)_mm_movemask_epi8(m) & ((1u << s.n) - 1)))
            return d + s.n;
    } else if (wide && s.n <= 32) { /* two blocks (n > 16: the loads stay before e + 16) */
        __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
        __m128i m0 = esc_bytes(v0);
        __m128i m1 = esc_bytes(v1);
        uint64_t mask = (uint64_t)(unsigned)_mm_movemask_epi8(m0) |
                        (uint64_t)(unsigned)_mm_movemask_epi8(m1) << 16;
        _mm_storeu_si128((__m128i *)(void *)d, v0);
        _mm_storeu_si128((__m128i *)(void *)(d + 16), v1);
        if (!(mask & ((1ull << s.n) - 1)))
            return d + s.n;
    } else if (s.n <= 64 && (uintptr_t)p >= lo && (uintptr_t)p + 64 <= hi) { /* four blocks */
        uint64_t mask = 0;
        for (int k = 0; k < 4; k++) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
            __m128i m = esc_bytes(v);
            mask |= (uint64_t)(unsigned)_mm_movemask_epi8(m) << (16 * k);
            _mm_storeu_si128((__m128i *)(void *)(d + 16 * k), v);
        }
        if (!(mask & (s.n == 64 ? ~0ull : (1ull << s.n) - 1)))
            return d + s.n;
    }
    while (p + 16 <= e || (wide && p < e)) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m = esc_bytes(v);
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        size_t left = (size_t)(e - p);
        if (left < 16)
            mask &= (1u << left) - 1;
        _mm_storeu_si128((__m128i *)(void *)d, v);
        if (!mask) {
            size_t k = left < 16 ? left : 16;
            d += k;
            p += k;
            continue;
        }
        size_t k = (size_t)__builtin_ctz(mask);
        d += k;
        p += k;
        if (ESC[*p])
            d = esc1(d, *p);
        else
            *d++ = (char)*p;
        p++;
    }
#else
    (void)lo;
    (void)hi;
#endif
    /* the tail (under 16 bytes with SSE2): byte by byte, no memcpy call */
    for (; p < e; p++) {
        if (ESC[*p])
            d = esc1(d, *p);
        else
            *d++ = (char)*p;
    }
    return d;
}

/* s as a JSON string at d (room for 6 bytes per character plus 18); returns the new end. */
static inline char *w_str(char *d, sv s, uintptr_t lo, uintptr_t hi) {
    *d++ = '"';
    d = w_esc(d, s, lo, hi);
    *d++ = '"';
    return d;
}

/* A literal at d (room reserved); returns the new end. */
#define WLIT(d, s) (memcpy((d), "" s, sizeof("" s) - 1), (d) + sizeof("" s) - 1)

/* s lower-cased (case 1) or upper-cased (case 2) and escaped, at d (room for 6 bytes per
 * character plus 16); returns the new end. Whole 16-byte blocks as w_esc does ([lo, hi) the
 * readable range): a letter's case is its 0x20 bit, flipped for the letters of the other case;
 * a block with a byte to escape (or a non-ASCII one) and the rest of s take the byte loop. */
static inline char *w_case(char *d, sv s, int cas, uintptr_t lo, uintptr_t hi) {
    const unsigned char *p = (const unsigned char *)s.p, *e = p + s.n;
#ifdef __SSE2__
    const __m128i sp = _mm_set1_epi8(0x20);
    const __m128i first = _mm_set1_epi8(cas == 1 ? 'A' - 1 : 'a' - 1);
    const __m128i last = _mm_set1_epi8(cas == 1 ? 'Z' + 1 : 'z' + 1);
    int wide = (uintptr_t)p >= lo && (uintptr_t)e + 16 <= hi;
    if (wide && s.n <= 16) { /* the usual short name: one block, as w_esc does */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i other = _mm_and_si128(_mm_cmpgt_epi8(v, first), _mm_cmplt_epi8(v, last));
        v = _mm_xor_si128(v, _mm_and_si128(other, sp));
        __m128i m = esc_bytes(v);
        _mm_storeu_si128((__m128i *)(void *)d, v);
        if (!((unsigned)_mm_movemask_epi8(m) & ((1u << s.n) - 1)))
            return d + s.n;
    }
    while (p + 16 <= e || (wide && p < e)) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i other = _mm_and_si128(_mm_cmpgt_epi8(v, first), _mm_cmplt_epi8(v, last));
        v = _mm_xor_si128(v, _mm_and_si128(other, sp));
        __m128i m = esc_bytes(v);
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        size_t left = (size_t)(e - p);
        if (left < 16)
            mask &= (1u << left) - 1;
        if (mask)
            break; /* the byte loop from here */
        _mm_storeu_si128((__m128i *)(void *)d, v);
        size_t k = left < 16 ? left : 16;
        d += k;
        p += k;
    }
#else
    (void)lo;
    (void)hi;
#endif
    for (; p < e; p++) {
        unsigned char c = *p;
        if (cas == 1 && c >= 'A' && c <= 'Z')
            c |= 0x20;
        else if (cas == 2 && c >= 'a' && c <= 'z')
            c -= 32;
        if (ESC[c])
            d = esc1(d, c);
        else
            *d++ = (char)c;
    }
    return d;
}

/* v in decimal at d (room for 20 bytes); returns the new end. */
static inline char *w_int(char *d, long long v) {
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    if (v < 0)
        *d++ = '-';
    int n = 1;
    for (unsigned long long t = u; t >= 10; t /= 10)
        n++;
    for (int i = n - 1; i >= 0; i--) { /* the digits straight into place, no memcpy call */
        d[i] = (char)('0' + u % 10);
        u /= 10;
    }
    return d + n;
}

/* Cursor writing inside a function: W_OPEN reserves room for `need` more bytes and loads the
 * cursor d (on failure b->oom is set and the function returns OK: its caller fails the whole
 * message), W_SYNC stores it back before b is used by another function, W_LOAD reloads it. */
#define W_OPEN(b, need)                                                                       \
    do {                                                                                      \
        if (!jb_reserve((b), (need)))                                                         \
            return OK;                                                                        \
        d = (b)->p + (b)->n;                                                                  \
    } while (0)
#define W_SYNC(b) ((b)->n = (size_t)(d - (b)->p))

/* The characters of s as orjson escapes them (case: 0 as is, 1 lower, 2 upper; ASCII input). */
static inline void jb_chars(jb *b, sv s, int cas) {
    /* 16 spare bytes: w_esc stores whole blocks and then keeps only their first bytes */
    if (!jb_reserve(b, (size_t)s.n * 6 + 16))
        return;
    char *d = b->p + b->n;
    d = cas == 0 ? w_esc(d, s, b->rd_lo, b->rd_hi) : w_case(d, s, cas, b->rd_lo, b->rd_hi);
    b->n = (size_t)(d - b->p);
}

/* s as a JSON string (quotes included). */
static inline void jb_str(jb *b, sv s) {
    if (!jb_reserve(b, (size_t)s.n * 6 + 18))
        return;
    b->n = (size_t)(w_str(b->p + b->n, s, b->rd_lo, b->rd_hi) - b->p);
}

/* Index of the first byte of s that is one of set[0..nset), or -1: 16 bytes at a
 * time inside the readable range of b (the last block loaded whole, its bytes past s masked
 * off), else byte by byte. The parsers' find and splitting loops on header values. */
static inline Py_ssize_t jb_find_any(const jb *b, sv s, const char *set, int nset) {
#ifdef __SSE2__
    uintptr_t lo = (uintptr_t)s.p, last = lo + (((uintptr_t)s.n + 15) & ~(uintptr_t)15);
    if (lo >= b->rd_lo && last <= b->rd_hi) {
        for (Py_ssize_t i = 0; i < s.n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s.p + i));
            __m128i m = _mm_cmpeq_epi8(v, _mm_set1_epi8(set[0]));
            for (int k = 1; k < nset; k++)
                m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8(set[k])));
            unsigned mask = (unsigned)_mm_movemask_epi8(m);
            if (s.n - i < 16)
                mask &= (1u << (s.n - i)) - 1;
            if (mask)
                return i + __builtin_ctz(mask);
        }
        return -1;
    }
#endif
    for (Py_ssize_t i = 0; i < s.n; i++)
        for (int k = 0; k < nset; k++)
            if (s.p[i] == set[k])
                return i;
    return -1;
}

/* rfind(s, c): the last c in s, or -1; 16 bytes at a time inside the readable range. */
static inline Py_ssize_t jb_rfind(const jb *b, sv s, char c) {
#ifdef __SSE2__
    uintptr_t lo = (uintptr_t)s.p, last = lo + (((uintptr_t)s.n + 15) & ~(uintptr_t)15);
    if (lo >= b->rd_lo && last <= b->rd_hi) {
        Py_ssize_t found = -1;
        for (Py_ssize_t i = 0; i < s.n; i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s.p + i));
            unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
            if (s.n - i < 16)
                mask &= (1u << (s.n - i)) - 1;
            if (mask)
                found = i + 31 - __builtin_clz(mask);
        }
        return found;
    }
#endif
    return rfind(s, c);
}

/* Whether s holds a space or TAB (has_ws) with jb_find_any. */
static inline int jb_has_ws(const jb *b, sv s) {
    static const char WS[2] = {' ', '\t'};
    return jb_find_any(b, s, WS, 2) >= 0;
}

/* _uri.split_hostport: host and port (-1 when absent or bad). */
static inline void jb_split_hostport(const jb *b, sv hp, sv *host, long *port) {
    hp = trim(hp);
    sv port_s = {hp.p, 0};
    *port = -1;
    if (hp.n > 0 && hp.p[0] == '[') {
        Py_ssize_t end = jb_find_any(b, hp, "]", 1);
        if (end < 0) {
            *host = hp;
            return;
        }
        *host = sub(hp, 0, end + 1);
        sv rest = sub(hp, end + 1, hp.n);
        if (rest.n > 0 && rest.p[0] == ':')
            port_s = sub(rest, 1, rest.n);
    } else {
        Py_ssize_t colon = jb_rfind(b, hp, ':');
        if (colon < 0) {
            *host = hp;
            return;
        }
        *host = sub(hp, 0, colon);
        port_s = sub(hp, colon + 1, hp.n);
    }
    long long v;
    if (digits(trim(port_s), 5, &v) && v < 65536)
        *port = (long)v;
}

/* find(s, c) with jb_find_any. */
static inline Py_ssize_t jb_find(const jb *b, sv s, char c) { return jb_find_any(b, s, &c, 1); }

static inline void jb_int(jb *b, long long v) {
    if (jb_reserve(b, 24))
        b->n = (size_t)(w_int(b->p + b->n, v) - b->p);
}

/* The body description of _body.parse_body as JSON, and the media summary (a list, or NULL when
 * the body is not SDP) of _body.media_of; BAIL when the Python body path must run (sip_sdp.c). */
int otus_sip_body_json(jb *b, sv body, sv ctype, int parse_sdp, PyObject **media,
                       sip_msums *ms);

#endif
