/* SIP message straight to payload JSON: the fast path of parser.SipParser._one.
 *
 * parse_json(data, max_headers, max_line, datagram, parse_sdp) frames one message and writes its
 * payload as the bytes orjson.dumps would give for the dict _message.parse_message builds (same
 * keys in the same order, compact, orjson's escaping) -- without building the dict. It returns
 * (json, labels, status, trailing, body, content_type, media): json is the whole payload when
 * body is None -- the body description written by sip_sdp.c, media its summary for the media
 * registry (_body.media_of) or None -- else it lacks the body and the closing brace (sip_sdp.c
 * declined; the caller appends ',"body":' + orjson.dumps(parse_body(body, content_type)) + '}');
 * labels are parser.labels_of(payload); status is the status code (0 for requests); trailing
 * the octets after Content-Length (0 if none). It mirrors the Python reference (_message.py,
 * _headers.py, _uri.py, _text.py) function by function and returns None -- the reference
 * runs -- whenever the message is not plainly well formed: any reject or anomaly the reference
 * would raise, a repeated identity header, whitespace inside a URI or outside quotes in
 * parameters, a backslash escape, '<' in parameters, non-ASCII or control bytes in the head,
 * duplicate parameter names (a dict would merge them), repeated User-Agent, Server or
 * Content-Type, a missing Content-Length outside datagrams, a Content-Length beyond the data.
 * Declining is always safe, so a result, when there is one, equals the reference:
 * tests/test_sip_json.py checks the bytes against orjson.dumps(reference payload).
 */
#include "sip_jb.h"
/* A key literal with its length (no strlen per message). */
#define KL(s) {"" s, sizeof("" s) - 1}
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static int eq_nocase(sv a, sv b) {
    if (a.n != b.n)
        return 0;
    for (Py_ssize_t i = 0; i < a.n; i++) {
        char x = a.p[i], y = b.p[i];
        if (x >= 'A' && x <= 'Z')
            x |= 0x20;
        if (y >= 'A' && y <= 'Z')
            y |= 0x20;
        if (x != y)
            return 0;
    }
    return 1;
}

/* Inline so strlen of a literal folds to a constant. */
static inline int eq_lit_nocase(sv a, const char *lit) {
    sv l = {lit, (Py_ssize_t)strlen(lit)};
    return eq_nocase(a, l);
}

/* Values of the parameters the payload copies or the labels need. */
enum { P_TAG, P_BRANCH, P_RECEIVED, P_RPORT, N_P };
static const char *const P_NAMES[N_P] = {"tag", "branch", "received", "rport"};
static const Py_ssize_t P_LENS[N_P] = {3, 6, 8, 5};
typedef struct {
    sv v[N_P];
    int has[N_P];
} pinfo;

#define MAX_PARAMS 24

/* _text.parse_params as a JSON object; declines a repeated name (a dict merges them). */
static int params_json(jb *b, sv s, pinfo *pi) {
    sv names[MAX_PARAMS];
    int nn = 0;
    memset(pi, 0, sizeof(*pi));
    /* room: the names and values are in s (6 bytes per byte escaped), 6 bytes of punctuation
     * per parameter (at most one per byte of s, plus one) */
    char *d;
    W_OPEN(b, (size_t)s.n * 12 + 40);
    uintptr_t lo = b->rd_lo, hi = b->rd_hi;
    *d++ = '{';
    Py_ssize_t start = 0, i = 0;
    static const char PSTOP[6] = {'"', '<', '\\', ';', ' ', '\t'};
    while (i <= s.n) {
        if (i < s.n) { /* to the next byte that is not plain: quote, '<', '\\', ';', space */
            Py_ssize_t j = jb_find_any(b, sub(s, i, s.n), PSTOP, 6);
            i = j < 0 ? s.n : i + j;
        }
        if (i < s.n) {
            char c = s.p[i];
            if (c == '"') {
                Py_ssize_t j = close_quote(s, i);
                if (j < 0)
                    return BAIL;
                i = j + 1;
                continue;
            }
            if (c == '<' || c == '\\' || is_ws(c))
                return BAIL;
            if (c != ';') {
                i++;
                continue;
            }
        }
        sv part = sub(s, start, i);
        if (part.n > 0) {
            Py_ssize_t e = jb_find(b, part, '=');
            sv name = e < 0 ? part : sub(part, 0, e);
            sv value = e < 0 ? sub(part, 0, 0) : sub(part, e + 1, part.n);
            if (value.n >= 2 && value.p[0] == '"' && value.p[value.n - 1] == '"')
                value = sub(value, 1, value.n - 1);
            if (nn == MAX_PARAMS)
                return BAIL;
            for (int k = 0; k < nn; k++)
                if (eq_nocase(names[k], name))
                    return BAIL;
            names[nn++] = name;
            if (nn > 1)
                *d++ = ',';
            *d++ = '"';
            d = w_case(d, name, 1, lo, hi);
            *d++ = '"';
            *d++ = ':';
            d = w_str(d, value, lo, hi);
            for (int k = 0; k < N_P; k++) {
                if (name.n == P_LENS[k] && eq_nocase(name, (sv){P_NAMES[k], P_LENS[k]})) {
                    pi->v[k] = value;
                    pi->has[k] = 1;
                }
            }
        }
        start = i + 1;
        i++;
    }
    *d++ = '}';
    W_SYNC(b);
    return OK;
}

typedef struct {
    sv raw;
    int has_user;
    sv user;
} uinfo;

/* _uri.parse_uri as a JSON object (a URI without whitespace). */
static int uri_json(jb *b, sv raw, uinfo *ui, int *has_headers) {
    pinfo pi;
    ui->raw = raw;
    ui->has_user = 0;
    ui->user = sub(raw, 0, 0);
    *has_headers = 0;
    /* room: raw twice (itself and its parts, 6 bytes per byte escaped) and the keys; params
     * reserve their own */
    char *d;
    W_OPEN(b, (size_t)raw.n * 12 + 160);
    uintptr_t lo = b->rd_lo, hi = b->rd_hi;
    d = WLIT(d, "{\"raw\":");
    d = w_str(d, raw, lo, hi);
    Py_ssize_t colon = jb_find(b, raw, ':');
    if (colon <= 0) {
        d = WLIT(d, ",\"scheme\":\"\"}");
        W_SYNC(b);
        return OK;
    }
    sv scheme = sub(raw, 0, colon);
    int kind = eq_lit_nocase(scheme, "sip") || eq_lit_nocase(scheme, "sips") ? 1
               : eq_lit_nocase(scheme, "tel")                               ? 2
                                                                             : 0;
    d = WLIT(d, ",\"scheme\":\"");
    d = w_case(d, scheme, 1, lo, hi);
    *d++ = '"';
    sv rest = sub(raw, colon + 1, raw.n);
    if (kind == 1) {
        Py_ssize_t at = jb_find(b, rest, '@');
        if (at >= 0) {
            sv u = sub(rest, 0, at);
            rest = sub(rest, at + 1, rest.n);
            Py_ssize_t pc = jb_find(b, u, ':');
            ui->has_user = 1;
            ui->user = pc >= 0 ? sub(u, 0, pc) : u;
            d = WLIT(d, ",\"user\":");
            d = w_str(d, ui->user, lo, hi);
            if (pc >= 0) {
                d = WLIT(d, ",\"password\":");
                d = w_str(d, sub(u, pc + 1, u.n), lo, hi);
            }
        }
        Py_ssize_t q = jb_find(b, rest, '?');
        if (q >= 0) {
            *has_headers = 1;
            d = WLIT(d, ",\"headers\":");
            d = w_str(d, sub(rest, q + 1, rest.n), lo, hi);
            rest = sub(rest, 0, q);
        }
        Py_ssize_t semi = jb_find(b, rest, ';');
        sv host;
        long port;
        jb_split_hostport(b, semi < 0 ? rest : sub(rest, 0, semi), &host, &port);
        d = WLIT(d, ",\"host\":");
        d = w_str(d, host, lo, hi);
        if (port >= 0) {
            d = WLIT(d, ",\"port\":");
            d = w_int(d, port);
        }
        if (semi >= 0) {
            d = WLIT(d, ",\"params\":");
            W_SYNC(b);
            TRY(params_json(b, sub(rest, semi + 1, rest.n), &pi));
            W_OPEN(b, 1);
        }
    } else if (kind == 2) {
        Py_ssize_t semi = jb_find(b, rest, ';');
        ui->has_user = 1;
        ui->user = semi < 0 ? rest : sub(rest, 0, semi);
        d = WLIT(d, ",\"user\":");
        d = w_str(d, ui->user, lo, hi);
        if (semi >= 0) {
            d = WLIT(d, ",\"params\":");
            W_SYNC(b);
            TRY(params_json(b, sub(rest, semi + 1, rest.n), &pi));
            W_OPEN(b, 1);
        }
    } else {
        d = WLIT(d, ",\"opaque\":");
        d = w_str(d, rest, lo, hi);
    }
    *d++ = '}';
    W_SYNC(b);
    return OK;
}

typedef struct {
    uinfo u;
    int has_tag;
    sv tag;
} ninfo;

/* What the labels need of the top Via. */
typedef struct {
    char proto[64];
    Py_ssize_t pn;
    sv transport, host;
    long port;
    int has_branch;
    sv branch;
} vinfo;

/* A memo of recent values and the JSON (and views) their writer gave: a call's messages repeat
 * their From, To, Contact and (within a transaction) Via values, so a repeated value is one
 * hash, one compare and one copy instead of a parse. The writers are pure functions of the value
 * bytes (the readable range only decides how bytes are loaded), so a copy of their output is
 * exactly what they would write again; the views of the info struct are kept as offsets into
 * the value. Direct-mapped, per writer; values or outputs too long for an entry, and declined
 * values, are not kept. */
#define MEMO_KEY 160
#define MEMO_JSON 488
#define MEMO_SV 6
typedef struct {
    uint64_t h;
    uint16_t kn, jn;
    char key[MEMO_KEY];
    char json[MEMO_JSON];
    uintptr_t off[MEMO_SV];
    union {
        ninfo n;
        vinfo v;
    } info;
} memo_ent;

static inline uint64_t memo_hash(sv s) {
    const unsigned char *p = (const unsigned char *)s.p;
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)s.n;
    Py_ssize_t i = 0;
    for (; i + 8 <= s.n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    for (int k = 0; i < s.n; i++, k += 8)
        w |= (uint64_t)p[i] << k;
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* Whether a memo is worth its misses (a hash, a compare and a copy into the table each): it is
 * used in rounds of MEMO_ROUND lookups; a round with fewer than a quarter hits (many calls
 * between two messages of one, so values seldom repeat within the table's reach) turns it off
 * for MEMO_REST lookups, which then run the writers directly, then it is tried again. The
 * output is the same either way. */
#define MEMO_ROUND 1024
#define MEMO_REST 15360
typedef struct {
    uint32_t n, hits, rest;
} memo_use;

/* 1 when the memo is to be used for this lookup. */
static inline int memo_on(memo_use *u) {
    if (u->rest) {
        u->rest--;
        return 0;
    }
    if (++u->n == MEMO_ROUND) {
        if (u->hits < MEMO_ROUND / 4)
            u->rest = MEMO_REST;
        u->n = u->hits = 0;
    }
    return 1;
}

/* The entry of s in a table of 2^bits (its hash in *h), or NULL when s is not there. */
static inline memo_ent *memo_find(memo_ent *t, int bits, sv s, uint64_t *h) {
    if (s.n > MEMO_KEY)
        return NULL;
    *h = memo_hash(s);
    memo_ent *e = &t[*h >> (64 - bits)];
    if (e->h == *h && e->kn == (uint16_t)s.n && e->jn > 0 && memcmp(e->key, s.p, (size_t)s.n) == 0)
        return e;
    return NULL;
}

/* Copies a hit's JSON to b; OK (b->oom set when there was no room, as W_OPEN does). */
static inline int memo_put(jb *b, const memo_ent *e) {
    if (!jb_reserve(b, e->jn))
        return OK;
    memcpy(b->p + b->n, e->json, e->jn);
    b->n += e->jn;
    return OK;
}

/* Keeps s's output (b from `start`) and the views vs[0..nv) (pointers into s or empty). */
static void memo_keep(memo_ent *e, uint64_t h, sv s, const jb *b, size_t start, sv *const *vs,
                      int nv) {
    size_t jn = b->n - start;
    e->jn = 0;
    if (b->oom || s.n > MEMO_KEY || jn == 0 || jn > MEMO_JSON)
        return;
    uintptr_t lo = (uintptr_t)s.p, hi = lo + (uintptr_t)s.n;
    for (int k = 0; k < nv; k++) {
        uintptr_t p = (uintptr_t)vs[k]->p;
        if (vs[k]->n == 0)
            e->off[k] = 0;
        else if (p >= lo && p + (uintptr_t)vs[k]->n <= hi)
            e->off[k] = p - lo;
        else
            return;
    }
    e->h = h;
    e->kn = (uint16_t)s.n;
    memcpy(e->key, s.p, (size_t)s.n);
    memcpy(e->json, b->p + start, jn);
    e->jn = (uint16_t)jn;
}

/* The views of a hit, rebased onto s. */
static inline void memo_views(const memo_ent *e, sv s, sv *const *vs, int nv) {
    for (int k = 0; k < nv; k++)
        vs[k]->p = s.p + e->off[k];
}

/* A writer kept behind a memo: its JSON of s at b, its info struct filled. */
typedef int (*memo_writer)(jb *b, sv s, void *info);

/* `write` through the memo t (2^bits entries, use counts u): a hit copies the kept JSON and
 * info (of info_n bytes; its views vs[0..nv) rebased onto s), a miss writes (the writer sets
 * every view and flag of info, empty ones too) and keeps what was written. */
static inline int memo_json(jb *b, sv s, memo_ent *t, int bits, memo_use *u, sv *const *vs,
                            int nv, void *info, size_t info_n, memo_writer write) {
    uint64_t h = 0;
    int on = memo_on(u);
    memo_ent *e = on ? memo_find(t, bits, s, &h) : NULL;
    if (e != NULL) {
        u->hits++;
        memcpy(info, &e->info, info_n);
        memo_views(e, s, vs, nv);
        return memo_put(b, e);
    }
    size_t start = b->n;
    int rc = write(b, s, info); /* it sets every field it keeps (no memset of the struct) */
    if (on && rc == OK && s.n <= MEMO_KEY) {
        e = &t[h >> (64 - bits)];
        memo_keep(e, h, s, b, start, vs, nv);
        if (e->jn)
            memcpy(&e->info, info, info_n);
    }
    return rc;
}

#define NA_BITS 6
static memo_ent na_memo[1 << NA_BITS];
static memo_use na_use;

static int name_addr_json_1(jb *b, sv s, ninfo *ni);

static int na_write(jb *b, sv s, void *ni) { return name_addr_json_1(b, s, ni); }

/* _headers.parse_name_addr of a trimmed value, as a JSON object (through the memo). */
static int name_addr_json(jb *b, sv s, ninfo *ni) {
    sv *vs[3] = {&ni->u.raw, &ni->u.user, &ni->tag};
    return memo_json(b, s, na_memo, NA_BITS, &na_use, vs, 3, ni, sizeof(*ni), na_write);
}

/* _headers.parse_name_addr of a trimmed value, as a JSON object. */
static int name_addr_json_1(jb *b, sv s, ninfo *ni) {
    sv display = {s.p, 0}, rest = s, uri, params;
    Py_ssize_t lt;
    ni->has_tag = 0;
    ni->tag = display;
    if (s.n > 0 && s.p[0] == '"') {
        Py_ssize_t j = close_quote(s, 0);
        if (j < 0)
            return BAIL;
        display = sub(s, 1, j);
        rest = sub(s, j + 1, s.n);
        lt = jb_find(b, rest, '<');
        if (lt < 0)
            return BAIL;
    } else {
        lt = jb_find(b, rest, '<');
    }
    if (lt >= 0) {
        Py_ssize_t gt = jb_find(b, sub(rest, lt, rest.n), '>');
        if (gt < 0)
            return BAIL;
        gt += lt;
        if (display.n == 0)
            display = trim(sub(rest, 0, lt));
        uri = sub(rest, lt + 1, gt);
        params = sub(rest, gt + 1, rest.n);
    } else {
        Py_ssize_t semi = jb_find(b, rest, ';');
        uri = trim(semi < 0 ? rest : sub(rest, 0, semi));
        params = semi < 0 ? sub(rest, rest.n, rest.n) : sub(rest, semi, rest.n);
    }
    if (jb_has_ws(b, uri))
        return BAIL;
    params = trim(params);
    if (params.n > 0 && params.p[0] != ';')
        return BAIL;
    int hh;
    char *d;
    LIT(b, "{\"uri\":");
    TRY(uri_json(b, uri, &ni->u, &hh));
    /* room: the display name and the tag (both in s, 6 bytes per byte escaped), the keys */
    W_OPEN(b, (size_t)s.n * 12 + 64);
    uintptr_t lo = b->rd_lo, hi = b->rd_hi;
    if (display.n > 0) {
        d = WLIT(d, ",\"display\":");
        d = w_str(d, display, lo, hi);
    }
    if (params.n > 0) {
        pinfo pi;
        d = WLIT(d, ",\"params\":");
        W_SYNC(b);
        TRY(params_json(b, sub(params, 1, params.n), &pi));
        W_OPEN(b, (size_t)s.n * 6 + 40);
        if (pi.has[P_TAG]) {
            ni->has_tag = 1;
            ni->tag = pi.v[P_TAG];
            d = WLIT(d, ",\"tag\":");
            d = w_str(d, ni->tag, lo, hi);
        }
    }
    *d++ = '}';
    W_SYNC(b);
    return OK;
}

/* next_part (sip_sv.h: _text.split_quoted(s, ",")) with the plain bytes skipped by
 * jb_find_any. */
static int next_part_b(const jb *b, sv s, Py_ssize_t *pos, sv *part) {
    static const char STOP[3] = {'"', '<', ','};
    Py_ssize_t i = *pos, start = *pos;
    while (i < s.n) {
        Py_ssize_t j = jb_find_any(b, sub(s, i, s.n), STOP, 3);
        if (j < 0) {
            i = s.n;
            break;
        }
        i += j;
        char c = s.p[i];
        if (c == '"') {
            Py_ssize_t q = close_quote(s, i);
            if (q < 0)
                return BAIL;
            i = q + 1;
            continue;
        }
        if (c == '<') {
            Py_ssize_t k = jb_find(b, sub(s, i, s.n), '>');
            i = k < 0 ? s.n : i + k + 1;
            continue;
        }
        break; /* ',' */
    }
    *part = sub(s, start, i);
    *pos = i + 1;
    return OK;
}

/* _headers.parse_name_addr_list: the entries of one header value, each preceded by a comma unless
 * it is the first of the list (*first). */
static int name_addr_list_json(jb *b, sv value, int *first) {
    sv t = trim(value);
    ninfo ni;
    if (t.n == 1 && t.p[0] == '*') {
        if (!*first)
            LIT(b, ",");
        *first = 0;
        LIT(b, "{\"star\":true}");
        return OK;
    }
    Py_ssize_t pos = 0;
    while (pos <= value.n) {
        sv part;
        TRY(next_part_b(b, value, &pos, &part));
        part = trim(part);
        if (part.n == 0)
            continue;
        if (!*first)
            LIT(b, ",");
        *first = 0;
        TRY(name_addr_json(b, part, &ni));
    }
    return OK;
}


#define VIA_BITS 5
static memo_ent via_memo[1 << VIA_BITS];
static memo_use via_use;

static int via_json_1(jb *b, sv v, vinfo *vi);

static int via_write(jb *b, sv v, void *vi) { return via_json_1(b, v, vi); }

/* _headers.parse_via of one comma-separated part, as a JSON object (through the memo). */
static int via_json(jb *b, sv v, vinfo *vi) {
    sv *vs[3] = {&vi->transport, &vi->host, &vi->branch};
    return memo_json(b, v, via_memo, VIA_BITS, &via_use, vs, 3, vi, sizeof(*vi), via_write);
}

/* _headers.parse_via of one comma-separated part, as a JSON object. */
static int via_json_1(jb *b, sv v, vinfo *vi) {
    vi->transport = vi->host = vi->branch = sub(v, 0, 0);
    vi->has_branch = 0;
    vi->port = -1;
    Py_ssize_t semi = jb_find(b, v, ';');
    sv head = semi < 0 ? v : sub(v, 0, semi);
    Py_ssize_t slash = jb_rfind(b, head, '/');
    if (slash < 0)
        return BAIL;
    vi->pn = 0;
    for (Py_ssize_t i = 0; i < slash; i++) {
        if (is_ws(head.p[i]))
            continue;
        if (vi->pn >= (Py_ssize_t)sizeof(vi->proto))
            return BAIL;
        vi->proto[vi->pn++] = head.p[i];
    }
    sv tail = trim(sub(head, slash + 1, head.n));
    Py_ssize_t e = 0;
    while (e < tail.n && !is_ws(tail.p[e]))
        e++;
    sv transport = sub(tail, 0, e), sentby = sub(tail, e, tail.n);
    if (transport.n == 0 || trim(sentby).n == 0)
        return BAIL;
    vi->transport = transport;
    jb_split_hostport(b, sentby, &vi->host, &vi->port);
    sv proto = {vi->proto, vi->pn};
    /* room: the protocol (vi->proto), transport and host (in v), 6 bytes per byte escaped,
     * and the keys; the params reserve their own, then the copied values (in v) */
    char *d;
    W_OPEN(b, ((size_t)vi->pn + (size_t)v.n) * 6 + 96);
    uintptr_t lo = b->rd_lo, hi = b->rd_hi;
    d = WLIT(d, "{\"protocol\":");
    d = w_str(d, proto, lo, hi);
    d = WLIT(d, ",\"transport\":\"");
    d = w_case(d, transport, 2, lo, hi);
    d = WLIT(d, "\",\"host\":");
    d = w_str(d, vi->host, lo, hi);
    if (vi->port >= 0) {
        d = WLIT(d, ",\"port\":");
        d = w_int(d, vi->port);
    }
    vi->has_branch = 0;
    if (semi >= 0) {
        pinfo pi;
        d = WLIT(d, ",\"params\":");
        W_SYNC(b);
        TRY(params_json(b, sub(v, semi + 1, v.n), &pi));
        W_OPEN(b, (size_t)v.n * 6 + 80);
        static const sv keys[3] = {KL(",\"branch\":"), KL(",\"received\":"), KL(",\"rport\":")};
        for (int k = 0; k < 3; k++) {
            if (pi.has[P_BRANCH + k]) {
                memcpy(d, keys[k].p, (size_t)keys[k].n);
                d += keys[k].n;
                d = w_str(d, pi.v[P_BRANCH + k], lo, hi);
            }
        }
        vi->has_branch = pi.has[P_BRANCH];
        vi->branch = pi.v[P_BRANCH];
    }
    *d++ = '}';
    W_SYNC(b);
    return OK;
}

/* What labels_of reads, as views into the message. */
typedef struct {
    int request;
    long status;
    sv method, ruri, call_id, cseq_method, ua;
    long long cseq;
    int has_ua;
    ninfo from, to;
    vinfo via;
    sv content_type;
    int has_ct;
} minfo;

/* _message._start_line as JSON (no leading brace). */
static int start_line_json(jb *b, sv line, minfo *m) {
    Py_ssize_t i = 0;
#ifdef __SSE2__
    /* 16 bytes at a time: any control byte, DEL or non-ASCII byte (signed: negative) declines */
    for (; i + 16 <= line.n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(line.p + i));
        if (_mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                           _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)))))
            return BAIL;
    }
#endif
    for (; i < line.n; i++) {
        unsigned char c = (unsigned char)line.p[i];
        if (c < 0x20 || c >= 0x7f)
            return BAIL;
    }
    if (line.n >= 4 && memcmp(line.p, "SIP/", 4) == 0) {
        if (line.n < 11 || memcmp(line.p, "SIP/2.0 ", 8) != 0)
            return BAIL;
        const char *c = line.p + 8;
        if (c[0] < '1' || c[0] > '6' || c[1] < '0' || c[1] > '9' || c[2] < '0' || c[2] > '9')
            return BAIL;
        if (line.n > 11 && line.p[11] != ' ')
            return BAIL;
        m->request = 0;
        m->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
        LIT(b, "\"kind\":\"response\",\"status_code\":");
        jb_int(b, m->status);
        LIT(b, ",\"reason\":");
        jb_str(b, line.n > 12 ? sub(line, 12, line.n) : sub(line, 0, 0));
        return OK;
    }
    Py_ssize_t s1 = jb_find(b, line, ' ');
    if (s1 <= 0)
        return BAIL;
    Py_ssize_t s2 = jb_find(b, sub(line, s1 + 1, line.n), ' ');
    if (s2 <= 0)
        return BAIL;
    s2 += s1 + 1;
    sv method = sub(line, 0, s1), ruri = sub(line, s1 + 1, s2), version = sub(line, s2 + 1, line.n);
    if (!eq(version, "SIP/2.0") || !is_token(method))
        return BAIL;
    if (ruri.p[0] == '<' && ruri.p[ruri.n - 1] == '>')
        return BAIL;
    m->request = 1;
    m->status = 0;
    m->method = method;
    m->ruri = ruri;
    LIT(b, "\"kind\":\"request\",\"method\":");
    jb_str(b, method);
    LIT(b, ",\"request_uri\":");
    uinfo ui;
    int hh;
    TRY(uri_json(b, ruri, &ui, &hh));
    return hh ? BAIL : OK;
}

static const int LIST_IDS[4] = {ID_CONTACT, ID_ROUTE, ID_RECORD_ROUTE, ID_PAI};
static const sv LIST_KEYS[4] = {KL(",\"contact\":["), KL(",\"route\":["), KL(",\"record_route\":["),
                                KL(",\"p_asserted_identity\":[")};
/* SCALAR_KEYS in 32-byte arrays: one fixed-size copy each (room reserved). */
static const char SCALAR_PAD[10][32] = {
    ",\"max_forwards\":", ",\"content_type\":", ",\"user_agent\":", ",\"server\":",
    ",\"expires\":",      ",\"reason_header\":", ",\"subject\":",   ",\"supported\":",
    ",\"allow\":",        ",\"event\":"};
static const int SCALAR_IDS[10] = {ID_MAX_FORWARDS, ID_CONTENT_TYPE, ID_USER_AGENT, ID_SERVER,
                                   ID_EXPIRES,      ID_REASON,       ID_SUBJECT,    ID_SUPPORTED,
                                   ID_ALLOW,        ID_EVENT};
static const sv SCALAR_KEYS[10] = {
    KL(",\"max_forwards\":"), KL(",\"content_type\":"), KL(",\"user_agent\":"), KL(",\"server\":"),
    KL(",\"expires\":"),      KL(",\"reason_header\":"), KL(",\"subject\":"),   KL(",\"supported\":"),
    KL(",\"allow\":"),        KL(",\"event\":")};

#define MAX_STACK_HEADERS 256

typedef struct {
    const char *buf;
    const int32_t *spans;
    int n;
    int first[N_IDS];
    int count[(N_IDS + 3) / 4 * 4]; /* whole 16-byte blocks: cleared by block stores */
    int last[N_IDS];                    /* the last header of each id so far */
    int16_t next[MAX_STACK_HEADERS + 1]; /* the next header of the same id, or -1 */
} hdrs;

static sv span(const hdrs *h, int k, int field) {
    const int32_t *o = h->spans + (size_t)k * SIP_SCAN_FIELDS;
    sv s = {h->buf + o[field], o[field + 1] - o[field]};
    return s;
}

static int id_of(const hdrs *h, int k) { return h->spans[(size_t)k * SIP_SCAN_FIELDS + 4]; }

/* The head (_message._parse_head) as JSON, from "{" up to Content-Length exclusive. */
static int head_json(jb *b, hdrs *h, sv line, minfo *m, long long *cl) {
    LIT(b, "{");
    TRY(start_line_json(b, line, m));
    /* The headers list, with the cursor in a register: room for all of it reserved once (the
     * names and values lie in the head, 6 bytes per byte at most, 7 bytes of punctuation per
     * header, 16 spare for w_esc's block stores). */
    size_t head_n = h->n ? (size_t)h->spans[(size_t)(h->n - 1) * SIP_SCAN_FIELDS + 3] : 0;
    if (jb_reserve(b, head_n * 6 + (size_t)h->n * 8 + 64)) {
        char *d = b->p + b->n;
        uintptr_t lo = b->rd_lo, hi = b->rd_hi;
        d = WLIT(d, ",\"headers\":[");
        for (int k = 0; k < h->n; k++) {
            *d = ',';
            d += k > 0;
            *d++ = '[';
            d = w_str(d, span(h, k, 0), lo, hi);
            *d++ = ',';
            d = w_str(d, span(h, k, 2), lo, hi);
            *d++ = ']';
        }
        *d++ = ']';
        b->n = (size_t)(d - b->p);
    }
    for (int k = 0; k < h->n; k++) { /* first, count and next-of-the-same-id per known id */
        int id = id_of(h, k);
        h->next[k] = -1;
        if (id < 0 || id >= N_IDS)
            continue;
        if (h->count[id]++ == 0)
            h->first[id] = k;
        else
            h->next[h->last[id]] = (int16_t)k;
        h->last[id] = k;
    }
    static const int ident[] = {ID_CALL_ID, ID_FROM, ID_TO, ID_CSEQ};
    for (int k = 0; k < 4; k++)
        if (h->count[ident[k]] != 1)
            return BAIL;
    if (h->count[ID_VIA] == 0 || h->count[ID_USER_AGENT] > 1 || h->count[ID_SERVER] > 1 ||
        h->count[ID_CONTENT_TYPE] > 1)
        return BAIL;
    m->call_id = span(h, h->first[ID_CALL_ID], 2);
    LIT(b, ",\"call_id\":");
    jb_str(b, m->call_id);
    LIT(b, ",\"from\":");
    TRY(name_addr_json(b, trim(span(h, h->first[ID_FROM], 2)), &m->from));
    LIT(b, ",\"to\":");
    TRY(name_addr_json(b, trim(span(h, h->first[ID_TO], 2)), &m->to));
    sv cs = trim(span(h, h->first[ID_CSEQ], 2));
    Py_ssize_t sp = 0;
    while (sp < cs.n && !is_ws(cs.p[sp]))
        sp++;
    sv num_s = sub(cs, 0, sp), meth = trim(sub(cs, sp, cs.n));
    if (!digits(num_s, 10, &m->cseq) || m->cseq > 0xFFFFFFFFLL || meth.n == 0 || jb_has_ws(b, meth))
        return BAIL;
    if (m->request && !(m->method.n == meth.n && memcmp(m->method.p, meth.p, (size_t)meth.n) == 0) &&
        !eq(m->method, "ACK"))
        return BAIL;
    m->cseq_method = meth;
    char *d;
    if (!jb_reserve(b, (size_t)meth.n * 6 + 96))
        return BAIL; /* b->oom: the caller fails the message */
    d = b->p + b->n;
    d = WLIT(d, ",\"cseq\":{\"number\":");
    d = w_int(d, m->cseq);
    d = WLIT(d, ",\"method\":");
    d = w_str(d, meth, b->rd_lo, b->rd_hi);
    d = WLIT(d, "},\"via\":[");
    W_SYNC(b);
    int nvia = 0;
    for (int k = h->first[ID_VIA]; k >= 0; k = h->next[k]) {
        sv v = span(h, k, 2);
        Py_ssize_t pos = 0;
        while (pos <= v.n) {
            sv part;
            TRY(next_part_b(b, v, &pos, &part));
            if (trim(part).n == 0)
                continue;
            vinfo other;
            if (nvia)
                LIT(b, ",");
            TRY(via_json(b, part, nvia ? &other : &m->via));
            nvia++;
        }
    }
    if (nvia == 0)
        return BAIL;
    LIT(b, "]");
    for (int j = 0; j < 4; j++) {
        int id = LIST_IDS[j];
        if (h->count[id] == 0)
            continue;
        jb_put(b, LIST_KEYS[j].p, (size_t)LIST_KEYS[j].n);
        int first = 1;
        for (int k = h->first[id]; k >= 0; k = h->next[k]) {
            sv v = span(h, k, 2);
            if (id == ID_CONTACT && jb_find(b, v, '<') < 0 && jb_find(b, v, '?') >= 0)
                return BAIL;
            TRY(name_addr_list_json(b, v, &first));
        }
        LIT(b, "]");
    }
    /* The scalar headers with the cursor: room for all their values (each a header value in
     * the head, written once) and keys reserved once. */
    if (!jb_reserve(b, head_n * 6 + (size_t)h->n * 4 + 10 * 40 + 32))
        return BAIL; /* b->oom: the caller fails the message */
    d = b->p + b->n;
    for (int j = 0; j < 10; j++) {
        int id = SCALAR_IDS[j];
        if (h->count[id] == 0)
            continue;
        memcpy(d, SCALAR_PAD[j], sizeof(SCALAR_PAD[j]));
        d += SCALAR_KEYS[j].n;
        if (id == ID_MAX_FORWARDS) {
            long long mf;
            if (h->count[id] != 1 || !digits(span(h, h->first[id], 2), 10, &mf) || mf > 255)
                return BAIL;
            d = w_int(d, mf);
            continue;
        }
        *d++ = '"';
        int n = 0;
        for (int k = h->first[id]; k >= 0; k = h->next[k]) {
            if (n++) {
                *d++ = ',';
                *d++ = ' ';
            }
            d = w_esc(d, span(h, k, 2), b->rd_lo, b->rd_hi);
        }
        *d++ = '"';
    }
    W_SYNC(b);
    if (h->count[ID_DATE] > 0) {
        sv dv = span(h, h->first[ID_DATE], 2);
        if (dv.n < 3 || memcmp(dv.p + dv.n - 3, "GMT", 3) != 0)
            return BAIL;
    }
    /* p.get("user_agent") or p.get("server") */
    m->has_ua = 0;
    if (h->count[ID_USER_AGENT] && span(h, h->first[ID_USER_AGENT], 2).n > 0) {
        m->has_ua = 1;
        m->ua = span(h, h->first[ID_USER_AGENT], 2);
    } else if (h->count[ID_SERVER]) {
        m->has_ua = 1;
        m->ua = span(h, h->first[ID_SERVER], 2);
    }
    m->has_ct = h->count[ID_CONTENT_TYPE] > 0;
    if (m->has_ct)
        m->content_type = span(h, h->first[ID_CONTENT_TYPE], 2);
    *cl = -1;
    if (h->count[ID_CONTENT_LENGTH] > 0 &&
        (h->count[ID_CONTENT_LENGTH] != 1 ||
         !digits(span(h, h->first[ID_CONTENT_LENGTH], 2), 9, cl)))
        return BAIL;
    return OK;
}

/* The labels of labels_of, in its order; names as C strings and interned str. */
enum { LB_CALL_ID, LB_FROM_URI, LB_TO_URI, LB_CSEQ, LB_CSEQ_METHOD, LB_METHOD, LB_REQUEST_URI,
       LB_STATUS_CODE, LB_FROM_USER, LB_TO_USER, LB_FROM_TAG, LB_TO_TAG, LB_VIA, LB_VIA_BRANCH,
       LB_USER_AGENT, LB_N };
static const char *const LB_NAMES[LB_N] = {
    "sip.call_id",   "sip.from_uri",    "sip.to_uri",    "sip.cseq",     "sip.cseq_method",
    "sip.method",    "sip.request_uri", "sip.status_code", "sip.from_user", "sip.to_user",
    "sip.from_tag",  "sip.to_tag",      "sip.via",       "sip.via_branch", "sip.user_agent"};
static PyObject *lb_key[LB_N];
/* The JSON member openings of the labels ("sip.call_id": ...) and their lengths; LB_PAD the
 * same in 32-byte arrays (copied whole: a fixed-size copy, no memcpy call). */
#define LBJ(s) {"\"" s "\":", sizeof("\"" s "\":") - 1}
#define LBP(s) "\"" s "\":"
static const char LB_PAD[][32] = {
    LBP("sip.call_id"),   LBP("sip.from_uri"),    LBP("sip.to_uri"),      LBP("sip.cseq"),
    LBP("sip.cseq_method"), LBP("sip.method"),    LBP("sip.request_uri"), LBP("sip.status_code"),
    LBP("sip.from_user"), LBP("sip.to_user"),     LBP("sip.from_tag"),    LBP("sip.to_tag"),
    LBP("sip.via"),       LBP("sip.via_branch"),  LBP("sip.user_agent")};
_Static_assert(sizeof(LB_PAD) / sizeof(LB_PAD[0]) == LB_N, "one padded opening per label");
static const sv LB_JSON[LB_N] = {
    LBJ("sip.call_id"),   LBJ("sip.from_uri"),    LBJ("sip.to_uri"),      LBJ("sip.cseq"),
    LBJ("sip.cseq_method"), LBJ("sip.method"),    LBJ("sip.request_uri"), LBJ("sip.status_code"),
    LBJ("sip.from_user"), LBJ("sip.to_user"),     LBJ("sip.from_tag"),    LBJ("sip.to_tag"),
    LBJ("sip.via"),       LBJ("sip.via_branch"),  LBJ("sip.user_agent")};

/* Where labels_put puts the labels: a dict of str (parse_json; the batch path writes them as
 * JSON with labels_json instead). */
typedef struct {
    PyObject *dict;
} lsink;

/* label key = s; unique: a value of one message only (a Via branch: no string-cache lookup).
 * 0 on success. */
static int lput(lsink *k, int key, sv s, int unique) {
    PyObject *v;
    if (unique) {
        v = PyUnicode_New(s.n, 127);
        if (v != NULL)
            memcpy(PyUnicode_DATA(v), s.p, (size_t)s.n);
    } else {
        v = otus_sip_small_str(s);
    }
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(k->dict, lb_key[key], v);
    Py_DECREF(v);
    return rc;
}

/* parser.labels_of of the payload described by m, same keys in the same order, into k. */
static int labels_put(lsink *k, const minfo *m) {
    jb b;
    jb_init(&b);
    if (lput(k, LB_CALL_ID, m->call_id, 0) || lput(k, LB_FROM_URI, m->from.u.raw, 0) ||
        lput(k, LB_TO_URI, m->to.u.raw, 0))
        goto err;
    jb_int(&b, m->cseq);
    LIT(&b, " ");
    jb_put(&b, m->cseq_method.p, (size_t)m->cseq_method.n);
    if (b.oom)
        goto err;
    sv cs = {b.p, (Py_ssize_t)b.n};
    if (lput(k, LB_CSEQ, cs, 0) || lput(k, LB_CSEQ_METHOD, m->cseq_method, 0))
        goto err;
    if (m->request) {
        if (lput(k, LB_METHOD, m->method, 0) || lput(k, LB_REQUEST_URI, m->ruri, 0))
            goto err;
    } else {
        b.n = 0;
        jb_int(&b, m->status);
        sv st = {b.p, (Py_ssize_t)b.n};
        if (b.oom || lput(k, LB_STATUS_CODE, st, 0) || lput(k, LB_METHOD, m->cseq_method, 0))
            goto err;
    }
    if ((m->from.u.has_user && lput(k, LB_FROM_USER, m->from.u.user, 0)) ||
        (m->to.u.has_user && lput(k, LB_TO_USER, m->to.u.user, 0)) ||
        (m->from.has_tag && lput(k, LB_FROM_TAG, m->from.tag, 0)) ||
        (m->to.has_tag && lput(k, LB_TO_TAG, m->to.tag, 0)))
        goto err;
    const vinfo *v = &m->via;
    b.n = 0;
    jb_put(&b, v->proto, (size_t)v->pn);
    LIT(&b, "/");
    for (Py_ssize_t i = 0; i < v->transport.n; i++) {
        char c = v->transport.p[i];
        c = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
        jb_put(&b, &c, 1);
    }
    LIT(&b, " ");
    jb_put(&b, v->host.p, (size_t)v->host.n);
    if (v->port >= 0) {
        LIT(&b, ":");
        jb_int(&b, v->port);
    }
    if (b.oom)
        goto err;
    sv vs = {b.p, (Py_ssize_t)b.n};
    if (lput(k, LB_VIA, vs, 0) || (v->has_branch && lput(k, LB_VIA_BRANCH, v->branch, 1)) ||
        (m->has_ua && lput(k, LB_USER_AGENT, m->ua, 0)))
        goto err;
    jb_free(&b);
    return 0;
err:
    jb_free(&b);
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    return -1;
}

/* The labels of labels_put (labels_of's keys, order and values) as JSON members appended to lab
 * (the batch path's labels_json), with the cursor in a register: room reserved once (6 bytes
 * per value byte, the member names, numbers and punctuation). */
static int labels_json(jb *lab, const minfo *m) {
    const vinfo *v = &m->via;
    sv vals[LB_N];
    unsigned has = 0;
#define LV(key, val) (vals[key] = (val), has |= 1u << (key))
    LV(LB_CALL_ID, m->call_id);
    LV(LB_FROM_URI, m->from.u.raw);
    LV(LB_TO_URI, m->to.u.raw);
    LV(LB_CSEQ_METHOD, m->cseq_method);
    if (m->request) {
        LV(LB_METHOD, m->method);
        LV(LB_REQUEST_URI, m->ruri);
    } else {
        LV(LB_METHOD, m->cseq_method);
    }
    if (m->from.u.has_user)
        LV(LB_FROM_USER, m->from.u.user);
    if (m->to.u.has_user)
        LV(LB_TO_USER, m->to.u.user);
    if (m->from.has_tag)
        LV(LB_FROM_TAG, m->from.tag);
    if (m->to.has_tag)
        LV(LB_TO_TAG, m->to.tag);
    if (v->has_branch)
        LV(LB_VIA_BRANCH, v->branch);
    if (m->has_ua)
        LV(LB_USER_AGENT, m->ua);
#undef LV
    size_t need = 64 + (size_t)v->pn * 6 + (size_t)v->transport.n * 6 + (size_t)v->host.n * 6 +
                  (size_t)m->cseq_method.n * 6;
    for (int key = 0; key < LB_N; key++)
        need += (size_t)LB_JSON[key].n + 24 + ((has >> key) & 1 ? (size_t)vals[key].n * 6 : 0);
    if (!jb_reserve(lab, need)) {
        PyErr_NoMemory();
        return -1;
    }
    uintptr_t lo = lab->rd_lo, hi = lab->rd_hi;
    char *d = lab->p + lab->n;
    for (int key = 0; key < LB_N; key++) {
        if (key != LB_CSEQ && key != LB_STATUS_CODE && key != LB_VIA && !((has >> key) & 1))
            continue;
        if (key == LB_STATUS_CODE && m->request)
            continue;
        /* labels_of's order: the status code before the response's method */
        if (key == LB_METHOD && !m->request)
            continue;
        *d++ = key == LB_CALL_ID ? '{' : ',';
        memcpy(d, LB_PAD[key], sizeof(LB_PAD[key]));
        d += LB_JSON[key].n;
        if (key == LB_CSEQ || key == LB_STATUS_CODE) {
            *d++ = '"';
            d = w_int(d, key == LB_CSEQ ? m->cseq : m->status);
            if (key == LB_CSEQ) {
                *d++ = ' ';
                d = w_esc(d, m->cseq_method, lo, hi);
            }
            *d++ = '"';
            if (key == LB_STATUS_CODE) { /* then "sip.method": the CSeq method */
                *d++ = ',';
                memcpy(d, LB_PAD[LB_METHOD], sizeof(LB_PAD[LB_METHOD]));
                d += LB_JSON[LB_METHOD].n;
                d = w_str(d, m->cseq_method, lo, hi);
            }
        } else if (key == LB_VIA) {
            /* protocol/TRANSPORT host[:port], escaped as one string */
            *d++ = '"';
            d = w_esc(d, (sv){v->proto, v->pn}, lo, hi);
            *d++ = '/';
            for (Py_ssize_t i = 0; i < v->transport.n; i++) {
                unsigned char c = (unsigned char)v->transport.p[i];
                c = (c >= 'a' && c <= 'z') ? (unsigned char)(c - 32) : c;
                if (ESC[c])
                    d = esc1(d, c);
                else
                    *d++ = (char)c;
            }
            *d++ = ' ';
            d = w_esc(d, v->host, lo, hi);
            if (v->port >= 0) {
                *d++ = ':';
                d = w_int(d, v->port);
            }
            *d++ = '"';
        } else {
            d = w_str(d, vals[key], lo, hi);
        }
    }
    lab->n = (size_t)(d - lab->p);
    return 0;
}

/* What the dialog table reads of the labels of m. */
static void lview_of(const minfo *m, sip_lview *lv) {
    lv->call_id = m->call_id;
    lv->method = m->request ? m->method : m->cseq_method;
    lv->cseq_method = m->cseq_method;
    lv->cseq = m->cseq;
    lv->has_branch = m->via.has_branch;
    lv->branch = m->via.branch;
    lv->from_uri = m->from.u.raw;
    lv->to_uri = m->to.u.raw;
    lv->has_from_user = m->from.u.has_user;
    lv->from_user = m->from.u.user;
    lv->has_to_user = m->to.u.has_user;
    lv->to_user = m->to.u.user;
    lv->has_from_tag = m->from.has_tag;
    lv->from_tag = m->from.tag;
    lv->has_to_tag = m->to.has_tag;
    lv->to_tag = m->to.tag;
}


/* memmem(buf, n, "\r\n\r\n", 4): the first end of the header block. With SSE2, 16 candidate
 * positions at a time: the bytes at i, i+1, i+2, i+3 compared with CR, LF, CR, LF (four
 * overlapping loads, no branch per line); the tail byte by byte. */
static const char *find_crlf2(const char *buf, size_t n) {
    size_t i = 0;
#ifdef __SSE2__
    const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
    for (; i + 19 <= n; i += 16) {
        const char *q = buf + i;
        __m128i m = _mm_and_si128(
            _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)q), cr),
                          _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(q + 1)),
                                         lf)),
            _mm_and_si128(
                _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(q + 2)), cr),
                _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(q + 3)), lf)));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return q + __builtin_ctz(mask);
    }
#endif
    for (; i + 4 <= n; i++)
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return buf + i;
    return NULL;
}

int otus_sip_json_core(const char *buf, Py_ssize_t size, long max_headers, long max_line,
                       int datagram, int parse_sdp, int partial, sip_jres *r, struct jb *lab) {
    r->json = r->labels = r->body = r->ctype = r->media = NULL;
    if (r->msum != NULL)
        r->msum->n = 0;
    const char *end4 = size >= 4 ? find_crlf2(buf, (size_t)size) : NULL;
    if (end4 == NULL || max_headers < 0 || max_headers > MAX_STACK_HEADERS || max_line < 0 ||
        size > 0x7fffffff)
        return BAIL;
    Py_ssize_t hend = end4 - buf;
    int32_t spans[(MAX_STACK_HEADERS + 1) * SIP_SCAN_FIELDS];
    hdrs h;
    h.buf = buf;
    h.spans = spans;
    h.n = sip_scan((const uint8_t *)buf, (size_t)hend, spans, (int)max_headers, (int)max_line);
    const char *eol = memchr(buf, '\n', (size_t)hend);
    if (h.n < 0 || eol == NULL)
        return BAIL;
    /* h.first[id] is read only where h.count[id] > 0 */
#ifdef __SSE2__
    /* a zero the compiler cannot see through: it would turn the stores back into a memset
     * (rep stos, ~30 cycles to start) */
    __m128i zero = _mm_setzero_si128();
    __asm__("" : "+x"(zero));
    for (size_t k = 0; k < sizeof(h.count) / 16; k++)
        _mm_storeu_si128((__m128i *)(void *)h.count + k, zero);
#else
    memset(h.count, 0, sizeof(h.count));
#endif
    sv line = {buf, (eol - buf) - 1};
    minfo m;
    long long cl;
    jb b;
    jb_init(&b);
    jb_readable(&b, buf, size);
    if (lab != NULL)
        jb_readable(lab, buf, size);
    int rc = head_json(&b, &h, line, &m, &cl);
    /* Framing, as _message.parse_message: Content-Length against what the data carries. */
    Py_ssize_t body_start = hend + 4, body_len = size - body_start, trailing = 0;
    if (rc == OK) {
        if (cl >= 0) {
            if (cl > body_len) {
                rc = BAIL;
            } else {
                trailing = body_len - (Py_ssize_t)cl;
                body_len = (Py_ssize_t)cl;
                LIT(&b, ",\"content_length\":");
                jb_int(&b, cl);
                if (trailing) {
                    LIT(&b, ",\"trailing_octets\":");
                    jb_int(&b, trailing);
                }
            }
        } else if (!datagram) {
            rc = BAIL;
        }
    }
    PyObject *media = NULL;
    int body_done = body_len == 0;
    if (rc == OK && body_len == 0)
        LIT(&b, "}"); /* no body: the JSON is complete */
    if (rc == OK && body_len > 0 && !b.oom) {
        /* The body description in C too when it is sure of it, else Python writes it. */
        size_t open_n = b.n;
        sv body_sv = {buf + body_start, body_len};
        sv ct = m.has_ct ? m.content_type : (sv){buf, 0};
        LIT(&b, ",\"body\":");
        int brc = otus_sip_body_json(&b, body_sv, ct, parse_sdp, &media, r->msum);
        if (brc == ERR) {
            jb_free(&b);
            return ERR;
        }
        if (brc == OK) {
            LIT(&b, "}");
            body_done = 1;
        } else {
            b.n = open_n;
        }
    }
    if (rc != OK || b.oom || (!body_done && !partial)) {
        jb_free(&b);
        Py_XDECREF(media);
        if (b.oom) {
            PyErr_NoMemory();
            return ERR;
        }
        return BAIL;
    }
    r->json = otus_sip_bytes(OTUS_SIP_JSON, b.p, (Py_ssize_t)b.n);
    jb_free(&b);
    r->media = media;
    r->status = m.status;
    r->trailing = trailing;
    r->method = m.request ? m.method : (sv){buf, 0};
    if (r->json == NULL)
        goto err;
    lview_of(&m, &r->lv);
    lsink k = {NULL};
    if (lab == NULL && (k.dict = r->labels = _PyDict_NewPresized(16)) == NULL)
        goto err; /* presized: no resizing while the ~15 labels go in */
    if (lab != NULL)
        lab->n = 0;
    if ((lab != NULL ? labels_json(lab, &m) : labels_put(&k, &m)) < 0)
        goto err;
    if (!body_done) {
        r->body = PyBytes_FromStringAndSize(buf + body_start, body_len);
        sv none = {buf, 0};
        r->ctype = otus_sip_small_str(m.has_ct ? m.content_type : none);
        if (r->body == NULL || r->ctype == NULL)
            goto err;
    }
    return OK;
err:
    sip_jres_clear(r);
    return ERR;
}

PyObject *otus_sip_parse_json(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "parse_json(data: bytes, max_headers, max_line, datagram, parse_sdp)");
        return NULL;
    }
    long max_headers = PyLong_AsLong(args[1]);
    long max_line = PyLong_AsLong(args[2]);
    int datagram = PyObject_IsTrue(args[3]);
    int parse_sdp = PyObject_IsTrue(args[4]);
    if (PyErr_Occurred() || datagram < 0 || parse_sdp < 0)
        return NULL;
    sip_jres r;
    r.msum = NULL;
    int rc = otus_sip_json_core(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                                max_headers, max_line, datagram, parse_sdp, 1, &r, NULL);
    if (rc == ERR)
        return NULL;
    if (rc == BAIL)
        Py_RETURN_NONE;
    PyObject *st = PyLong_FromLong(r.status), *tr = PyLong_FromSsize_t(r.trailing);
    PyObject *result = NULL;
    if (st != NULL && tr != NULL)
        result = PyTuple_Pack(7, r.json, r.labels, st, tr, r.body ? r.body : Py_None,
                              r.ctype ? r.ctype : Py_None, r.media ? r.media : Py_None);
    Py_XDECREF(st);
    Py_XDECREF(tr);
    sip_jres_clear(&r);
    return result;
}

int otus_sip_json_init(void) {
    for (int k = 0; k < LB_N; k++)
        if ((lb_key[k] = PyUnicode_InternFromString(LB_NAMES[k])) == NULL)
            return -1;
    return 0;
}
