/* Message body description straight to JSON: the C twin of _body.parse_body / _sdp.parse_sdp.
 *
 * otus_sip_body_json appends what orjson.dumps(parse_body(body, content_type, parse_sdp)) gives
 * -- {"type", "length"} and, for application/sdp, the "sdp" session with its media list, same
 * keys in the same order -- and builds the media summary parser.SipParser registers (the tuples
 * of _body.media_of). It declines (BAIL: the Python body path runs) on anything it is not sure
 * to mirror: multipart bodies, control characters other than CRLF line ends and TAB, non-ASCII
 * bytes, a key the Python dicts would overwrite (a repeated v=, o=, s=, t=, c=, direction or
 * a=rtcp line at one level, a repeated rtpmap payload type), numbers of more than 9 digits and
 * more than SDP_MAX_* media, attributes or rtpmaps. tests/test_sip_sdp.py checks the parity.
 */
#include "sip_jb.h"

#define SDP_MAX_MEDIA 16
#define SDP_MAX_ATTRS 96
#define SDP_MAX_MAPS 64
_Static_assert(SDP_MAX_MEDIA <= SIP_MSUM_MAX && SDP_MAX_MAPS <= SIP_MSUM_CODECS,
               "sip_msums holds every media and rtpmap of a description");

/* Keys a level gets from its lines, in the order they first appear. */
enum { K_CONN, K_DIR, K_RTPMAP, K_RTCP, K_MUX, K_VERSION, K_ORIGIN, K_NAME, K_TIMING, N_K };

typedef struct {
    sv pt, enc, channels;
    long long clock;
    int has_clock, has_channels;
} sdp_map;

typedef struct {
    unsigned char order[N_K];
    int nkeys;
    unsigned seen;   /* 1 << K_* once the key is set */
    unsigned lines;  /* 1 << K_* once such a line was seen (repeats decline) */
    sv conn[3];      /* nettype, addrtype, address */
    sv dir;
    long long rtcp_port;
    sv rtcp_addr;
    int has_rtcp_addr;
    sv version, name, timing, origin[6];
    /* media level only */
    sv media, proto, formats;
    int mline3, has_port_count;
    long long port, port_count;
    int attr0, nattr, map0, nmap;
} sdp_level;

typedef struct {
    sdp_level lv[SDP_MAX_MEDIA + 1]; /* [0] is the session */
    int nlv;
    sv attrs[SDP_MAX_ATTRS];
    int nattrs;
    sdp_map maps[SDP_MAX_MAPS];
    int nmaps;
} sdp_desc;

static inline int is_sp(char c) { return c == ' ' || c == '\t'; }

/* str.split(): the next whitespace-separated word of s from *pos; 0 when there is none. */
static int word(sv s, Py_ssize_t *pos, sv *w) {
    Py_ssize_t i = *pos;
    while (i < s.n && is_sp(s.p[i]))
        i++;
    if (i >= s.n)
        return 0;
    Py_ssize_t a = i;
    while (i < s.n && !is_sp(s.p[i]))
        i++;
    *w = sub(s, a, i);
    *pos = i;
    return 1;
}

/* str.isdigit() and int(): digits only, 1..9 of them; -1 when not digits, -2 when too long. */
static int number(sv s, long long *v) {
    if (s.n == 0)
        return -1;
    for (Py_ssize_t i = 0; i < s.n; i++)
        if (s.p[i] < '0' || s.p[i] > '9')
            return -1;
    if (s.n > 9)
        return -2;
    long long x = 0;
    for (Py_ssize_t i = 0; i < s.n; i++)
        x = x * 10 + (s.p[i] - '0');
    *v = x;
    return 0;
}

static int set_key(sdp_level *l, int k) {
    if (!(l->seen & (1u << k))) {
        l->seen |= 1u << k;
        l->order[l->nkeys++] = (unsigned char)k;
    }
    return OK;
}

/* A line kind that sets one key: a second such line at the same level declines. */
static int once(sdp_level *l, int k) {
    if (l->lines & (1u << k))
        return BAIL;
    l->lines |= 1u << k;
    return OK;
}

/* _sdp._attribute. */
static int attribute(sdp_desc *d, sdp_level *l, sv value) {
    if (eq(value, "sendrecv") || eq(value, "sendonly") || eq(value, "recvonly") ||
        eq(value, "inactive")) {
        TRY(once(l, K_DIR));
        l->dir = value;
        return set_key(l, K_DIR);
    }
    Py_ssize_t colon = find(value, ':');
    sv name = colon < 0 ? value : sub(value, 0, colon);
    sv arg = colon < 0 ? sub(value, 0, 0) : trim(sub(value, colon + 1, value.n));
    if (eq(name, "rtpmap")) {
        Py_ssize_t sp = find(arg, ' ');
        if (sp <= 0)
            return OK;
        if (d->nmaps >= SDP_MAX_MAPS)
            return BAIL;
        sdp_map *m = &d->maps[d->nmaps];
        m->pt = sub(arg, 0, sp);
        for (int i = l->map0; i < l->map0 + l->nmap; i++)
            if (d->maps[i].pt.n == m->pt.n && memcmp(d->maps[i].pt.p, m->pt.p, (size_t)m->pt.n) == 0)
                return BAIL; /* the dict would keep the first position, the last value */
        sv enc = trim(sub(arg, sp + 1, arg.n));
        Py_ssize_t s1 = find(enc, '/');
        m->has_clock = m->has_channels = 0;
        if (s1 < 0) {
            m->enc = enc;
        } else {
            m->enc = sub(enc, 0, s1);
            sv rest = sub(enc, s1 + 1, enc.n);
            Py_ssize_t s2 = find(rest, '/');
            sv clock = s2 < 0 ? rest : sub(rest, 0, s2);
            int r = number(clock, &m->clock);
            if (r == -2)
                return BAIL;
            m->has_clock = r == 0;
            if (s2 >= 0) {
                sv ch = sub(rest, s2 + 1, rest.n);
                Py_ssize_t s3 = find(ch, '/');
                m->channels = s3 < 0 ? ch : sub(ch, 0, s3);
                m->has_channels = 1;
            }
        }
        d->nmaps++;
        l->nmap++;
        return set_key(l, K_RTPMAP);
    }
    if (eq(name, "rtcp")) {
        TRY(once(l, K_RTCP));
        Py_ssize_t pos = 0;
        sv w;
        if (!word(arg, &pos, &w))
            return OK;
        int r = number(w, &l->rtcp_port);
        if (r == -2)
            return BAIL;
        if (r < 0)
            return OK;
        l->has_rtcp_addr = 0;
        if (word(arg, &pos, &w) && word(arg, &pos, &w) && word(arg, &pos, &w)) {
            l->rtcp_addr = w;
            l->has_rtcp_addr = 1;
        }
        return set_key(l, K_RTCP);
    }
    if (eq(name, "rtcp-mux"))
        return set_key(l, K_MUX);
    return OK;
}

/* _sdp.parse_sdp up to the JSON: lines into levels. */
static int sdp_lines(sdp_desc *d, sv body) {
    d->nlv = 1;
    d->nattrs = d->nmaps = 0;
    memset(&d->lv[0], 0, sizeof(sdp_level));
    sdp_level *cur = &d->lv[0];
    const unsigned char *p = (const unsigned char *)body.p;
    Py_ssize_t i = 0;
#ifdef __SSE2__
    /* 16 bytes at a time: only control, DEL and non-ASCII bytes (signed compare: negative)
     * are looked at one by one (in an SDP, the CR LF line ends) */
    for (; i + 16 <= body.n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
        for (; mask; mask &= mask - 1) {
            Py_ssize_t j = i + __builtin_ctz(mask);
            unsigned char c = p[j];
            if (c >= 0x7f || (c != '\t' && c != '\n' &&
                              !(c == '\r' && j + 1 < body.n && p[j + 1] == '\n')))
                return BAIL;
        }
    }
#endif
    for (; i < body.n; i++) {
        unsigned char c = p[i];
        if (c >= 0x7f || (c < 0x20 && c != '\t' && c != '\n' &&
                          !(c == '\r' && i + 1 < body.n && p[i + 1] == '\n')))
            return BAIL;
    }
    Py_ssize_t pos = 0;
    while (pos < body.n) {
        Py_ssize_t nl = find(sub(body, pos, body.n), '\n');
        Py_ssize_t end = nl < 0 ? body.n : pos + nl;
        sv line = sub(body, pos, end);
        pos = end + 1;
        if (line.n < 2 || line.p[1] != '=')
            continue;
        char kind = line.p[0];
        sv value = sub(line, 2, line.n);
        if (value.n > 0 && value.p[value.n - 1] == '\r')
            value.n--;
        if (kind == 'm') {
            if (d->nlv > SDP_MAX_MEDIA)
                return BAIL;
            cur = &d->lv[d->nlv++];
            memset(cur, 0, sizeof(sdp_level));
            cur->attr0 = d->nattrs;
            cur->map0 = d->nmaps;
            Py_ssize_t wp = 0;
            sv w0 = {value.p, 0}, w1, w2;
            cur->media = w0;
            if (!word(value, &wp, &w0))
                continue;
            cur->media = w0;
            if (!word(value, &wp, &w1) || !word(value, &wp, &w2))
                continue;
            cur->mline3 = 1;
            Py_ssize_t slash = find(w1, '/');
            if (slash >= 0) {
                cur->has_port_count = 1;
                int r = number(sub(w1, slash + 1, w1.n), &cur->port_count);
                if (r == -2)
                    return BAIL;
                if (r < 0)
                    cur->port_count = 1;
                w1 = sub(w1, 0, slash);
            }
            int r = number(w1, &cur->port);
            if (r == -2)
                return BAIL;
            if (r < 0)
                cur->port = 0;
            cur->proto = w2;
            cur->formats = sub(value, wp, value.n);
        } else if (kind == 'c') {
            TRY(once(cur, K_CONN));
            Py_ssize_t wp = 0;
            sv w[4];
            int n = 0;
            while (n < 4 && word(value, &wp, &w[n]))
                n++;
            if (n != 3)
                continue;
            cur->conn[0] = w[0];
            cur->conn[1] = w[1];
            Py_ssize_t slash = find(w[2], '/');
            cur->conn[2] = slash < 0 ? w[2] : sub(w[2], 0, slash);
            set_key(cur, K_CONN);
        } else if (kind == 'a') {
            TRY(attribute(d, cur, value));
            if (d->nattrs >= SDP_MAX_ATTRS)
                return BAIL;
            d->attrs[d->nattrs++] = value;
            cur->nattr++;
        } else if (cur == &d->lv[0]) {
            if (kind == 'v') {
                TRY(once(cur, K_VERSION));
                cur->version = value;
                set_key(cur, K_VERSION);
            } else if (kind == 'o') {
                TRY(once(cur, K_ORIGIN));
                Py_ssize_t wp = 0;
                int n = 0;
                sv w;
                while (n < 7 && word(value, &wp, &w)) {
                    if (n < 6)
                        cur->origin[n] = w;
                    n++;
                }
                if (n == 6)
                    set_key(cur, K_ORIGIN);
            } else if (kind == 's') {
                TRY(once(cur, K_NAME));
                cur->name = value;
                set_key(cur, K_NAME);
            } else if (kind == 't') {
                TRY(once(cur, K_TIMING));
                cur->timing = value;
                set_key(cur, K_TIMING);
            }
        }
    }
    return OK;
}

static char *level_keys_json(char *o, const sdp_desc *d, const sdp_level *l, uintptr_t lo,
                             uintptr_t hi) {
    static const char *const ORIGIN[6] = {"username", "sess_id", "sess_version",
                                          "nettype", "addrtype", "address"};
    static const size_t ORIGIN_LEN[6] = {8, 7, 12, 7, 8, 7};
    for (int k = 0; k < l->nkeys; k++) {
        switch (l->order[k]) {
        case K_CONN:
            o = WLIT(o, ",\"connection\":{\"nettype\":");
            o = w_str(o, l->conn[0], lo, hi);
            o = WLIT(o, ",\"addrtype\":");
            o = w_str(o, l->conn[1], lo, hi);
            o = WLIT(o, ",\"address\":");
            o = w_str(o, l->conn[2], lo, hi);
            o = WLIT(o, "}");
            break;
        case K_DIR:
            o = WLIT(o, ",\"direction\":");
            o = w_str(o, l->dir, lo, hi);
            break;
        case K_RTPMAP:
            o = WLIT(o, ",\"rtpmap\":{");
            for (int i = l->map0; i < l->map0 + l->nmap; i++) {
                const sdp_map *m = &d->maps[i];
                if (i > l->map0)
                    o = WLIT(o, ",");
                o = w_str(o, m->pt, lo, hi);
                o = WLIT(o, ":{\"encoding\":");
                o = w_str(o, m->enc, lo, hi);
                if (m->has_clock) {
                    o = WLIT(o, ",\"clock_rate\":");
                    o = w_int(o, m->clock);
                }
                if (m->has_channels) {
                    o = WLIT(o, ",\"channels\":");
                    o = w_str(o, m->channels, lo, hi);
                }
                o = WLIT(o, "}");
            }
            o = WLIT(o, "}");
            break;
        case K_RTCP:
            o = WLIT(o, ",\"rtcp\":{\"port\":");
            o = w_int(o, l->rtcp_port);
            if (l->has_rtcp_addr) {
                o = WLIT(o, ",\"address\":");
                o = w_str(o, l->rtcp_addr, lo, hi);
            }
            o = WLIT(o, "}");
            break;
        case K_MUX:
            o = WLIT(o, ",\"rtcp_mux\":true");
            break;
        case K_VERSION:
            o = WLIT(o, ",\"version\":");
            o = w_str(o, l->version, lo, hi);
            break;
        case K_ORIGIN:
            o = WLIT(o, ",\"origin\":{");
            for (int i = 0; i < 6; i++) {
                if (i)
                    *o++ = ',';
                *o++ = '"';
                memcpy(o, ORIGIN[i], ORIGIN_LEN[i]);
                o += ORIGIN_LEN[i];
                o = WLIT(o, "\":");
                o = w_str(o, l->origin[i], lo, hi);
            }
            o = WLIT(o, "}");
            break;
        case K_NAME:
            o = WLIT(o, ",\"name\":");
            o = w_str(o, l->name, lo, hi);
            break;
        case K_TIMING:
            o = WLIT(o, ",\"timing\":");
            o = w_str(o, l->timing, lo, hi);
            break;
        }
    }
    return o;
}

static char *attrs_json(char *o, const sdp_desc *d, const sdp_level *l, uintptr_t lo,
                        uintptr_t hi) {
    o = WLIT(o, "\"attributes\":[");
    for (int i = l->attr0; i < l->attr0 + l->nattr; i++) {
        if (i > l->attr0)
            o = WLIT(o, ",");
        o = w_str(o, d->attrs[i], lo, hi);
    }
    o = WLIT(o, "]");
    return o;
}

static char *sdp_json(char *o, const sdp_desc *d, uintptr_t lo, uintptr_t hi) {
    const sdp_level *s = &d->lv[0];
    o = WLIT(o, "{");
    o = attrs_json(o, d, s, lo, hi);
    o = level_keys_json(o, d, s, lo, hi);
    o = WLIT(o, ",\"media\":[");
    for (int i = 1; i < d->nlv; i++) {
        const sdp_level *m = &d->lv[i];
        if (i > 1)
            o = WLIT(o, ",");
        o = WLIT(o, "{\"media\":");
        o = w_str(o, m->media, lo, hi);
        o = WLIT(o, ",");
        o = attrs_json(o, d, m, lo, hi);
        if (m->mline3) {
            if (m->has_port_count) {
                o = WLIT(o, ",\"port_count\":");
                o = w_int(o, m->port_count);
            }
            o = WLIT(o, ",\"port\":");
            o = w_int(o, m->port);
            o = WLIT(o, ",\"proto\":");
            o = w_str(o, m->proto, lo, hi);
            o = WLIT(o, ",\"formats\":[");
            Py_ssize_t wp = 0;
            sv w;
            int first = 1;
            while (word(m->formats, &wp, &w)) {
                if (!first)
                    o = WLIT(o, ",");
                first = 0;
                o = w_str(o, w, lo, hi);
            }
            o = WLIT(o, "]");
        }
        o = level_keys_json(o, d, m, lo, hi);
        const sdp_level *cl = (m->seen & (1u << K_CONN)) ? m : s;
        if (cl->seen & (1u << K_CONN)) {
            o = WLIT(o, ",\"address\":");
            o = w_str(o, cl->conn[2], lo, hi);
        }
        if (!(m->seen & (1u << K_DIR))) {
            o = WLIT(o, ",\"direction\":");
            if (s->seen & (1u << K_DIR))
                o = w_str(o, s->dir, lo, hi);
            else
                o = WLIT(o, "\"sendrecv\"");
        }
        o = WLIT(o, "}");
    }
    o = WLIT(o, "]}");
    return o;
}

/* Room for sdp_json of d, a description of body: every string it writes lies in the body (the
 * session's address and direction once more per media), and sdp_lines let through printable
 * ASCII and TAB only, so 2 bytes per character escaped; the keys and punctuation per level,
 * rtpmap, attribute and format (a format per 2 body bytes at most); 16 spare for w_esc. */
static size_t sdp_room(const sdp_desc *d, Py_ssize_t body_n) {
    const sdp_level *s = &d->lv[0];
    size_t inherited = 2 * (size_t)(s->conn[2].n + s->dir.n) + 16;
    return 4 * (size_t)body_n + 3 * (size_t)body_n + (size_t)d->nlv * (inherited + 640) +
           96 * (size_t)d->nmaps + 4 * (size_t)d->nattrs + 128;
}

/* The level whose connection media level m uses when m is registrable (a complete m= line, a
 * port, a non-empty address other than 0.0.0.0 and ::, not inactive: _body.media_of's
 * selection), else NULL. */
static const sdp_level *registrable(const sdp_desc *d, const sdp_level *m) {
    const sdp_level *s = &d->lv[0];
    const sdp_level *cl = (m->seen & (1u << K_CONN)) ? m : s;
    sv dir = (m->seen & (1u << K_DIR)) ? m->dir : s->dir;
    int has_dir = (m->seen | s->seen) & (1u << K_DIR);
    if (!m->mline3 || m->port == 0 || !(cl->seen & (1u << K_CONN)) ||
        (has_dir && eq(dir, "inactive")) || cl->conn[2].n == 0 || eq(cl->conn[2], "0.0.0.0") ||
        eq(cl->conn[2], "::"))
        return NULL;
    return cl;
}

/* _body.media_of for one SDP: (address, port, media, rtcp_mux, rtcp_address, rtcp_port,
 * codecs) per registrable media, appended to list. */
static int media_summary(const sdp_desc *d, PyObject *list) {
    for (int i = 1; i < d->nlv; i++) {
        const sdp_level *m = &d->lv[i];
        const sdp_level *cl = registrable(d, m);
        if (cl == NULL)
            continue;
        int mux = (m->seen & (1u << K_MUX)) != 0;
        int rtcp = (m->seen & (1u << K_RTCP)) != 0;
        PyObject *codecs = PyDict_New();
        if (codecs == NULL)
            return ERR;
        for (int k = m->map0; k < m->map0 + m->nmap; k++) {
            PyObject *pt = otus_sip_small_str(d->maps[k].pt);
            PyObject *enc = pt == NULL ? NULL : otus_sip_small_str(d->maps[k].enc);
            int rc = enc == NULL ? -1 : PyDict_SetItem(codecs, pt, enc);
            Py_XDECREF(pt);
            Py_XDECREF(enc);
            if (rc < 0) {
                Py_DECREF(codecs);
                return ERR;
            }
        }
        sv addr = cl->conn[2];
        sv raddr = rtcp && m->has_rtcp_addr ? m->rtcp_addr : addr;
        long long rport = rtcp ? m->rtcp_port : m->port + 1;
        PyObject *t = PyTuple_New(7);
        if (t == NULL) {
            Py_DECREF(codecs);
            return ERR;
        }
        PyObject *mx = mux ? Py_True : Py_False;
        Py_INCREF(mx);
        PyTuple_SET_ITEM(t, 0, otus_sip_small_str(addr));
        PyTuple_SET_ITEM(t, 1, PyLong_FromLongLong(m->port));
        PyTuple_SET_ITEM(t, 2, otus_sip_small_str(m->media));
        PyTuple_SET_ITEM(t, 3, mx);
        PyTuple_SET_ITEM(t, 4, otus_sip_small_str(raddr));
        PyTuple_SET_ITEM(t, 5, PyLong_FromLongLong(rport));
        PyTuple_SET_ITEM(t, 6, codecs);
        int bad = 0;
        for (int k = 0; k < 7; k++)
            bad |= PyTuple_GET_ITEM(t, k) == NULL;
        if (bad || PyList_Append(list, t) < 0) {
            Py_DECREF(t);
            return ERR;
        }
        Py_DECREF(t);
    }
    return OK;
}

/* media_summary's endpoints as views for the batch path's C registry (same selection). */
static void media_views(const sdp_desc *d, sip_msums *ms) {
    ms->n = 0;
    int nc = 0;
    for (int i = 1; i < d->nlv; i++) {
        const sdp_level *m = &d->lv[i];
        const sdp_level *cl = registrable(d, m);
        if (cl == NULL)
            continue;
        int rtcp = (m->seen & (1u << K_RTCP)) != 0;
        sip_msum *o = &ms->m[ms->n++]; /* at most SDP_MAX_MEDIA = SIP_MSUM_MAX */
        o->addr = cl->conn[2];
        o->raddr = rtcp && m->has_rtcp_addr ? m->rtcp_addr : o->addr;
        o->port = m->port;
        o->rport = rtcp ? m->rtcp_port : m->port + 1;
        o->mux = (m->seen & (1u << K_MUX)) != 0;
        o->media = m->media;
        o->c0 = nc;
        o->nc = m->nmap;
        for (int k = m->map0; k < m->map0 + m->nmap; k++, nc++) { /* nc < SDP_MAX_MAPS */
            ms->pt[nc] = d->maps[k].pt;
            ms->enc[nc] = d->maps[k].enc;
        }
    }
}

static int lower_eq(sv a, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)a.n < n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a.p[i];
        if (c >= 'A' && c <= 'Z')
            c |= 0x20;
        if (c != lit[i])
            return 0;
    }
    return 1;
}

int otus_sip_body_json(jb *b, sv body, sv ctype, int parse_sdp, PyObject **media,
                       sip_msums *ms) {
    *media = NULL;
    for (Py_ssize_t i = 0; i < ctype.n; i++) {
        unsigned char c = (unsigned char)ctype.p[i];
        if (c >= 0x7f || (c < 0x20 && c != '\t'))
            return BAIL;
    }
    Py_ssize_t semi = find(ctype, ';');
    sv mt = trim(semi < 0 ? ctype : sub(ctype, 0, semi));
    if (lower_eq(mt, "multipart/"))
        return BAIL;
    LIT(b, "{\"type\":\"");
    jb_chars(b, mt, 1);
    LIT(b, "\",\"length\":");
    jb_int(b, body.n);
    if (parse_sdp && mt.n == 15 && lower_eq(mt, "application/sdp")) {
        sdp_desc d;
        TRY(sdp_lines(&d, body));
        LIT(b, ",\"sdp\":");
        if (jb_reserve(b, sdp_room(&d, body.n))) /* else b->oom: the message fails */
            b->n = (size_t)(sdp_json(b->p + b->n, &d, b->rd_lo, b->rd_hi) - b->p);
        if (ms != NULL) {
            media_views(&d, ms);
            LIT(b, "}");
            return OK;
        }
        PyObject *list = PyList_New(0);
        if (list == NULL)
            return ERR;
        if (media_summary(&d, list) != OK) {
            Py_DECREF(list);
            return ERR;
        }
        *media = list;
    }
    LIT(b, "}");
    return OK;
}
