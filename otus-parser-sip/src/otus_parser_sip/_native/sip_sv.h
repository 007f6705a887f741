/* Helpers shared by the C writers (sip_json.c: head, sip_sdp.c: body, sip_batch.c): string
 * views over the message bytes, the small lexical functions they mirror from the Python
 * reference, the canonical header ids and the OK / BAIL / ERR convention (BAIL = decline);
 * the word hash of the small string cache (sip_fast.c) and the media table (sip_media.c). */
#ifndef OTUS_SIP_SV_H
#define OTUS_SIP_SV_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "sip_scan.h"

/* Ids of canonical names: indexes into NAMES of sip_scan.c (SIP_NAMES of _scan.py). */
enum {
    ID_VIA = 0, ID_FROM = 1, ID_TO = 2, ID_CALL_ID = 3, ID_CSEQ = 4, ID_CONTACT = 5,
    ID_CONTENT_LENGTH = 6, ID_CONTENT_TYPE = 7, ID_MAX_FORWARDS = 8, ID_USER_AGENT = 9,
    ID_SERVER = 10, ID_EXPIRES = 11, ID_REASON = 12, ID_SUBJECT = 13, ID_SUPPORTED = 14,
    ID_ALLOW = 15, ID_EVENT = 16, ID_ROUTE = 17, ID_RECORD_ROUTE = 18, ID_PAI = 19, ID_DATE = 20,
    N_IDS = 39
};

#define OK 0
#define BAIL 1
#define ERR (-1)
#define TRY(x)                                                                                \
    do {                                                                                      \
        int rc_ = (x);                                                                        \
        if (rc_ != OK)                                                                        \
            return rc_;                                                                       \
    } while (0)


typedef struct {
    const char *p;
    Py_ssize_t n;
} sv;

/* n bytes mixed into h a word at a time (the last partial word zero-padded), not finalised:
 * the small string cache (sip_fast.c) and the media table (sip_media.c) each finish it their
 * way. ~4x fewer multiplies than byte-wise FNV on the 10-40 byte values they hash. */
static inline uint64_t sv_hash_words(const char *p, size_t n, uint64_t h) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 29;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, n - i);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    }
    return h;
}

static inline int is_ws(char c) { return c == ' ' || c == '\t'; }

static inline sv trim(sv s) {
    while (s.n > 0 && is_ws(s.p[0])) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && is_ws(s.p[s.n - 1]))
        s.n--;
    return s;
}

static inline Py_ssize_t find(sv s, char c) {
    if (s.n <= 24) { /* the usual short value: a loop costs less than the call */
        for (Py_ssize_t i = 0; i < s.n; i++)
            if (s.p[i] == c)
                return i;
        return -1;
    }
    const char *q = memchr(s.p, c, (size_t)s.n);
    return q == NULL ? -1 : q - s.p;
}

static inline Py_ssize_t rfind(sv s, char c) {
    for (Py_ssize_t i = s.n - 1; i >= 0; i--)
        if (s.p[i] == c)
            return i;
    return -1;
}

static inline sv sub(sv s, Py_ssize_t a, Py_ssize_t b) {
    sv r = {s.p + a, b - a};
    return r;
}

static inline int eq(sv s, const char *lit) {
    size_t n = strlen(lit);
    return (size_t)s.n == n && memcmp(s.p, lit, n) == 0;
}

/* Digits only, at most maxlen of them, value into *v. */
static inline int digits(sv s, Py_ssize_t maxlen, long long *v) {
    if (s.n == 0 || s.n > maxlen)
        return 0;
    long long x = 0;
    for (Py_ssize_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return 0;
        x = x * 10 + (s.p[i] - '0');
    }
    *v = x;
    return 1;
}

/* Index of the '"' closing the quoted string that opens at s.p[i], or -1 (decline) when it
 * is unterminated or holds a backslash escape (the reference unescapes; left to Python). */
static inline Py_ssize_t close_quote(sv s, Py_ssize_t i) {
    for (Py_ssize_t j = i + 1; j < s.n; j++) {
        if (s.p[j] == '"')
            return j;
        if (s.p[j] == '\\')
            return -1;
    }
    return -1;
}

/* _text.split_quoted(s, ","): the next part of s from *pos (quotes and <...> skipped). */
static inline int next_part(sv s, Py_ssize_t *pos, sv *part) {
    Py_ssize_t i = *pos, start = *pos;
    while (i < s.n) {
        char c = s.p[i];
        if (c == '"') {
            Py_ssize_t j = close_quote(s, i);
            if (j < 0)
                return BAIL;
            i = j + 1;
            continue;
        }
        if (c == '<') {
            Py_ssize_t j = find(sub(s, i, s.n), '>');
            i = j < 0 ? s.n : i + j + 1;
            continue;
        }
        if (c == ',')
            break;
        i++;
    }
    *part = sub(s, start, i);
    *pos = i + 1;
    return OK;
}

static const char TOKEN_CHARS[] = "-.!%*_+`'~";

static inline int is_token(sv s) {
    for (Py_ssize_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c != '\0' && strchr(TOKEN_CHARS, c) != NULL)))
            return 0;
    }
    return 1;
}

/* A str from a short ASCII view, shared through a small cache (defined in sip_fast.c). */
PyObject *otus_sip_small_str(sv s);
/* A bytes object of p[:n] for a record (kind: OTUS_SIP_RAW, _JSON or _LABELS), recycled
 * from one whose record is gone where it can be (defined in sip_fast.c). */
enum { OTUS_SIP_RAW, OTUS_SIP_JSON, OTUS_SIP_LABELS, OTUS_SIP_BYTES_KINDS };
PyObject *otus_sip_bytes(int kind, const char *p, Py_ssize_t n);
/* _sip_fast.parse_json (defined in sip_json.c). */
PyObject *otus_sip_parse_json(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
int otus_sip_json_init(void);

/* What the dialog table reads of a message's labels, as views into the message (sip.call_id,
 * sip.method: the request's method or, for a response, the CSeq method; the CSeq number, the
 * top Via branch;
 * sip.cseq_method,
 * the tags, users and URIs of From and To; has_*: the label is there). */
typedef struct {
    sv call_id, method, cseq_method, from_tag, to_tag, from_user, to_user, from_uri, to_uri;
    long long cseq; /* the CSeq number */
    sv branch;      /* the top Via branch (has_branch) */
    int has_from_tag, has_to_tag, has_from_user, has_to_user, has_branch;
} sip_lview;

/* The media registry's part of one SDP, as views into the message (sip_sdp.c fills it for
 * the batch path instead of _body.media_of's tuples): per registrable media the address and
 * port of RTP, of RTCP (raddr/rport) unless mux, the media and its codecs, pt[c0 .. c0 + nc)
 * and enc[...] (rtpmap payload types and encodings, in order). */
#define SIP_MSUM_MAX 16
#define SIP_MSUM_CODECS 64
typedef struct {
    sv addr, raddr, media;
    long long port, rport;
    int mux, c0, nc;
} sip_msum;
typedef struct {
    int n;
    sip_msum m[SIP_MSUM_MAX];
    sv pt[SIP_MSUM_CODECS], enc[SIP_MSUM_CODECS];
} sip_msums;

/* One message framed and written as payload JSON (sip_json.c): json, labels (a dict, or NULL
 * when they were written as JSON instead) and media (a new reference or NULL when the body has
 * no media summary); body and ctype only when the body was left to Python (partial), else
 * NULL; method the request method (empty for responses); lv the label views. */
typedef struct {
    PyObject *json, *labels, *media, *body, *ctype;
    long status;
    Py_ssize_t trailing;
    sv method;
    sip_lview lv;
    sip_msums *msum; /* set by the caller: the SDP's media summary goes here (NULL: r->media) */
} sip_jres;
/* Drops the references *r holds (each may be NULL). */
static inline void sip_jres_clear(sip_jres *r) {
    Py_CLEAR(r->json);
    Py_CLEAR(r->labels);
    Py_CLEAR(r->body);
    Py_CLEAR(r->ctype);
    Py_CLEAR(r->media);
}
struct jb;
/* OK: *r filled; BAIL: declined (also when the body was left to Python and !partial); ERR: a
 * Python exception is set. With lab, the labels are written into it as JSON (from its start:
 * the object's opening brace and members, no closing brace: the dialog labels follow) instead
 * of a dict in r->labels. */
int otus_sip_json_core(const char *buf, Py_ssize_t size, long max_headers, long max_line,
                       int datagram, int parse_sdp, int partial, sip_jres *r, struct jb *lab);
/* The media registry's C table (sip_media.c): the type added to the module; 1 when o is one;
 * an SDP's endpoints registered (expiring at `expires`), a call ended (its flows expire at
 * `expires` at the latest). 0, or -1 with an exception set. */
int otus_sip_mreg_ready(PyObject *module);
int otus_sip_mreg_check(PyObject *o);
int otus_sip_mreg_sdp(PyObject *reg, const sip_msums *ms, PyObject *call_id, long long expires);
int otus_sip_mreg_end(PyObject *reg, PyObject *call_id, long long expires);
/* _sip_fast.parse_batch (defined in sip_batch.c). */
PyObject *otus_sip_parse_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

#endif
