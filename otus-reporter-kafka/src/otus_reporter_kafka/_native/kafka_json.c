/* JSON text as orjson writes it (the escaping table and the string writer) and the strict
 * parser of serialised labels, with the per-record label table and decoding scratch both use.
 * Declared in kafka_json.h; the body encoder (kafka_body.c) is their one user.
 */
#include "kafka_json.h"

#include "kafka_wire.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* -- JSON strings as orjson writes them -------------------------------------------------- */

/* Bytes written for each input byte: 1, 2 (\" \\ \b \t \n \f \r) or 6 (\u00XX). */
unsigned char otus_kafka_esc_len[256];

void otus_kafka_json_init(void) {
    for (int c = 0; c < 256; c++) otus_kafka_esc_len[c] = 1;
    for (int c = 0; c < 0x20; c++) otus_kafka_esc_len[c] = 6;
    unsigned char *e = otus_kafka_esc_len;
    e['"'] = e['\\'] = e['\b'] = e['\t'] = e['\n'] = e['\f'] = e['\r'] = 2;
}

char *otus_kafka_json_str_put(char *p, const unsigned char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    Py_ssize_t run = 0; /* plain bytes not yet copied */
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (otus_kafka_esc_len[c] == 1) {
            run++;
            continue;
        }
        memcpy(p, s + i - run, (size_t)run);
        p += run;
        run = 0;
        *p++ = '\\';
        switch (c) {
        case '"': *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\t': *p++ = 't'; break;
        case '\n': *p++ = 'n'; break;
        case '\f': *p++ = 'f'; break;
        case '\r': *p++ = 'r'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    memcpy(p, s + n - run, (size_t)run);
    p += run;
    *p++ = '"';
    return p;
}

/* -- per-record scratch: the labels' UTF-8 ------------------------------------------------ */

label_t *otus_kafka_labels = NULL;
static Py_ssize_t labels_cap = 0;

int otus_kafka_labels_reserve(Py_ssize_t n) {
    if (n <= labels_cap) return 0;
    Py_ssize_t cap = n < 64 ? 64 : n * 2;
    label_t *buf = PyMem_Realloc(otus_kafka_labels, (size_t)cap * sizeof(label_t));
    if (buf == NULL) return -1;
    otus_kafka_labels = buf;
    labels_cap = cap;
    return 0;
}

/* -- labels handed as JSON bytes (Record.serialized_labels()): parsed for the headers ------ */

/* The decoded text of names and values that have escapes (the others point into the JSON):
 * never longer than the JSON itself, since no escape decodes to more bytes than it takes. */
static unsigned char *scratch_buf = NULL;
static Py_ssize_t scratch_cap = 0;

static int scratch_reserve(Py_ssize_t n) {
    if (n <= scratch_cap) return 0;
    Py_ssize_t cap = n < 4096 ? 4096 : n * 2;
    unsigned char *buf = PyMem_Realloc(scratch_buf, (size_t)cap);
    if (buf == NULL) return -1;
    scratch_buf = buf;
    scratch_cap = cap;
    return 0;
}

/* The length of the well-formed UTF-8 sequence (2-4 bytes, no overlong forms, no surrogates,
 * at most U+10FFFF) that starts at s, before end; 0 when there is none. */
static inline int utf8_seq(const unsigned char *s, const unsigned char *end) {
    unsigned char c = s[0];
    Py_ssize_t left = end - s;
    if (c >= 0xC2 && c <= 0xDF) return left >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* a surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

/* Four hex digits (either case) at s into *out; 0 when they are not. */
static inline int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9') d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (uint32_t)(c - 'A' + 10);
        else return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

static inline unsigned char *utf8_put(unsigned char *o, uint32_t cp) {
    if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xC0 | cp >> 6);
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xE0 | cp >> 12);
        *o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | cp >> 18);
        *o++ = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* One JSON string whose opening quote is before *pp: its text (*out, *out_len; into the JSON
 * when it has no escapes, else decoded into the scratch at *sp, which advances) and *pp past
 * its closing quote. 0, or -1 for anything but a well-formed string of valid UTF-8 (an escape
 * JSON does not have, a lone surrogate, a raw control character, the end of the input). */
static int json_str_parse(const unsigned char **pp, const unsigned char *end, unsigned char **sp,
                          const unsigned char **out, Py_ssize_t *out_len) {
    const unsigned char *p = *pp, *start = p;
    for (;;) { /* plain text: no copy */
#if defined(__SSE2__)
        /* 16 bytes at a time, straight to the first byte that is not plain ASCII text: the
         * closing quote, usually (labels are short, so this is most of the scan) */
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)p);
            __m128i odd = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                       _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
            /* signed compare: below 0x20, and 0x80-0xFF (negative) */
            odd = _mm_or_si128(odd, _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
            int mask = _mm_movemask_epi8(odd);
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                break;
            }
            p += 16;
        }
#endif
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (word_needs_escape(w) || (w & 0x8080808080808080ull)) break;
            p += 8;
        }
        if (p >= end) return -1;
        unsigned char c = *p;
        if (c == '"') {
            *out = start;
            *out_len = p - start;
            *pp = p + 1;
            return 0;
        }
        if (c == '\\') break;
        if (c < 0x20) return -1;
        if (c < 0x80) {
            p++;
        } else {
            int k = utf8_seq(p, end);
            if (k == 0) return -1;
            p += k;
        }
    }
    unsigned char *o0 = *sp, *o = o0; /* escapes: decoded into the scratch */
    memcpy(o, start, (size_t)(p - start));
    o += p - start;
    for (;;) {
        if (p >= end) return -1;
        unsigned char c = *p;
        if (c == '"') {
            *out = o0;
            *out_len = o - o0;
            *sp = o;
            *pp = p + 1;
            return 0;
        }
        if (c == '\\') {
            if (end - p < 2) return -1;
            switch (p[1]) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '/': *o++ = '/'; break;
            case 'b': *o++ = '\b'; break;
            case 'f': *o++ = '\f'; break;
            case 'n': *o++ = '\n'; break;
            case 'r': *o++ = '\r'; break;
            case 't': *o++ = '\t'; break;
            case 'u': {
                uint32_t cp, low;
                if (end - p < 6 || !hex4(p + 2, &cp)) return -1;
                if (cp >= 0xDC00 && cp <= 0xDFFF) return -1; /* a low surrogate first */
                if (cp >= 0xD800 && cp <= 0xDBFF) {          /* a high one: its low one next */
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &low)
                        || low < 0xDC00 || low > 0xDFFF)
                        return -1;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    p += 6;
                }
                o = utf8_put(o, cp);
                p += 4; /* and 2 below */
                break;
            }
            default: return -1;
            }
            p += 2;
        } else if (c < 0x20) {
            return -1;
        } else if (c < 0x80) {
            *o++ = c;
            p++;
        } else {
            int k = utf8_seq(p, end);
            if (k == 0) return -1;
            memcpy(o, p, (size_t)k);
            o += k;
            p += k;
        }
    }
}

/* A cheap fingerprint of a label name (length, first and last 8 bytes), to find duplicates. */
static inline uint64_t name_print(const unsigned char *s, Py_ssize_t n) {
    uint64_t a = 0, b = 0;
    memcpy(&a, s, (size_t)(n < 8 ? n : 8));
    if (n > 8) memcpy(&b, s + n - 8, 8);
    return (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)n;
}

Py_ssize_t otus_kafka_labels_parse(const unsigned char *s, Py_ssize_t n, Py_ssize_t *headers) {
    if (scratch_reserve(n) < 0) return -2;
    const unsigned char *p = s, *end = s + n;
    unsigned char *sp = scratch_buf;
    Py_ssize_t count = 0, total = 0;
    uint64_t seen = 0; /* a bit per name fingerprint's top 6 bits: set means "compare" */
    if (n < 2 || *p++ != '{') return -1;
    if (*p == '}') return p + 1 == end ? 0 : -1;
    for (;;) {
        if (count >= LABELS_MAX) return -1;
        if (otus_kafka_labels_reserve(count + 1) < 0) return -2;
        label_t *l = &otus_kafka_labels[count];
        if (p >= end || *p++ != '"' || json_str_parse(&p, end, &sp, &l->name, &l->name_len) < 0)
            return -1;
        if (p >= end || *p++ != ':') return -1;
        if (p >= end || *p++ != '"' || json_str_parse(&p, end, &sp, &l->value, &l->value_len) < 0)
            return -1;
        uint64_t print = l->print = name_print(l->name, l->name_len), bit = 1ull << (print >> 58);
        if (seen & bit) {
            for (Py_ssize_t j = 0; j < count; j++) {
                const label_t *m = &otus_kafka_labels[j];
                if (m->print == print && m->name_len == l->name_len
                    && memcmp(m->name, l->name, (size_t)l->name_len) == 0)
                    return -1; /* a name twice */
            }
        }
        seen |= bit;
        total += len_varint_len(l->name_len + 2) + 2 + l->name_len + len_varint_len(l->value_len)
                 + l->value_len;
        count++;
        if (p >= end) return -1;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p++ != '}' || p != end) return -1;
        *headers = total;
        return count;
    }
}
