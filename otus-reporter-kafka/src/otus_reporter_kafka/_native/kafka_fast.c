/* Kafka record bodies and records sections in C (CPython API), byte-identical to the Python
 * path of otus_reporter_kafka._records / _batch.
 *
 * encode_bodies() turns a run of otus.Record objects into Messages (topic, key hash, body,
 * timestamp ms, held size, record) reading the records' str/dict/bytes fields directly: flow
 * look-up, JSON value (labels escaped as orjson escapes them, or the parser's serialised labels
 * spliced; base64 of the raw payload; the parser's serialised payload spliced), key, headers
 * with their varints (from serialised labels: parsed here, strictly, without Python objects).
 * A record it does not handle plainly (a field of an unusual type, an oversized body, text that
 * is not valid UTF-8, a payload orjson refuses, serialised labels that are not a compact JSON
 * object of strings) stops the run: the caller encodes that one in Python, with the Python
 * path's errors and counters, and calls again from the next record.
 *
 * records_section() is the uncompressed records of a batch from its messages' bodies
 * (records_section_into() writes them into a reused bytearray instead); batch() puts
 * the RecordBatch header with its CRC-32C (SSE4.2 when the CPU has it) in front of a section.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static PyObject *s_payload, *s_serialized_payload, *s_serialized_labels;

/* -- varints (Kafka: zigzag, 7 bits a byte, least significant first) ---------------------- */

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static inline Py_ssize_t uvarint_len(uint64_t n) {
    Py_ssize_t len = 1;
    while (n > 0x7F) {
        n >>= 7;
        len++;
    }
    return len;
}

static inline char *uvarint_put(char *p, uint64_t n) {
    while (n > 0x7F) {
        *p++ = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    *p++ = (char)n;
    return p;
}

/* A length (never negative) as a varint. */
static inline Py_ssize_t len_varint_len(Py_ssize_t n) { return uvarint_len((uint64_t)n << 1); }
static inline char *len_varint_put(char *p, Py_ssize_t n) { return uvarint_put(p, (uint64_t)n << 1); }

/* Decimal text of v (what "%lld" prints) into out (at least 21 bytes); its length. */
static Py_ssize_t decimal(char *out, long long v) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    Py_ssize_t len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    return len;
}

/* -- JSON strings as orjson writes them -------------------------------------------------- */

/* Bytes written for each input byte: 1, 2 (\" \\ \b \t \n \f \r) or 6 (\u00XX). */
static unsigned char esc_len[256];

static void init_escapes(void) {
    for (int c = 0; c < 256; c++) esc_len[c] = 1;
    for (int c = 0; c < 0x20; c++) esc_len[c] = 6;
    esc_len['"'] = esc_len['\\'] = esc_len['\b'] = esc_len['\t'] = 2;
    esc_len['\n'] = esc_len['\f'] = esc_len['\r'] = 2;
}

/* Eight bytes at a time: does any need escaping (below 0x20, '"' or '\\')? Exact (the
 * classic has-less / has-zero-byte tests; bytes >= 0x80 never match). */
static inline int word_needs_escape(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t below = (w - ones * 0x20) & ~w & highs;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t quote = (q - ones) & ~q & highs, backslash = (b - ones) & ~b & highs;
    return (below | quote | backslash) != 0;
}

static inline Py_ssize_t json_str_len(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t len = n + 2, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_needs_escape(w))
            for (int k = 0; k < 8; k++) len += esc_len[s[i + k]] - 1;
    }
    for (; i < n; i++) len += esc_len[s[i]] - 1;
    return len;
}

static char *json_str_put(char *p, const unsigned char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    Py_ssize_t run = 0; /* plain bytes not yet copied */
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (esc_len[c] == 1) {
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

/* json_str_put() when the escaped length is known: text without escapes is one copy. */
static inline char *json_str_put_known(char *p, const unsigned char *s, Py_ssize_t n,
                                       Py_ssize_t json_len) {
    if (json_len != n + 2) return json_str_put(p, s, n);
    *p++ = '"';
    memcpy(p, s, (size_t)n);
    p += n;
    *p++ = '"';
    return p;
}

/* -- base64 (standard alphabet, padded, no newline) --------------------------------------- */

static const char b64_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static char b64_pairs[4096][2]; /* 12 bits -> their two characters */

static void init_b64(void) {
    for (int v = 0; v < 4096; v++) {
        b64_pairs[v][0] = b64_tab[v >> 6];
        b64_pairs[v][1] = b64_tab[v & 63];
    }
}

static char *b64_put(char *p, const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        memcpy(p, b64_pairs[v >> 12], 2);
        memcpy(p + 2, b64_pairs[v & 0xFFF], 2);
        p += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        *p++ = b64_tab[v >> 18];
        *p++ = b64_tab[(v >> 12) & 63];
        *p++ = i + 1 < n ? b64_tab[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    return p;
}

/* -- per-record scratch: the labels' UTF-8 ------------------------------------------------ */

typedef struct {
    const unsigned char *name, *value;
    Py_ssize_t name_len, value_len;
    Py_ssize_t name_json, value_json; /* their lengths as JSON strings, quotes included */
    uint64_t print;                   /* serialised labels: the name's fingerprint */
} label_t;

static label_t *labels_buf = NULL;
static Py_ssize_t labels_cap = 0;

static int labels_reserve(Py_ssize_t n) {
    if (n <= labels_cap) return 0;
    Py_ssize_t cap = n < 64 ? 64 : n * 2;
    label_t *buf = PyMem_Realloc(labels_buf, (size_t)cap * sizeof(label_t));
    if (buf == NULL) return -1;
    labels_buf = buf;
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

/* More serialised labels than this go to the Python path (the duplicate check is quadratic). */
#define LABELS_MAX 256

/* The labels of serialised labels ``{"name":"value",...}`` (compact: no whitespace; string
 * values only; no name twice, since the Python path's dict keeps one; at most LABELS_MAX) into
 * labels_buf, and the bytes of their headers into *headers: their count; -1 when the JSON is
 * anything else (no error set: the record goes to the Python path); -2 out of memory (error
 * set). */
static Py_ssize_t labels_parse(const unsigned char *s, Py_ssize_t n, Py_ssize_t *headers) {
    if (scratch_reserve(n) < 0) return -2;
    const unsigned char *p = s, *end = s + n;
    unsigned char *sp = scratch_buf;
    Py_ssize_t count = 0, total = 0;
    uint64_t seen = 0; /* a bit per name fingerprint's top 6 bits: set means "compare" */
    if (n < 2 || *p++ != '{') return -1;
    if (*p == '}') return p + 1 == end ? 0 : -1;
    for (;;) {
        if (count >= LABELS_MAX) return -1;
        if (labels_reserve(count + 1) < 0) return -2;
        label_t *l = &labels_buf[count];
        if (p >= end || *p++ != '"' || json_str_parse(&p, end, &sp, &l->name, &l->name_len) < 0)
            return -1;
        if (p >= end || *p++ != ':') return -1;
        if (p >= end || *p++ != '"' || json_str_parse(&p, end, &sp, &l->value, &l->value_len) < 0)
            return -1;
        uint64_t print = l->print = name_print(l->name, l->name_len), bit = 1ull << (print >> 58);
        if (seen & bit) {
            for (Py_ssize_t j = 0; j < count; j++) {
                const label_t *m = &labels_buf[j];
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

static const char TS_HEADER[] = "\x12timestamp"; /* varint(9) + name */
static const char RAW_LEN[] = ",\"raw_payload_len\":";
static const char RAW[] = ",\"raw_payload\":\"";
static const char PAYLOAD[] = "\",\"payload\":";
#define CLEN(s) ((Py_ssize_t)(sizeof(s) - 1))


/* -- record fields: slot reads for otus.Record itself, getattr for anything else ----------- */

enum { F_TASK_ID, F_AGENT_ID, F_PIPELINE_ID, F_SRC_IP, F_DST_IP, F_SRC_PORT, F_DST_PORT,
       F_PROTOCOL, F_PAYLOAD_TYPE, F_TS_NS, F_LABELS, F_LABELS_JSON, F_RAW_PAYLOAD, F_PAYLOAD_JSON,
       F_COUNT };

/* Slot names of otus.Record; the getattr path reads ``labels`` for ``_labels`` and calls
 * serialized_labels() / serialized_payload() for the other two private ones. */
static const char *const field_names[F_COUNT] = {
    "task_id", "agent_id", "pipeline_id", "src_ip", "dst_ip", "src_port", "dst_port",
    "protocol", "payload_type", "ts_ns", "_labels", "_labels_json", "raw_payload",
    "_payload_json"};
static PyObject *field_attr[F_COUNT];      /* interned slot names */
static PyObject *s_labels;                 /* "labels" (getattr path) */
static PyTypeObject *record_type = NULL;   /* otus.Record, once set_record_type() was called */
static Py_ssize_t field_offset[F_COUNT];   /* its __slots__ member offsets */

/* A new reference to a record field, or NULL with an error (AttributeError when unset). The
 * getattr path reads ``labels`` for ``_labels`` and calls serialized_labels() for
 * ``_labels_json`` and serialized_payload() for ``_payload_json`` (what the methods return). */
static PyObject *field(PyObject *record, int f) {
    if (Py_TYPE(record) == record_type) {
        PyObject *v = *(PyObject **)((char *)record + field_offset[f]);
        if (v == NULL) {
            PyErr_SetObject(PyExc_AttributeError, field_attr[f]);
            return NULL;
        }
        return Py_NewRef(v);
    }
    switch (f) {
    case F_PAYLOAD_JSON: return PyObject_CallMethodNoArgs(record, s_serialized_payload);
    case F_LABELS_JSON: return PyObject_CallMethodNoArgs(record, s_serialized_labels);
    case F_LABELS: return PyObject_GetAttr(record, s_labels);
    default: return PyObject_GetAttr(record, field_attr[f]);
    }
}

PyDoc_STRVAR(set_record_type_doc,
             "set_record_type(Record)\n\n"
             "Read the fields of exactly this class (otus.Record) from its __slots__ directly; "
             "other objects (subclasses too) go through getattr.");

static PyObject *set_record_type(PyObject *self, PyObject *cls) {
    (void)self;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "set_record_type(): not a class");
        return NULL;
    }
    Py_ssize_t offsets[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) {
        PyObject *d = PyDict_GetItemWithError(((PyTypeObject *)cls)->tp_dict, field_attr[f]);
        if (d == NULL || Py_TYPE(d) != &PyMemberDescr_Type
            || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "set_record_type(): %R is not a slot", field_attr[f]);
            return NULL;
        }
        offsets[f] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    memcpy(field_offset, offsets, sizeof(offsets));
    Py_INCREF(cls);
    Py_XSETREF(record_type, (PyTypeObject *)cls);
    Py_RETURN_NONE;
}

/* -- prefetching the records ahead ---------------------------------------------------------- */

/* A prefetch the compiler keeps: GCC 12 at -O3 with -DNDEBUG (as setuptools compiles) drops
 * __builtin_prefetch in loops like this one, not an asm statement. A no-op under
 * AddressSanitizer (a prefetched line may lie just past a small object). */
#if defined(__SANITIZE_ADDRESS__)
#define PREFETCH(a) ((void)(a))
#elif defined(__GNUC__) && defined(__SSE__) /* prefetcht0 is an SSE instruction */
#define PREFETCH(a) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(a)))
#elif defined(__GNUC__) || defined(__clang__)
#define PREFETCH(a) __builtin_prefetch(a)
#else
#define PREFETCH(a) ((void)(a))
#endif

static inline void prefetch_bytes(PyObject *b, Py_ssize_t most) {
    if (b == NULL || !PyBytes_CheckExact(b)) return;
    const char *p = PyBytes_AS_STRING(b);
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    for (Py_ssize_t k = 0; k < n && k < most; k += 64) PREFETCH(p + k);
}

/* Records reported a batch at a time were made a while ago (by the parser, before the
 * queue): cold in the caches, each with dependent misses (the record, its bytes objects,
 * their contents). So at record i: the record three ahead (its slots), the bytes objects of
 * the one two ahead, and the contents of the next one (payload and labels JSON, raw
 * payload; up to 2 KB each). Only exact otus.Record objects are followed, their pointers read
 * while no Python code runs; prefetches never fault. */
static inline void prefetch_ahead(PyObject *records, Py_ssize_t i) {
    Py_ssize_t n = PyList_GET_SIZE(records);
    if (record_type == NULL) return;
    if (i + 3 < n) {
        PyObject *r = PyList_GET_ITEM(records, i + 3);
        PREFETCH(r);
        PREFETCH((char *)r + field_offset[F_RAW_PAYLOAD]);
        PREFETCH((char *)r + field_offset[F_PAYLOAD_JSON]);
    }
    if (i + 2 < n && Py_IS_TYPE(PyList_GET_ITEM(records, i + 2), record_type)) {
        char *r = (char *)PyList_GET_ITEM(records, i + 2);
        static const int fs[] = {F_PAYLOAD_JSON, F_LABELS_JSON, F_RAW_PAYLOAD, F_SRC_IP, F_DST_IP};
        for (size_t k = 0; k < sizeof(fs) / sizeof(fs[0]); k++) {
            PyObject *v = *(PyObject **)(r + field_offset[fs[k]]);
            if (v != NULL) PREFETCH(v);
        }
    }
    if (i + 1 < n && Py_IS_TYPE(PyList_GET_ITEM(records, i + 1), record_type)) {
        char *r = (char *)PyList_GET_ITEM(records, i + 1);
        prefetch_bytes(*(PyObject **)(r + field_offset[F_PAYLOAD_JSON]), 2048);
        prefetch_bytes(*(PyObject **)(r + field_offset[F_LABELS_JSON]), 2048);
        prefetch_bytes(*(PyObject **)(r + field_offset[F_RAW_PAYLOAD]), 2048);
    }
}

/* The flow key tuple of a record (what BodyEncoder._key builds), or NULL with an error. */
static PyObject *flow_key(PyObject *record) {
    PyObject *key = PyTuple_New(9);
    if (key == NULL) return NULL;
    for (int i = 0; i < 9; i++) {
        PyObject *v = field(record, i); /* F_TASK_ID … F_PAYLOAD_TYPE */
        if (v == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, v);
    }
    return key;
}

/* -- Sections: a partition's records section, written in place as records are reported ---- */

/* One partition's records section (records framed with their length, attributes 0, timestamp
 * delta from the first record and offset delta), grown in place: report() writes each record
 * straight into the open section of its partition, so no per-record body object, Message or
 * copy into a batch exists. Sections are not tracked by the cyclic GC (they refer to a str
 * only), so making one runs no Python code. Exported through the buffer protocol (read-only)
 * for the compressor; while exported, nothing can be appended. */
typedef struct {
    PyObject_HEAD
    char *buf;
    Py_ssize_t len, cap, exports;
    Py_ssize_t count, held;
    long long first_ts, max_ts;
    PyObject *topic;
    Py_ssize_t partition;
} SectionObject;

static PyTypeObject SectionType;

static SectionObject *section_alloc(PyObject *topic, Py_ssize_t partition) {
    SectionObject *s = PyObject_New(SectionObject, &SectionType);
    if (s == NULL) return NULL;
    s->buf = NULL;
    s->len = s->cap = s->exports = s->count = s->held = 0;
    s->first_ts = s->max_ts = 0;
    s->topic = Py_NewRef(topic);
    s->partition = partition;
    return s;
}

static PyObject *section_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    (void)type;
    static char *kwlist[] = {"topic", "partition", NULL};
    PyObject *topic;
    Py_ssize_t partition;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Un:Section", kwlist, &topic, &partition))
        return NULL;
    return (PyObject *)section_alloc(topic, partition);
}

static void section_dealloc(SectionObject *s) {
    PyMem_Free(s->buf);
    Py_XDECREF(s->topic);
    PyObject_Free(s);
}

/* Room for ``extra`` more bytes: 256 KiB at first, doubling, but never past ``hint`` (the
 * route's limit and a record, what a section fills to) while that is enough; a section that
 * was filled once keeps its memory through the pool, so steady state allocates nothing, and
 * a topic of many partitions does not reserve a whole batch per open section. -1 with
 * BufferError while exported, MemoryError. */
static int section_reserve(SectionObject *s, Py_ssize_t extra, Py_ssize_t hint) {
    if (s->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "Section: cannot append while exported");
        return -1;
    }
    if (extra > PY_SSIZE_T_MAX / 2 - s->len) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t need = s->len + extra;
    if (need <= s->cap) return 0;
    Py_ssize_t cap = s->cap < 262144 ? 262144 : s->cap * 2;
    while (cap < need) cap *= 2; /* need < PY_SSIZE_T_MAX / 2: no overflow */
    if (hint >= need && cap > hint) cap = hint;
    char *buf = PyMem_Realloc(s->buf, (size_t)cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->buf = buf;
    s->cap = cap;
    return 0;
}

/* The framed size of a record of ``body_len`` bytes at ``ts_ms`` as the next one of ``s``; 0
 * when its timestamp delta does not fit in 64 bits (it must start a section of its own). */
static Py_ssize_t section_framed(const SectionObject *s, long long ts_ms, Py_ssize_t body_len) {
    long long delta = 0;
    if (s->count > 0 && __builtin_sub_overflow(ts_ms, s->first_ts, &delta)) return 0;
    Py_ssize_t size = 1 + uvarint_len(zigzag(delta)) + uvarint_len(zigzag(s->count)) + body_len;
    return uvarint_len(zigzag(size)) + size;
}

/* Append the framing of the next record (``framed`` from section_framed()) and account for
 * it; where its body of ``body_len`` bytes goes, or NULL with an error. */
static char *section_put(SectionObject *s, long long ts_ms, Py_ssize_t body_len,
                         Py_ssize_t framed, Py_ssize_t held, Py_ssize_t hint) {
    if (section_reserve(s, framed, hint) < 0) return NULL;
    if (s->count == 0) s->first_ts = s->max_ts = ts_ms;
    uint64_t delta = zigzag(ts_ms - s->first_ts), offset = zigzag(s->count);
    Py_ssize_t size = 1 + uvarint_len(delta) + uvarint_len(offset) + body_len;
    char *p = uvarint_put(s->buf + s->len, zigzag(size));
    *p++ = 0;
    p = uvarint_put(p, delta);
    p = uvarint_put(p, offset);
    s->len += framed;
    s->count++;
    s->held += held;
    if (ts_ms > s->max_ts) s->max_ts = ts_ms;
    return p;
}

/* Where report() puts records: ``routes`` maps a topic to the list of its partitions' open
 * sections (index = key hash % length); a section that has no room for the next record
 * (``limit`` bytes, at least one record) is appended to ``sealed`` and replaced by one from
 * ``pool`` (reset) or a new one. No Python code runs here. */
typedef struct {
    PyObject *routes, *sealed, *pool;
    Py_ssize_t limit;
} route_t;

/* The open section for a record of ``topic``/``hashed`` with room for ``body_len`` bytes at
 * ``ts_ms`` (its framed size in *framed): NULL with no error when the topic has no route;
 * NULL with an error on failure. Borrowed. */
static SectionObject *section_route(const route_t *r, PyObject *topic, PyObject *hashed,
                                    long long ts_ms, Py_ssize_t body_len, Py_ssize_t *framed) {
    PyObject *lst = PyDict_GetItemWithError(r->routes, topic);
    if (lst == NULL) return NULL;
    if (!PyList_CheckExact(lst) || PyList_GET_SIZE(lst) == 0 || !PyLong_CheckExact(hashed)) {
        PyErr_SetString(PyExc_TypeError, "sections: a route is a non-empty list of Sections");
        return NULL;
    }
    long long h = PyLong_AsLongLong(hashed);
    if (h < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "sections: negative key hash");
        return NULL;
    }
    Py_ssize_t index = (Py_ssize_t)(h % PyList_GET_SIZE(lst));
    PyObject *item = PyList_GET_ITEM(lst, index);
    if (Py_TYPE(item) != &SectionType) {
        PyErr_SetString(PyExc_TypeError, "sections: a route is a non-empty list of Sections");
        return NULL;
    }
    SectionObject *s = (SectionObject *)item;
    *framed = section_framed(s, ts_ms, body_len);
    if (s->count == 0 || (*framed > 0 && s->len + *framed <= r->limit)) return s;
    /* sealed: the next one from the pool, or a new one */
    SectionObject *fresh;
    Py_ssize_t pooled = PyList_GET_SIZE(r->pool);
    if (pooled > 0) {
        fresh = (SectionObject *)Py_NewRef(PyList_GET_ITEM(r->pool, pooled - 1));
        if (Py_TYPE(fresh) != &SectionType || fresh->exports > 0) {
            Py_DECREF(fresh);
            PyErr_SetString(PyExc_TypeError, "sections: the pool holds only idle Sections");
            return NULL;
        }
        if (PyList_SetSlice(r->pool, pooled - 1, pooled, NULL) < 0) {
            Py_DECREF(fresh);
            return NULL;
        }
        fresh->len = fresh->count = fresh->held = 0;
        Py_SETREF(fresh->topic, Py_NewRef(s->topic));
        fresh->partition = s->partition;
    } else {
        fresh = section_alloc(s->topic, s->partition);
        if (fresh == NULL) return NULL;
    }
    if (PyList_Append(r->sealed, (PyObject *)s) < 0) {
        Py_DECREF(fresh);
        return NULL;
    }
    PyList_SET_ITEM(lst, index, (PyObject *)fresh); /* its reference; sealed holds s's */
    Py_DECREF(s);
    *framed = section_framed(fresh, ts_ms, body_len);
    return fresh;
}

PyDoc_STRVAR(section_append_doc,
             "append(body, ts_ms, held)\n\n"
             "Append a record body (bytes) as the next record of this section.");

static PyObject *section_append(SectionObject *s, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "append(body: bytes, ts_ms: int, held: int)");
        return NULL;
    }
    long long ts_ms = PyLong_AsLongLong(args[1]);
    if (ts_ms == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t held = PyLong_AsSsize_t(args[2]);
    if (held == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t framed = section_framed(s, ts_ms, n);
    if (framed == 0) {
        PyErr_SetString(PyExc_OverflowError, "append(): timestamp delta beyond 64 bits");
        return NULL;
    }
    char *p = section_put(s, ts_ms, n, framed, held, 0);
    if (p == NULL) return NULL;
    memcpy(p, PyBytes_AS_STRING(args[0]), (size_t)n);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(section_route_doc,
             "route(routes, sealed, pool, limit, topic, hashed, body, ts_ms, held) -> bool\n\n"
             "Append a ready record body to the open section of its partition, as report() does "
             "for the records it encodes (sealing a full section); False when the topic has no "
             "route.");

static PyObject *py_section_route(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 9 || !PyDict_CheckExact(args[0]) || !PyList_CheckExact(args[1])
        || !PyList_CheckExact(args[2]) || !PyUnicode_CheckExact(args[4])
        || !PyBytes_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "route(routes: dict, sealed: list, pool: list, limit, "
                                         "topic: str, hashed: int, body: bytes, ts_ms, held)");
        return NULL;
    }
    route_t r = {args[0], args[1], args[2], PyLong_AsSsize_t(args[3])};
    long long ts_ms = PyLong_AsLongLong(args[7]);
    Py_ssize_t held = PyLong_AsSsize_t(args[8]);
    if (PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(args[6]), framed = 0;
    SectionObject *s = section_route(&r, args[4], args[5], ts_ms, n, &framed);
    if (s == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_FALSE;
    }
    char *p = section_put(s, ts_ms, n, framed, held, r.limit + 65536);
    if (p == NULL) return NULL;
    memcpy(p, PyBytes_AS_STRING(args[6]), (size_t)n);
    Py_RETURN_TRUE;
}

/* Read one varint at *pp (bounded by end); -1 on a malformed one. */
static int uvarint_get(const unsigned char **pp, const unsigned char *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *pp < end; shift += 7) {
        unsigned char b = *(*pp)++;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static inline int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

PyDoc_STRVAR(section_split_doc,
             "split() -> Section\n\n"
             "Keep the first half of the records (at least one) and return the others as a new "
             "Section of the same topic and partition (offset deltas from 0 again); for a batch "
             "that came out larger than allowed.");

static PyObject *section_split(SectionObject *s, PyObject *unused) {
    (void)unused;
    if (s->count < 2) {
        PyErr_SetString(PyExc_ValueError, "split(): fewer than two records");
        return NULL;
    }
    if (s->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "split(): the section is exported");
        return NULL;
    }
    Py_ssize_t keep = s->count / 2;
    const unsigned char *p = (const unsigned char *)s->buf, *end = p + s->len, *cut = NULL;
    SectionObject *rest = section_alloc(s->topic, s->partition);
    if (rest == NULL) return NULL;
    long long max_first = s->first_ts;
    Py_ssize_t bodies = 0, rest_bodies = 0; /* body bytes: all records, the second half */
    for (Py_ssize_t i = 0; i < s->count; i++) {
        uint64_t size, delta, offset;
        if (uvarint_get(&p, end, &size) < 0) goto bad;
        const unsigned char *record = p, *record_end = p + unzigzag(size);
        if (unzigzag(size) < 1 || record_end > end) goto bad;
        p++; /* attributes */
        if (uvarint_get(&p, record_end, &delta) < 0 || uvarint_get(&p, record_end, &offset) < 0)
            goto bad;
        long long ts = s->first_ts + unzigzag(delta);
        bodies += record_end - p;
        if (i < keep) {
            if (ts > max_first) max_first = ts;
        } else {
            if (cut == NULL) cut = record - uvarint_len(size);
            Py_ssize_t body = record_end - p;
            rest_bodies += body;
            Py_ssize_t framed = section_framed(rest, ts, body);
            char *q = framed ? section_put(rest, ts, body, framed, 0, 0) : NULL;
            if (q == NULL) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_OverflowError, "split(): delta");
                Py_DECREF(rest);
                return NULL;
            }
            memcpy(q, p, (size_t)body);
        }
        p = record_end;
    }
    if (p != end || cut == NULL) goto bad;
    /* held bytes go with the records: each record's is its body and the same framing */
    Py_ssize_t framing = (s->held - bodies) / s->count;
    if ((s->held - bodies) % s->count == 0 && framing >= 0)
        rest->held = rest_bodies + (s->count - keep) * framing;
    else /* records appended with different framings: in proportion */
        rest->held = s->held * (s->count - keep) / s->count;
    s->held -= rest->held;
    s->len = (const char *)cut - s->buf;
    s->count = keep;
    s->max_ts = max_first;
    return (PyObject *)rest;
bad:
    Py_DECREF(rest);
    PyErr_SetString(PyExc_ValueError, "split(): malformed section");
    return NULL;
}

PyDoc_STRVAR(section_reset_doc,
             "reset(topic=None, partition=None)\n\n"
             "Empty the section (its memory is kept for reuse), for this topic and partition "
             "when given.");

static PyObject *section_reset(SectionObject *s, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"topic", "partition", NULL};
    PyObject *topic = NULL, *partition = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|UO:reset", kwlist, &topic, &partition))
        return NULL;
    Py_ssize_t part = s->partition;
    if (partition != NULL && partition != Py_None) {
        part = PyLong_AsSsize_t(partition);
        if (part == -1 && PyErr_Occurred()) return NULL;
    }
    if (s->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "reset(): the section is exported");
        return NULL;
    }
    s->len = s->count = s->held = 0;
    s->partition = part;
    if (topic != NULL) Py_SETREF(s->topic, Py_NewRef(topic));
    Py_RETURN_NONE;
}

static int section_getbuffer(SectionObject *s, Py_buffer *view, int flags) {
    if (PyBuffer_FillInfo(view, (PyObject *)s, s->buf ? s->buf : "", s->len, 1, flags) < 0)
        return -1;
    s->exports++;
    return 0;
}

static void section_releasebuffer(SectionObject *s, Py_buffer *view) {
    (void)view;
    s->exports--;
}

static PyBufferProcs section_as_buffer = {
    (getbufferproc)section_getbuffer,
    (releasebufferproc)section_releasebuffer,
};

static PyMethodDef section_methods[] = {
    {"append", (PyCFunction)(void (*)(void))section_append, METH_FASTCALL, section_append_doc},
    {"split", (PyCFunction)section_split, METH_NOARGS, section_split_doc},
    {"reset", (PyCFunction)(void (*)(void))section_reset, METH_VARARGS | METH_KEYWORDS,
     section_reset_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef section_members[] = {
    {"count", T_PYSSIZET, offsetof(SectionObject, count), READONLY, "Records in the section."},
    {"held", T_PYSSIZET, offsetof(SectionObject, held), READONLY,
     "Their held size (bodies and framing, as the buffer counts them)."},
    {"nbytes", T_PYSSIZET, offsetof(SectionObject, len), READONLY, "Length of the section."},
    {"capacity", T_PYSSIZET, offsetof(SectionObject, cap), READONLY,
     "Bytes allocated (kept by reset())."},
    {"first_ts", T_LONGLONG, offsetof(SectionObject, first_ts), READONLY,
     "Timestamp (ms) of the first record: the batch's base timestamp."},
    {"max_ts", T_LONGLONG, offsetof(SectionObject, max_ts), READONLY, "Largest timestamp (ms)."},
    {"topic", T_OBJECT, offsetof(SectionObject, topic), READONLY, "Topic."},
    {"partition", T_PYSSIZET, offsetof(SectionObject, partition), READONLY, "Partition."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject SectionType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "otus_reporter_kafka._native._kafka_fast.Section",
    .tp_basicsize = sizeof(SectionObject),
    .tp_dealloc = (destructor)section_dealloc,
    .tp_as_buffer = &section_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Section(topic, partition): a partition's records section, written in place.",
    .tp_methods = section_methods,
    .tp_members = section_members,
    .tp_new = section_new,
};

typedef struct {
    PyObject *flows, *new_flow, *dumps, *topic, *topics, *prefix, *message_type;
    int keep;
    Py_ssize_t max_size, framing;
    const route_t *route; /* sections: records go there, not into Messages */
} ctx_t;

/* What the buffer still takes (sections): records and held bytes. */
typedef struct {
    Py_ssize_t records, bytes;
} budget_t;

/* One record as a Message appended to ``out``, or (with ``c->route``, when its topic has a
 * route) written into the open section of its partition: 1 a Message, 3 written into a
 * section, 2 refused (no room in ``budget``), 0 left for the Python path (no error set), -1 a
 * real error (set). ``*size`` gets the held size. */
static int encode_one(const ctx_t *c, PyObject *record, PyObject *out, budget_t *budget,
                      Py_ssize_t *size) {
    int result = 0;
    PyObject *key = NULL, *flow = NULL, *labels = NULL, *raw = NULL, *payload = NULL;
    PyObject *ts_obj = NULL, *body = NULL, *topic = NULL, *stamp_obj = NULL, *message = NULL;

    key = flow_key(record);
    if (key == NULL) goto reject;
    flow = PyDict_GetItemWithError(c->flows, key);
    if (flow != NULL) {
        Py_INCREF(flow);
    } else {
        if (PyErr_Occurred()) goto reject;
        flow = PyObject_CallOneArg(c->new_flow, record);
        if (flow == NULL) goto reject;
    }
    if (!PyTuple_CheckExact(flow) || PyTuple_GET_SIZE(flow) != 5) goto reject;
    PyObject *f_key = PyTuple_GET_ITEM(flow, 0), *f_headers = PyTuple_GET_ITEM(flow, 1),
             *f_hash = PyTuple_GET_ITEM(flow, 2), *f_head = PyTuple_GET_ITEM(flow, 3),
             *f_middle = PyTuple_GET_ITEM(flow, 4);
    if (!PyBytes_CheckExact(f_key) || !PyBytes_CheckExact(f_headers) || !PyLong_CheckExact(f_hash)
        || !PyBytes_CheckExact(f_head) || !PyBytes_CheckExact(f_middle))
        goto reject;

    /* topic: the fixed one, or prefix + payload type (cached) */
    if (c->topic != Py_None) {
        topic = Py_NewRef(c->topic);
    } else {
        PyObject *ptype = PyTuple_GET_ITEM(key, 8);
        if (!PyUnicode_CheckExact(ptype)) goto reject;
        topic = PyDict_GetItemWithError(c->topics, ptype);
        if (topic != NULL) {
            Py_INCREF(topic);
        } else {
            if (PyErr_Occurred()) goto reject;
            topic = PyUnicode_Concat(c->prefix, ptype);
            if (topic == NULL || PyDict_SetItem(c->topics, ptype, topic) < 0) {
                result = -1;
                goto done;
            }
        }
    }
    /* timestamp: ts_ns // 1_000_000 (floor) */
    ts_obj = field(record, F_TS_NS);
    if (ts_obj == NULL || !PyLong_CheckExact(ts_obj)) goto reject;
    int overflow = 0;
    long long ts_ns = PyLong_AsLongLongAndOverflow(ts_obj, &overflow);
    if (overflow || (ts_ns == -1 && PyErr_Occurred())) goto reject;
    long long ts_ms = ts_ns / 1000000;
    if (ts_ns % 1000000 != 0 && ts_ns < 0) ts_ms -= 1;
    char stamp[24];
    Py_ssize_t stamp_len = decimal(stamp, ts_ms);

    /* raw payload and the serialised payload: before the labels, since reading them may run
     * Python code (a subclass's property, serialized_payload(), dumps, a finalizer) that
     * changes the labels dict and frees the strings whose UTF-8 the labels scratch points
     * into. From the labels on, nothing here runs Python code until the body is written. */
    raw = field(record, F_RAW_PAYLOAD);
    if (raw == NULL || !PyBytes_CheckExact(raw)) goto reject;
    Py_ssize_t raw_len = PyBytes_GET_SIZE(raw);
    payload = field(record, F_PAYLOAD_JSON);
    if (payload == NULL) goto reject;
    if (payload == Py_None) {
        Py_DECREF(payload);
        PyObject *p = PyObject_GetAttr(record, s_payload);
        if (p == NULL) goto reject_no_payload;
        payload = PyObject_CallOneArg(c->dumps, p);
        Py_DECREF(p);
        if (payload == NULL) goto reject_no_payload;
    }
    if (!PyBytes_CheckExact(payload)) goto reject;
    /* labels: the parser's serialised ones (spliced into the value, parsed here for the
     * headers: pointers into those bytes, which we hold, and into the scratch), else the dict
     * (borrowed UTF-8 pointers: valid while no Python code runs). Serialised labels of a
     * subclass come from its serialized_labels(), which runs Python code: before the dict. */
    labels = field(record, F_LABELS_JSON);
    if (labels == NULL) goto reject;
    int spliced = labels != Py_None;
    Py_ssize_t nl = 0, labels_json = 2, label_headers = 0;
    if (spliced) {
        if (!PyBytes_CheckExact(labels)) goto reject;
        nl = labels_parse((const unsigned char *)PyBytes_AS_STRING(labels),
                          PyBytes_GET_SIZE(labels), &label_headers);
        if (nl == -2) {
            result = -1;
            goto done;
        }
        if (nl < 0) goto reject;
        labels_json = PyBytes_GET_SIZE(labels);
    } else {
        Py_DECREF(labels);
        labels = field(record, F_LABELS);
        if (labels == NULL) goto reject;
        /* otus.Record's ``_labels`` is None for no labels; a ``labels`` property must be a dict */
        if (labels == Py_None && Py_TYPE(record) == record_type) {
            Py_SETREF(labels, PyDict_New());
            if (labels == NULL) {
                result = -1;
                goto done;
            }
        }
        if (!PyDict_CheckExact(labels)) goto reject;
        nl = PyDict_GET_SIZE(labels);
        if (labels_reserve(nl) < 0) {
            result = -1;
            goto done;
        }
        labels_json = 2 + (nl > 0 ? nl - 1 : 0);
        Py_ssize_t pos = 0, i = 0;
        PyObject *k, *v;
        while (PyDict_Next(labels, &pos, &k, &v)) {
            if (!PyUnicode_CheckExact(k) || !PyUnicode_CheckExact(v) || i >= nl) goto reject;
            label_t *l = &labels_buf[i++];
            l->name = (const unsigned char *)PyUnicode_AsUTF8AndSize(k, &l->name_len);
            if (l->name == NULL) goto reject;
            l->value = (const unsigned char *)PyUnicode_AsUTF8AndSize(v, &l->value_len);
            if (l->value == NULL) goto reject;
            l->name_json = json_str_len(l->name, l->name_len);
            l->value_json = json_str_len(l->value, l->value_len);
            labels_json += l->name_json + 1 + l->value_json;
            label_headers += len_varint_len(l->name_len + 2) + 2 + l->name_len
                             + len_varint_len(l->value_len) + l->value_len;
        }
        if (i != nl) goto reject;
    }

    char raw_len_txt[24];
    Py_ssize_t raw_len_len = decimal(raw_len_txt, raw_len);

    Py_ssize_t value_len = PyBytes_GET_SIZE(f_head) + stamp_len + PyBytes_GET_SIZE(f_middle)
                           + labels_json + CLEN(RAW_LEN) + raw_len_len + CLEN(RAW)
                           + (raw_len + 2) / 3 * 4 + CLEN(PAYLOAD) + PyBytes_GET_SIZE(payload) + 1;
    Py_ssize_t body_len = PyBytes_GET_SIZE(f_key) + len_varint_len(value_len) + value_len
                          + len_varint_len(8 + nl) + PyBytes_GET_SIZE(f_headers) + CLEN(TS_HEADER)
                          + len_varint_len(stamp_len) + stamp_len + label_headers;
    if (body_len + c->framing > c->max_size) goto reject; /* oversized: Python truncates */

    Py_ssize_t held = body_len + c->framing;
    char *p = NULL;
    SectionObject *sec = NULL;
    if (c->route != NULL) {
        if (budget->records < 1 || budget->bytes < held) {
            result = 2;
            goto done;
        }
        Py_ssize_t framed = 0;
        sec = section_route(c->route, topic, f_hash, ts_ms, body_len, &framed);
        if (sec == NULL && PyErr_Occurred()) {
            result = -1;
            goto done;
        }
        if (sec != NULL) { /* else no route yet: a Message */
            p = framed ? section_put(sec, ts_ms, body_len, framed, held, c->route->limit + 65536)
                       : NULL;
            if (p == NULL) {
                if (PyErr_Occurred()) {
                    result = -1;
                    goto done;
                }
                goto reject; /* a timestamp 2**63 ms from the section's first: Python */
            }
        }
    }
    if (sec == NULL) {
        body = PyBytes_FromStringAndSize(NULL, body_len);
        if (body == NULL) {
            result = -1;
            goto done;
        }
        p = PyBytes_AS_STRING(body);
    }
    char *const body_start = p;
#define PUT(src, n)                                                                            \
    do {                                                                                       \
        memcpy(p, (src), (size_t)(n));                                                         \
        p += (n);                                                                              \
    } while (0)
#define PUT_BYTES(obj) PUT(PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
    PUT_BYTES(f_key);
    p = len_varint_put(p, value_len);
    PUT_BYTES(f_head);
    PUT(stamp, stamp_len);
    PUT_BYTES(f_middle);
    if (spliced) {
        PUT_BYTES(labels);
    } else {
        *p++ = '{';
        for (Py_ssize_t i = 0; i < nl; i++) {
            if (i) *p++ = ',';
            p = json_str_put_known(p, labels_buf[i].name, labels_buf[i].name_len,
                                   labels_buf[i].name_json);
            *p++ = ':';
            p = json_str_put_known(p, labels_buf[i].value, labels_buf[i].value_len,
                                   labels_buf[i].value_json);
        }
        *p++ = '}';
    }
    PUT(RAW_LEN, CLEN(RAW_LEN));
    PUT(raw_len_txt, raw_len_len);
    PUT(RAW, CLEN(RAW));
    p = b64_put(p, (const unsigned char *)PyBytes_AS_STRING(raw), raw_len);
    PUT(PAYLOAD, CLEN(PAYLOAD));
    PUT_BYTES(payload);
    *p++ = '}';
    p = len_varint_put(p, 8 + nl);
    PUT_BYTES(f_headers);
    PUT(TS_HEADER, CLEN(TS_HEADER));
    p = len_varint_put(p, stamp_len);
    PUT(stamp, stamp_len);
    for (Py_ssize_t i = 0; i < nl; i++) {
        const label_t *l = &labels_buf[i];
        p = len_varint_put(p, l->name_len + 2);
        *p++ = 'l';
        *p++ = '.';
        PUT(l->name, l->name_len);
        p = len_varint_put(p, l->value_len);
        PUT(l->value, l->value_len);
    }
#undef PUT_BYTES
#undef PUT
    if (p != body_start + body_len) {
        PyErr_SetString(PyExc_SystemError, "kafka_fast: body length mismatch");
        result = -1;
        goto done;
    }
    if (sec != NULL) {
        budget->records -= 1;
        budget->bytes -= held;
        *size = held;
        result = 3;
        goto done;
    }

    stamp_obj = PyLong_FromLongLong(ts_ms);
    if (stamp_obj == NULL) {
        result = -1;
        goto done;
    }
    PyObject *size_obj = PyLong_FromSsize_t(held);
    if (size_obj == NULL) {
        result = -1;
        goto done;
    }
    message = ((PyTypeObject *)c->message_type)->tp_alloc((PyTypeObject *)c->message_type, 6);
    if (message == NULL) {
        Py_DECREF(size_obj);
        result = -1;
        goto done;
    }
    PyTuple_SET_ITEM(message, 0, topic);
    topic = NULL;
    PyTuple_SET_ITEM(message, 1, Py_NewRef(f_hash));
    PyTuple_SET_ITEM(message, 2, body);
    body = NULL;
    PyTuple_SET_ITEM(message, 3, stamp_obj);
    stamp_obj = NULL;
    PyTuple_SET_ITEM(message, 4, size_obj);
    PyTuple_SET_ITEM(message, 5, Py_NewRef(c->keep ? record : Py_None));
    /* Without the record, a Message holds only str, int and bytes: no cycle can go through
     * it, so the collector need not scan it (CPython untracks such tuples itself, but not
     * instances of a tuple subclass: 200,000 queued Messages were rescanned by every older-
     * generation collection). */
    if (!c->keep)
        PyObject_GC_UnTrack(message);
    if (PyList_Append(out, message) < 0) {
        result = -1;
        goto done;
    }
    *size = held;
    result = 1;
    goto done;

reject_no_payload:
    payload = NULL;
reject:
    PyErr_Clear();
    result = 0;
done:
    Py_XDECREF(key);
    Py_XDECREF(flow);
    Py_XDECREF(labels);
    Py_XDECREF(raw);
    Py_XDECREF(payload);
    Py_XDECREF(ts_obj);
    Py_XDECREF(body);
    Py_XDECREF(topic);
    Py_XDECREF(stamp_obj);
    Py_XDECREF(message);
    return result;
}

/* What a run of encode_one() did: held bytes and count written into sections, records
 * refused for want of room, held bytes of the Messages. */
typedef struct {
    Py_ssize_t held, count, refused, message_held;
} tally_t;

/* encode_one() over records[start:] until a record the Python path must take: its index
 * (len(records) when none), or -1 with an error. The length is read again each time: a
 * record's property may shrink the list. */
static Py_ssize_t encode_loop(const ctx_t *c, PyObject *records, Py_ssize_t start,
                              PyObject *out, budget_t *budget, tally_t *t) {
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < PyList_GET_SIZE(records); i++) {
        Py_ssize_t size = 0;
        PyObject *record = PyList_GET_ITEM(records, i);
        prefetch_ahead(records, i);
        Py_INCREF(record);
        int r = encode_one(c, record, out, budget, &size);
        Py_DECREF(record);
        if (r < 0) return -1;
        if (r == 0) break;
        if (r == 2) {
            t->refused++;
        } else if (r == 1) {
            t->message_held += size;
        } else {
            t->held += size;
            t->count++;
        }
    }
    return i;
}

/* The arguments encode_bodies() and encode_sections() share: records, start, out, flows,
 * new_flow, dumps, topic, topics, prefix (0-8), max_size and framing (at ms and ms + 1) and
 * message_type (at mt), checked and taken into *c (keep 0, no route). 0, or -1 with an
 * exception (a TypeError named after fn). */
static int shared_args(const char *fn, PyObject *const *args, Py_ssize_t ms, Py_ssize_t mt,
                       ctx_t *c, Py_ssize_t *start) {
    *start = PyLong_AsSsize_t(args[1]);
    if (*start == -1 && PyErr_Occurred()) return -1;
    if (!PyList_Check(args[0]) || !PyList_Check(args[2]) || !PyDict_Check(args[3])
        || !PyDict_Check(args[7]) || !PyUnicode_Check(args[8])
        || (args[6] != Py_None && !PyUnicode_Check(args[6])) || !PyType_Check(args[mt])
        || !PyType_IsSubtype((PyTypeObject *)args[mt], &PyTuple_Type)) {
        PyErr_Format(PyExc_TypeError, "%s(): bad argument types", fn);
        return -1;
    }
    *c = (ctx_t){args[3], args[4], args[5], args[6], args[7], args[8], args[mt], 0,
                 PyLong_AsSsize_t(args[ms]), PyLong_AsSsize_t(args[ms + 1]), NULL};
    return PyErr_Occurred() ? -1 : 0;
}

PyDoc_STRVAR(encode_bodies_doc,
             "encode_bodies(records, start, out, flows, new_flow, dumps, topic, topics, prefix, "
             "keep, max_size, framing, message_type) -> (stop, held)\n\n"
             "Messages of records[start:] appended to out until a record the Python path must "
             "encode (its index is ``stop``; len(records) when none); ``held`` is the sum of "
             "their held sizes.");

static PyObject *encode_bodies(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "encode_bodies() takes 13 arguments");
        return NULL;
    }
    ctx_t c;
    Py_ssize_t start;
    if (shared_args("encode_bodies", args, 10, 12, &c, &start) < 0) return NULL;
    c.keep = PyObject_IsTrue(args[9]);
    if (c.keep < 0) return NULL;
    budget_t budget = {0, 0};
    tally_t t = {0, 0, 0, 0};
    Py_ssize_t stop = encode_loop(&c, args[0], start, args[2], &budget, &t);
    return stop < 0 ? NULL : Py_BuildValue("nn", stop, t.message_held);
}

PyDoc_STRVAR(encode_sections_doc,
             "encode_sections(records, start, out, flows, new_flow, dumps, topic, topics, "
             "prefix, max_size, framing, message_type, routes, sealed, pool, limit, "
             "room_records, room_bytes) -> (stop, held, count, refused, message_held)\n\n"
             "encode_bodies() writing each record straight into the open section of its "
             "partition (``routes``: topic -> list of Sections, by key hash; a section without "
             "room for the next record within ``limit`` bytes goes to ``sealed`` and a reset "
             "one from ``pool``, or a new one, takes its place); a record whose topic has no "
             "route yet becomes a Message appended to ``out``. Records beyond the room left "
             "(``room_records``, ``room_bytes`` held) are refused and counted; ``stop`` is the "
             "first record the Python path must take; ``held`` and ``count`` what was written "
             "into sections, ``message_held`` the held size of the Messages.");

static PyObject *encode_sections(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 18) {
        PyErr_SetString(PyExc_TypeError, "encode_sections() takes 18 arguments");
        return NULL;
    }
    ctx_t c;
    Py_ssize_t start;
    if (shared_args("encode_sections", args, 9, 11, &c, &start) < 0) return NULL;
    if (!PyDict_CheckExact(args[12]) || !PyList_CheckExact(args[13])
        || !PyList_CheckExact(args[14])) {
        PyErr_SetString(PyExc_TypeError, "encode_sections(): bad argument types");
        return NULL;
    }
    route_t route = {args[12], args[13], args[14], PyLong_AsSsize_t(args[15])};
    c.route = &route;
    budget_t budget = {PyLong_AsSsize_t(args[16]), PyLong_AsSsize_t(args[17])};
    if (PyErr_Occurred()) return NULL;
    tally_t t = {0, 0, 0, 0};
    Py_ssize_t stop = encode_loop(&c, args[0], start, args[2], &budget, &t);
    return stop < 0 ? NULL
                    : Py_BuildValue("nnnnn", stop, t.held, t.count, t.refused, t.message_held);
}

/* The sizing pass of a records section over a snapshot of messages (a tuple) whose first one
 * has offset delta ``base``: the length of its first *count messages (all of them, or as many
 * as fit in ``limit`` bytes, at least one; *count is set to how many) and their largest
 * timestamp (at least ``first``); -1 with an exception on a message that is not a Message of
 * int timestamp. */
static Py_ssize_t section_size(PyObject *messages, long long first, Py_ssize_t base,
                               Py_ssize_t limit, Py_ssize_t *count, long long *max_ts) {
    Py_ssize_t n = PyTuple_GET_SIZE(messages), total = 0, i = 0;
    *max_ts = first;
    for (; i < n; i++) {
        PyObject *m = PyTuple_GET_ITEM(messages, i);
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 6 || !PyBytes_Check(PyTuple_GET_ITEM(m, 2))
            || !PyLong_Check(PyTuple_GET_ITEM(m, 3))) {
            PyErr_SetString(PyExc_TypeError, "records_section(): not a Message");
            return -1;
        }
        long long stamp = PyLong_AsLongLong(PyTuple_GET_ITEM(m, 3));
        if (stamp == -1 && PyErr_Occurred()) return -1;
        long long delta;
        if (__builtin_sub_overflow(stamp, first, &delta)) {
            PyErr_SetString(PyExc_OverflowError, "records_section(): timestamp delta");
            return -1;
        }
        Py_ssize_t size = 1 + uvarint_len(zigzag(delta)) + uvarint_len(zigzag(base + i))
                          + PyBytes_GET_SIZE(PyTuple_GET_ITEM(m, 2));
        Py_ssize_t framed = uvarint_len(zigzag(size)) + size;
        if (i > 0 && total + framed > limit) break;
        total += framed;
        if (stamp > *max_ts) *max_ts = stamp;
    }
    *count = i;
    return total;
}

/* The writing pass: exactly section_size() bytes from p on, for the first count messages. */
static void section_write(PyObject *messages, long long first, Py_ssize_t base, Py_ssize_t count,
                          char *p) {
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *m = PyTuple_GET_ITEM(messages, i), *body = PyTuple_GET_ITEM(m, 2);
        long long stamp = PyLong_AsLongLong(PyTuple_GET_ITEM(m, 3));
        uint64_t delta = zigzag(stamp - first), offset = zigzag(base + i);
        Py_ssize_t size = 1 + uvarint_len(delta) + uvarint_len(offset) + PyBytes_GET_SIZE(body);
        p = uvarint_put(p, zigzag(size));
        *p++ = 0;
        p = uvarint_put(p, delta);
        p = uvarint_put(p, offset);
        memcpy(p, PyBytes_AS_STRING(body), (size_t)PyBytes_GET_SIZE(body));
        p += PyBytes_GET_SIZE(body);
    }
}

PyDoc_STRVAR(records_section_doc,
             "records_section(messages, first_ts) -> (bytes, max_ts)\n\n"
             "The uncompressed records of a batch: per message its body with length, attributes "
             "0, timestamp delta and offset delta in front; and the largest timestamp.");

static PyObject *records_section(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "records_section(messages: list, first_ts: int)");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[1]);
    if (first == -1 && PyErr_Occurred()) return NULL;
    /* A snapshot of the list (it holds the messages), and timestamps that are ints (read
     * without calling __index__): no Python code runs between sizing and writing, so both
     * passes see the same messages, bodies and timestamps. */
    PyObject *messages = PyList_AsTuple(args[0]);
    if (messages == NULL) return NULL;
    long long max_ts;
    Py_ssize_t count;
    Py_ssize_t total = section_size(messages, first, 0, PY_SSIZE_T_MAX, &count, &max_ts);
    PyObject *section = total < 0 ? NULL : PyBytes_FromStringAndSize(NULL, total);
    if (section != NULL) section_write(messages, first, 0, count, PyBytes_AS_STRING(section));
    Py_DECREF(messages);
    return section == NULL ? NULL : Py_BuildValue("NL", section, max_ts);
}

PyDoc_STRVAR(records_section_into_doc,
             "records_section_into(scratch, messages, first_ts, start, limit) -> "
             "(length, max_ts, stop)\n\n"
             "Part of records_section(): the records of messages[start:stop] (offset deltas "
             "from ``start`` on), as many as fit in ``limit`` bytes and at least one, written at "
             "the start of the bytearray ``scratch`` (grown when too small, never shrunk: the "
             "sender reuses it for every part, so a section costs no allocation and stays in "
             "the cache for the compressor); their length and largest timestamp (at least "
             "``first_ts``), and ``stop``. Parts written and compressed one after the other "
             "make the whole section.");

static PyObject *records_section_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyByteArray_CheckExact(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "records_section_into(scratch: bytearray, messages: "
                                         "list, first_ts: int, start: int, limit: int)");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[2]);
    if (first == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[4]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (start < 0 || start >= PyList_GET_SIZE(args[1])) {
        PyErr_SetString(PyExc_IndexError, "records_section_into(): start out of range");
        return NULL;
    }
    /* a snapshot of messages[start:], as in records_section() */
    PyObject *messages = PyList_GetSlice(args[1], start, PY_SSIZE_T_MAX);
    if (messages == NULL) return NULL;
    PyObject *snapshot = PyList_AsTuple(messages);
    Py_DECREF(messages);
    if (snapshot == NULL) return NULL;
    long long max_ts;
    Py_ssize_t count;
    Py_ssize_t total = section_size(snapshot, first, start, limit, &count, &max_ts);
    if (total >= 0 && PyByteArray_GET_SIZE(args[0]) < total
        && PyByteArray_Resize(args[0], total) < 0) /* BufferError while exported */
        total = -1;
    if (total >= 0) section_write(snapshot, first, start, count, PyByteArray_AS_STRING(args[0]));
    Py_DECREF(snapshot);
    return total < 0 ? NULL : Py_BuildValue("nLn", total, max_ts, start + count);
}


/* -- CRC-32C (Castagnoli) of record batches: SSE4.2 when the CPU has it, else a table ------ */

static uint32_t crc_table[256];
static int crc_hw = 0;

static void init_crc(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                                size_t n) {
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
    }
    crc = (uint32_t)c;
    for (; n > 0; n--, p++) crc = __builtin_ia32_crc32qi(crc, *p);
    return crc;
}
#endif

/* CRC-32C of the concatenation of the pieces (pre- and post-inverted as Kafka's). */
static uint32_t crc32c_update(uint32_t crc, const unsigned char *p, size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (crc_hw) return crc32c_sse42(crc, p, n);
#endif
    return crc32c_table(crc, p, n);
}

PyDoc_STRVAR(crc32c_doc, "crc32c(data) -> int\n\nCRC-32C (Castagnoli) of a bytes-like object.");

static PyObject *py_crc32c(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t crc = ~crc32c_update(0xFFFFFFFFu, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static inline char *be_put(char *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) *p++ = (char)(v >> (8 * i));
    return p;
}

PyDoc_STRVAR(batch_doc,
             "batch(records, attributes, count, first_ts, max_ts, producer_id, producer_epoch, "
             "base_sequence) -> bytes\n\n"
             "A whole RecordBatch (v2): the 61-byte header with its CRC-32C, then ``records`` "
             "(the records section, compressed or not).");

static PyObject *batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "batch(records: bytes, attributes, count, first_ts, "
                                         "max_ts, producer_id, producer_epoch, base_sequence)");
        return NULL;
    }
    long long v[7];
    for (int i = 0; i < 7; i++) {
        v[i] = PyLong_AsLongLong(args[i + 1]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    long long attributes = v[0], count = v[1], producer_epoch = v[5], base_sequence = v[6];
    if (attributes < -32768 || attributes > 32767 || producer_epoch < -32768
        || producer_epoch > 32767 || count < 1 || count > INT32_MAX || base_sequence < INT32_MIN
        || base_sequence > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "batch(): a header field out of range");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (n > INT32_MAX - 61) {
        PyErr_SetString(PyExc_OverflowError, "batch(): records too large");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, 61 + n);
    if (out == NULL) return NULL;
    char *start = PyBytes_AS_STRING(out), *p = start;
    p = be_put(p, 0, 8);                    /* base offset: the broker assigns it */
    p = be_put(p, (uint64_t)(49 + n), 4);   /* length: the bytes after this field */
    p = be_put(p, (uint64_t)-1, 4);         /* partition leader epoch */
    *p++ = 2;                               /* magic */
    char *crc_at = p;
    p += 4;
    p = be_put(p, (uint64_t)attributes, 2);
    p = be_put(p, (uint64_t)(count - 1), 4); /* last offset delta */
    p = be_put(p, (uint64_t)v[2], 8);        /* first timestamp */
    p = be_put(p, (uint64_t)v[3], 8);        /* max timestamp */
    p = be_put(p, (uint64_t)v[4], 8);        /* producer id */
    p = be_put(p, (uint64_t)producer_epoch, 2);
    p = be_put(p, (uint64_t)base_sequence, 4);
    p = be_put(p, (uint64_t)count, 4);
    memcpy(p, PyBytes_AS_STRING(args[0]), (size_t)n);
    uint32_t crc = ~crc32c_update(0xFFFFFFFFu, (const unsigned char *)crc_at + 4,
                                  (size_t)(40 + n));
    be_put(crc_at, crc, 4);
    return out;
}

static PyMethodDef methods[] = {
    {"encode_bodies", (PyCFunction)(void (*)(void))encode_bodies, METH_FASTCALL,
     encode_bodies_doc},
    {"encode_sections", (PyCFunction)(void (*)(void))encode_sections, METH_FASTCALL,
     encode_sections_doc},
    {"route", (PyCFunction)(void (*)(void))py_section_route, METH_FASTCALL, section_route_doc},
    {"records_section", (PyCFunction)(void (*)(void))records_section, METH_FASTCALL,
     records_section_doc},
    {"records_section_into", (PyCFunction)(void (*)(void))records_section_into, METH_FASTCALL,
     records_section_into_doc},
    {"set_record_type", set_record_type, METH_O, set_record_type_doc},
    {"crc32c", py_crc32c, METH_O, crc32c_doc},
    {"batch", (PyCFunction)(void (*)(void))batch, METH_FASTCALL, batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kafka_fast",
    "Kafka record bodies and records sections in C (optional; the Python path is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kafka_fast(void) {
    init_escapes();
    init_b64();
    init_crc();
#define INTERN(var, text)                                                                      \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(s_payload, "payload");
    INTERN(s_serialized_payload, "serialized_payload");
    INTERN(s_serialized_labels, "serialized_labels");
    INTERN(s_labels, "labels");
#undef INTERN
    for (int f = 0; f < F_COUNT; f++)
        if ((field_attr[f] = PyUnicode_InternFromString(field_names[f])) == NULL) return NULL;
    if (PyType_Ready(&SectionType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObject(m, "Section", Py_NewRef((PyObject *)&SectionType)) < 0) {
        Py_DECREF(&SectionType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
