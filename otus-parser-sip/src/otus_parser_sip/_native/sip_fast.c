/* SIP message head in one C call: the fast path of otus_parser_sip._message.parse_message.
 *
 * parse_head(data, hend, max_headers, max_line) indexes the header block with sip_scan() and
 * builds the payload dict exactly as the pure-Python reference does (start line, header index,
 * Call-ID, From, To, CSeq, Via, Contact/Route/Record-Route/P-Asserted-Identity, the scalar
 * headers, Max-Forwards) and returns (payload, content_length or None, labels), the labels
 * being those of parser.labels_of(payload). It returns None -- and
 * the Python path runs -- whenever the message is not plainly well formed: any reject or
 * anomaly, a repeated identity header, whitespace inside a URI or outside quotes in parameters,
 * a backslash escape, non-ASCII or control bytes. So a non-None result is always identical to
 * the reference (tests/test_sip_fast.py checks that on every corpus message).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "sip_scan.h"
#include "sip_sv.h"

/* Interned dict keys and constant values. */
static PyObject *K_raw, *K_scheme, *K_user, *K_password, *K_headers, *K_host, *K_port,
    *K_params, *K_opaque, *K_uri, *K_display, *K_tag, *K_star, *K_protocol, *K_transport,
    *K_branch, *K_received, *K_rport, *K_kind, *K_method, *K_request_uri, *K_status_code,
    *K_reason, *K_call_id, *K_from, *K_to, *K_cseq, *K_number, *K_via, *K_max_forwards,
    *V_empty, *V_request, *V_response, *V_sip, *V_sips, *V_tel, *V_sip20, *V_udp, *V_tcp;
/* Payload keys of the name-addr lists and the scalars, in the order of _message.py. */
static const int LIST_IDS[] = {ID_CONTACT, ID_ROUTE, ID_RECORD_ROUTE, ID_PAI};
static PyObject *K_lists[4];
static const int SCALAR_IDS[] = {ID_MAX_FORWARDS, ID_CONTENT_TYPE, ID_USER_AGENT, ID_SERVER,
                                 ID_EXPIRES, ID_REASON, ID_SUBJECT, ID_SUPPORTED, ID_ALLOW,
                                 ID_EVENT};
static PyObject *K_scalars[10];


/* A str from ASCII bytes (the scanner guarantees ASCII). */
static PyObject *str_of(sv s) {
    PyObject *u = PyUnicode_New(s.n, 127);
    if (u != NULL && s.n > 0)
        memcpy(PyUnicode_DATA(u), s.p, (size_t)s.n);
    return u;
}

static PyObject *lower_of(sv s) {
    PyObject *u = PyUnicode_New(s.n, 127);
    if (u != NULL) {
        char *d = (char *)PyUnicode_DATA(u);
        for (Py_ssize_t i = 0; i < s.n; i++) {
            char c = s.p[i];
            d[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
        }
    }
    return u;
}

/* A direct-mapped cache of short strings (hosts, users, methods, parameter names and values,
 * URIs): a message shares most of them with the messages before it (same call, same peers), and
 * a shared str costs no allocation and keeps its hash (parameter names are dict keys). */
#define SMALL_MAX 48
#define SMALL_SLOTS 1024
static PyObject *small_cache[SMALL_SLOTS];

static PyObject *small_lookup(const char *p, Py_ssize_t n) {
    /* A word at a time (the slot index only needs to spread): ~4x fewer multiplies than
     * byte-wise FNV on the 10-40 byte label values. */
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 29;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, p + i, (size_t)(n - i));
        h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    }
    h ^= h >> 32;
    h ^= h >> 15;
    PyObject **slot = &small_cache[h & (SMALL_SLOTS - 1)];
    PyObject *c = *slot;
    if (c != NULL && PyUnicode_GET_LENGTH(c) == n && memcmp(PyUnicode_DATA(c), p, (size_t)n) == 0) {
        Py_INCREF(c);
        return c;
    }
    PyObject *u = PyUnicode_New(n, 127);
    if (u == NULL)
        return NULL;
    if (n > 0)
        memcpy(PyUnicode_DATA(u), p, (size_t)n);
    Py_INCREF(u);
    Py_XSETREF(*slot, u);
    return u;
}

static PyObject *small_str(sv s) { return s.n <= SMALL_MAX ? small_lookup(s.p, s.n) : str_of(s); }

PyObject *otus_sip_small_str(sv s) { return small_str(s); }

static PyObject *small_lower(sv s) {
    if (s.n > SMALL_MAX)
        return lower_of(s);
    char low[SMALL_MAX];
    for (Py_ssize_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        low[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
    }
    return small_lookup(low, s.n);
}

/* d[k] = v, stealing v. */
static int put(PyObject *d, PyObject *k, PyObject *v) {
    if (v == NULL)
        return ERR;
    int rc = PyDict_SetItem(d, k, v);
    Py_DECREF(v);
    return rc < 0 ? ERR : OK;
}


/* _text.parse_params: ";"-separated name[=value], names lower-cased, quoted values unquoted.
 * Declines '<', backslashes and whitespace outside quotes (the reference strips or splits
 * them; rare enough to leave to Python). */
static int parse_params(sv s, PyObject **out) {
    PyObject *d = PyDict_New();
    if (d == NULL)
        return ERR;
    Py_ssize_t start = 0, i = 0;
    while (i <= s.n) {
        if (i < s.n) {
            char c = s.p[i];
            if (c == '"') {
                Py_ssize_t j = i + 1;
                while (j < s.n && s.p[j] != '"') {
                    if (s.p[j] == '\\')
                        goto bail;
                    j++;
                }
                if (j >= s.n)
                    goto bail;
                i = j + 1;
                continue;
            }
            if (c == '<' || c == '\\' || is_ws(c))
                goto bail;
            if (c != ';') {
                i++;
                continue;
            }
        }
        sv part = sub(s, start, i);
        if (part.n > 0) {
            Py_ssize_t e = find(part, '=');
            PyObject *name, *value;
            if (e < 0) {
                name = small_lower(part);
                if (name == NULL)
                    goto err;
                value = V_empty;
                Py_INCREF(value);
            } else {
                name = small_lower(sub(part, 0, e));
                if (name == NULL)
                    goto err;
                sv v = sub(part, e + 1, part.n);
                if (v.n >= 2 && v.p[0] == '"' && v.p[v.n - 1] == '"')
                    v = sub(v, 1, v.n - 1);
                value = small_str(v);
            }
            if (value == NULL || PyDict_SetItem(d, name, value) < 0) {
                Py_DECREF(name);
                Py_XDECREF(value);
                goto err;
            }
            Py_DECREF(name);
            Py_DECREF(value);
        }
        start = i + 1;
        i++;
    }
    *out = d;
    return OK;
bail:
    Py_DECREF(d);
    return BAIL;
err:
    Py_DECREF(d);
    return ERR;
}


/* _uri.parse_uri of a URI without whitespace (the caller declines those). */
static int parse_uri(sv raw, PyObject **out, int *has_headers) {
    PyObject *d = PyDict_New();
    if (d == NULL)
        return ERR;
    *has_headers = 0;
    if (put(d, K_raw, small_str(raw)) < 0)
        goto err;
    Py_ssize_t colon = find(raw, ':');
    if (colon <= 0) {
        Py_INCREF(V_empty);
        if (put(d, K_scheme, V_empty) < 0)
            goto err;
        *out = d;
        return OK;
    }
    sv scheme = sub(raw, 0, colon);
    int kind; /* 1 sip/sips, 2 tel, 0 other */
    PyObject *sch;
    char low[5] = {0};
    if (scheme.n <= 4) {
        for (Py_ssize_t i = 0; i < scheme.n; i++)
            low[i] = (char)((scheme.p[i] >= 'A' && scheme.p[i] <= 'Z') ? scheme.p[i] | 0x20
                                                                        : scheme.p[i]);
    }
    if (strcmp(low, "sip") == 0) {
        kind = 1;
        sch = V_sip;
        Py_INCREF(sch);
    } else if (strcmp(low, "sips") == 0) {
        kind = 1;
        sch = V_sips;
        Py_INCREF(sch);
    } else if (strcmp(low, "tel") == 0) {
        kind = 2;
        sch = V_tel;
        Py_INCREF(sch);
    } else {
        kind = 0;
        sch = lower_of(scheme);
    }
    if (put(d, K_scheme, sch) < 0)
        goto err;
    sv rest = sub(raw, colon + 1, raw.n);
    if (kind == 1) {
        Py_ssize_t at = find(rest, '@');
        if (at >= 0) {
            sv ui = sub(rest, 0, at);
            rest = sub(rest, at + 1, rest.n);
            Py_ssize_t pc = find(ui, ':');
            if (pc >= 0) {
                if (put(d, K_user, small_str(sub(ui, 0, pc))) < 0 ||
                    put(d, K_password, str_of(sub(ui, pc + 1, ui.n))) < 0)
                    goto err;
            } else if (put(d, K_user, small_str(ui)) < 0) {
                goto err;
            }
        }
        Py_ssize_t q = find(rest, '?');
        if (q >= 0) {
            *has_headers = 1;
            if (put(d, K_headers, str_of(sub(rest, q + 1, rest.n))) < 0)
                goto err;
            rest = sub(rest, 0, q);
        }
        Py_ssize_t semi = find(rest, ';');
        sv host;
        long port;
        split_hostport(semi < 0 ? rest : sub(rest, 0, semi), &host, &port);
        if (put(d, K_host, small_str(host)) < 0)
            goto err;
        if (port >= 0 && put(d, K_port, PyLong_FromLong(port)) < 0)
            goto err;
        if (semi >= 0) {
            PyObject *pp;
            int rc = parse_params(sub(rest, semi + 1, rest.n), &pp);
            if (rc != OK) {
                Py_DECREF(d);
                return rc;
            }
            if (put(d, K_params, pp) < 0)
                goto err;
        }
    } else if (kind == 2) {
        Py_ssize_t semi = find(rest, ';');
        if (put(d, K_user, str_of(semi < 0 ? rest : sub(rest, 0, semi))) < 0)
            goto err;
        if (semi >= 0) {
            PyObject *pp;
            int rc = parse_params(sub(rest, semi + 1, rest.n), &pp);
            if (rc != OK) {
                Py_DECREF(d);
                return rc;
            }
            if (put(d, K_params, pp) < 0)
                goto err;
        }
    } else if (put(d, K_opaque, str_of(rest)) < 0) {
        goto err;
    }
    *out = d;
    return OK;
err:
    Py_DECREF(d);
    return ERR;
}

/* _headers.parse_name_addr of a trimmed value. */
static int parse_name_addr(sv s, PyObject **out) {
    sv display = {s.p, 0}, rest = s, uri, params;
    Py_ssize_t lt;
    if (s.n > 0 && s.p[0] == '"') {
        Py_ssize_t j = 1;
        while (j < s.n && s.p[j] != '"') {
            if (s.p[j] == '\\')
                return BAIL;
            j++;
        }
        if (j >= s.n)
            return BAIL;
        display = sub(s, 1, j);
        rest = sub(s, j + 1, s.n);
        lt = find(rest, '<');
        if (lt < 0)
            return BAIL;
    } else {
        lt = find(rest, '<');
    }
    if (lt >= 0) {
        Py_ssize_t gt = find(sub(rest, lt, rest.n), '>');
        if (gt < 0)
            return BAIL;
        gt += lt;
        if (display.n == 0)
            display = trim(sub(rest, 0, lt));
        uri = sub(rest, lt + 1, gt);
        params = sub(rest, gt + 1, rest.n);
    } else {
        Py_ssize_t semi = find(rest, ';');
        uri = trim(semi < 0 ? rest : sub(rest, 0, semi));
        params = semi < 0 ? sub(rest, rest.n, rest.n) : sub(rest, semi, rest.n);
    }
    if (has_ws(uri))
        return BAIL;
    params = trim(params);
    if (params.n > 0 && params.p[0] != ';')
        return BAIL;
    PyObject *d = PyDict_New(), *u;
    int hh;
    if (d == NULL)
        return ERR;
    int rc = parse_uri(uri, &u, &hh);
    if (rc != OK) {
        Py_DECREF(d);
        return rc;
    }
    if (put(d, K_uri, u) < 0)
        goto err;
    if (display.n > 0 && put(d, K_display, small_str(display)) < 0)
        goto err;
    if (params.n > 0) {
        PyObject *hp;
        rc = parse_params(sub(params, 1, params.n), &hp);
        if (rc != OK) {
            Py_DECREF(d);
            return rc;
        }
        if (PyDict_SetItem(d, K_params, hp) < 0) {
            Py_DECREF(hp);
            goto err;
        }
        PyObject *tag = PyDict_GetItemWithError(hp, K_tag);
        if (tag != NULL && PyDict_SetItem(d, K_tag, tag) < 0) {
            Py_DECREF(hp);
            goto err;
        }
        Py_DECREF(hp);
        if (tag == NULL && PyErr_Occurred())
            goto err;
    }
    *out = d;
    return OK;
err:
    Py_DECREF(d);
    return ERR;
}


/* _headers.parse_name_addr_list, appending to list l. */
static int name_addr_list(sv value, PyObject *l) {
    sv t = trim(value);
    if (t.n == 1 && t.p[0] == '*') {
        PyObject *d = PyDict_New();
        if (d == NULL || PyDict_SetItem(d, K_star, Py_True) < 0 || PyList_Append(l, d) < 0) {
            Py_XDECREF(d);
            return ERR;
        }
        Py_DECREF(d);
        return OK;
    }
    Py_ssize_t pos = 0;
    while (pos <= value.n) {
        sv part;
        TRY(next_part(value, &pos, &part));
        part = trim(part);
        if (part.n == 0)
            continue;
        PyObject *d;
        TRY(parse_name_addr(part, &d));
        int rc = PyList_Append(l, d);
        Py_DECREF(d);
        if (rc < 0)
            return ERR;
    }
    return OK;
}

/* _headers.parse_via of one comma-separated part (not trimmed). */
static int parse_via(sv v, PyObject **out) {
    Py_ssize_t semi = find(v, ';');
    sv head = semi < 0 ? v : sub(v, 0, semi);
    Py_ssize_t slash = rfind(head, '/');
    if (slash < 0)
        return BAIL;
    char proto[64];
    Py_ssize_t pn = 0;
    for (Py_ssize_t i = 0; i < slash; i++) {
        if (is_ws(head.p[i]))
            continue;
        if (pn >= (Py_ssize_t)sizeof(proto))
            return BAIL;
        proto[pn++] = head.p[i];
    }
    sv tail = trim(sub(head, slash + 1, head.n));
    Py_ssize_t e = 0;
    while (e < tail.n && !is_ws(tail.p[e]))
        e++;
    sv transport = sub(tail, 0, e), sentby = sub(tail, e, tail.n);
    if (transport.n == 0 || trim(sentby).n == 0)
        return BAIL;
    sv host;
    long port;
    split_hostport(sentby, &host, &port);
    PyObject *d = PyDict_New();
    if (d == NULL)
        return ERR;
    PyObject *pv, *tv;
    sv p = {proto, pn};
    if (eq(p, "SIP/2.0")) {
        pv = V_sip20;
        Py_INCREF(pv);
    } else {
        pv = str_of(p);
    }
    if (eq(transport, "UDP")) {
        tv = V_udp;
        Py_INCREF(tv);
    } else if (eq(transport, "TCP")) {
        tv = V_tcp;
        Py_INCREF(tv);
    } else {
        tv = PyUnicode_New(transport.n, 127);
        if (tv != NULL) {
            char *dd = (char *)PyUnicode_DATA(tv);
            for (Py_ssize_t i = 0; i < transport.n; i++) {
                char c = transport.p[i];
                dd[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
            }
        }
    }
    if (put(d, K_protocol, pv) < 0 || put(d, K_transport, tv) < 0 ||
        put(d, K_host, small_str(host)) < 0)
        goto err;
    if (port >= 0 && put(d, K_port, PyLong_FromLong(port)) < 0)
        goto err;
    if (semi >= 0) {
        PyObject *pp;
        int rc = parse_params(sub(v, semi + 1, v.n), &pp);
        if (rc != OK) {
            Py_DECREF(d);
            return rc;
        }
        if (put(d, K_params, pp) < 0)
            goto err;
        PyObject *keys[3] = {K_branch, K_received, K_rport};
        for (int k = 0; k < 3; k++) {
            PyObject *x = PyDict_GetItemWithError(pp, keys[k]);
            if (x == NULL) {
                if (PyErr_Occurred())
                    goto err;
                continue;
            }
            if (PyDict_SetItem(d, keys[k], x) < 0)
                goto err;
        }
    }
    *out = d;
    return OK;
err:
    Py_DECREF(d);
    return ERR;
}


/* _message._start_line for lines that raise no anomaly and no reject. */
static int start_line(sv line, PyObject *payload) {
    for (Py_ssize_t i = 0; i < line.n; i++) {
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
        long code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
        Py_INCREF(V_response);
        if (put(payload, K_kind, V_response) < 0 ||
            put(payload, K_status_code, PyLong_FromLong(code)) < 0 ||
            put(payload, K_reason, small_str(line.n > 12 ? sub(line, 12, line.n) : sub(line, 0, 0))) <
                0)
            return ERR;
        return OK;
    }
    Py_ssize_t s1 = find(line, ' ');
    if (s1 <= 0)
        return BAIL;
    Py_ssize_t s2 = find(sub(line, s1 + 1, line.n), ' ');
    if (s2 <= 0)
        return BAIL;
    s2 += s1 + 1;
    sv method = sub(line, 0, s1), ruri = sub(line, s1 + 1, s2), version = sub(line, s2 + 1, line.n);
    if (!eq(version, "SIP/2.0") || !is_token(method))
        return BAIL;
    if (ruri.p[0] == '<' && ruri.p[ruri.n - 1] == '>')
        return BAIL;
    PyObject *u;
    int hh;
    TRY(parse_uri(ruri, &u, &hh));
    if (hh) {
        Py_DECREF(u);
        return BAIL;
    }
    Py_INCREF(V_request);
    if (put(payload, K_kind, V_request) < 0 || put(payload, K_method, small_str(method)) < 0 ||
        put(payload, K_request_uri, u) < 0)
        return ERR;
    return OK;
}

/* One-entry caches per canonical header id: the last name string and, for headers whose value
 * usually repeats from message to message (Content-Type, User-Agent, Allow, Max-Forwards, ...),
 * the last value string. A hit shares the (immutable) str instead of allocating one. */
static PyObject *name_cache[N_IDS], *value_cache[N_IDS];
static const unsigned char VALUE_REPEATS[N_IDS] = {
    [ID_CONTENT_LENGTH] = 1, [ID_CONTENT_TYPE] = 1, [ID_MAX_FORWARDS] = 1, [ID_USER_AGENT] = 1,
    [ID_SERVER] = 1, [ID_EXPIRES] = 1, [ID_SUPPORTED] = 1, [ID_ALLOW] = 1, [ID_EVENT] = 1,
    [22] = 1 /* allow-events */, [25] = 1 /* session-expires */, [35] = 1 /* require */,
    [36] = 1 /* proxy-require */, [38] = 1 /* accept */,
};

static PyObject *cached_str(PyObject **slot, sv s) {
    PyObject *c = *slot;
    if (c != NULL && PyUnicode_GET_LENGTH(c) == s.n &&
        memcmp(PyUnicode_DATA(c), s.p, (size_t)s.n) == 0) {
        Py_INCREF(c);
        return c;
    }
    PyObject *u = str_of(s);
    if (u != NULL && s.n <= 256) {
        Py_INCREF(u);
        Py_XSETREF(*slot, u);
    }
    return u;
}

typedef struct {
    int32_t *spans; /* SIP_SCAN_FIELDS per header */
    int n;
    PyObject **vals; /* value str per header */
    int first[N_IDS];
    int count[N_IDS];
} heads;

static int build(const char *buf, heads *h, sv line, PyObject *payload, PyObject **cl) {
    TRY(start_line(line, payload));
    /* Header index, in wire order. */
    PyObject *index = PyList_New(h->n);
    if (index == NULL)
        return ERR;
    for (int k = 0; k < h->n; k++) {
        int32_t *o = h->spans + (size_t)k * SIP_SCAN_FIELDS;
        sv name = {buf + o[0], o[1] - o[0]}, value = {buf + o[2], o[3] - o[2]};
        int id = o[4];
        int known = id >= 0 && id < N_IDS;
        PyObject *pair = PyList_New(2);
        PyObject *ns = known ? cached_str(&name_cache[id], name) : str_of(name);
        PyObject *vs = known && VALUE_REPEATS[id] ? cached_str(&value_cache[id], value)
                                                  : str_of(value);
        if (pair == NULL || ns == NULL || vs == NULL) {
            Py_XDECREF(pair);
            Py_XDECREF(ns);
            Py_XDECREF(vs);
            Py_DECREF(index);
            return ERR;
        }
        Py_INCREF(vs);
        h->vals[k] = vs;
        PyList_SET_ITEM(pair, 0, ns);
        PyList_SET_ITEM(pair, 1, vs);
        PyList_SET_ITEM(index, k, pair);
        if (known) {
            if (h->count[id]++ == 0)
                h->first[id] = k;
        }
    }
    if (put(payload, K_headers, index) < 0)
        return ERR;
#define VAL(k) (sv){buf + h->spans[(size_t)(k)*SIP_SCAN_FIELDS + 2], \
                    h->spans[(size_t)(k)*SIP_SCAN_FIELDS + 3] - h->spans[(size_t)(k)*SIP_SCAN_FIELDS + 2]}
    /* Identity: each once (repeats go to the reference, which checks they agree). */
    static const int ident[] = {ID_CALL_ID, ID_FROM, ID_TO, ID_CSEQ};
    for (int k = 0; k < 4; k++)
        if (h->count[ident[k]] != 1)
            return BAIL;
    if (h->count[ID_VIA] == 0)
        return BAIL;
    PyObject *cid = h->vals[h->first[ID_CALL_ID]];
    Py_INCREF(cid);
    if (put(payload, K_call_id, cid) < 0)
        return ERR;
    PyObject *na;
    TRY(parse_name_addr(trim(VAL(h->first[ID_FROM])), &na));
    if (put(payload, K_from, na) < 0)
        return ERR;
    TRY(parse_name_addr(trim(VAL(h->first[ID_TO])), &na));
    if (put(payload, K_to, na) < 0)
        return ERR;
    /* CSeq: "number method", the number within 32 bits. */
    sv cs = trim(VAL(h->first[ID_CSEQ]));
    Py_ssize_t sp = 0;
    while (sp < cs.n && !is_ws(cs.p[sp]))
        sp++;
    sv num_s = sub(cs, 0, sp), meth = trim(sub(cs, sp, cs.n));
    long long num;
    if (!digits(num_s, 10, &num) || num > 0xFFFFFFFFLL || meth.n == 0 || has_ws(meth))
        return BAIL;
    PyObject *kind = PyDict_GetItem(payload, K_kind);
    PyObject *method = PyDict_GetItem(payload, K_method);
    if (kind == V_request) {
        sv m = {PyUnicode_DATA(method), PyUnicode_GET_LENGTH(method)};
        if (!(m.n == meth.n && memcmp(m.p, meth.p, (size_t)m.n) == 0) && !eq(m, "ACK"))
            return BAIL;
    }
    PyObject *cseq = PyDict_New();
    if (cseq == NULL)
        return ERR;
    if (put(cseq, K_number, PyLong_FromLongLong(num)) < 0 ||
        put(cseq, K_method, small_str(meth)) < 0) {
        Py_DECREF(cseq);
        return ERR;
    }
    if (put(payload, K_cseq, cseq) < 0)
        return ERR;
    /* Via: every comma-separated entry of every Via header. */
    PyObject *vias = PyList_New(0);
    if (vias == NULL)
        return ERR;
    if (put(payload, K_via, vias) < 0)
        return ERR;
    for (int k = h->first[ID_VIA]; k < h->n; k++) {
        if (h->spans[(size_t)k * SIP_SCAN_FIELDS + 4] != ID_VIA)
            continue;
        sv v = VAL(k);
        Py_ssize_t pos = 0;
        while (pos <= v.n) {
            sv part;
            TRY(next_part(v, &pos, &part));
            if (trim(part).n == 0)
                continue;
            PyObject *d;
            TRY(parse_via(part, &d));
            int rc = PyList_Append(vias, d);
            Py_DECREF(d);
            if (rc < 0)
                return ERR;
        }
    }
    if (PyList_GET_SIZE(vias) == 0)
        return BAIL;
    /* Contact, Route, Record-Route, P-Asserted-Identity. */
    for (int j = 0; j < 4; j++) {
        int id = LIST_IDS[j];
        if (h->count[id] == 0)
            continue;
        PyObject *l = PyList_New(0);
        if (l == NULL || put(payload, K_lists[j], l) < 0)
            return ERR;
        for (int k = h->first[id]; k < h->n; k++) {
            if (h->spans[(size_t)k * SIP_SCAN_FIELDS + 4] != id)
                continue;
            sv v = VAL(k);
            if (id == ID_CONTACT && find(v, '<') < 0 && find(v, '?') >= 0)
                return BAIL;
            TRY(name_addr_list(v, l));
        }
    }
    /* Scalars: one value as is, repeats joined with ", ". */
    for (int j = 0; j < 10; j++) {
        int id = SCALAR_IDS[j];
        if (h->count[id] == 0)
            continue;
        if (id == ID_MAX_FORWARDS) {
            long long mf;
            if (h->count[id] != 1 || !digits(VAL(h->first[id]), 10, &mf) || mf > 255)
                return BAIL;
            if (put(payload, K_scalars[j], PyLong_FromLongLong(mf)) < 0)
                return ERR;
            continue;
        }
        PyObject *v;
        if (h->count[id] == 1) {
            v = h->vals[h->first[id]];
            Py_INCREF(v);
        } else {
            PyObject *l = PyList_New(0);
            if (l == NULL)
                return ERR;
            for (int k = h->first[id]; k < h->n; k++) {
                if (h->spans[(size_t)k * SIP_SCAN_FIELDS + 4] == id &&
                    PyList_Append(l, h->vals[k]) < 0) {
                    Py_DECREF(l);
                    return ERR;
                }
            }
            PyObject *sep = PyUnicode_FromString(", ");
            v = sep == NULL ? NULL : PyUnicode_Join(sep, l);
            Py_XDECREF(sep);
            Py_DECREF(l);
        }
        if (put(payload, K_scalars[j], v) < 0)
            return ERR;
    }
    if (h->count[ID_DATE] > 0) {
        sv dv = VAL(h->first[ID_DATE]);
        if (dv.n < 3 || memcmp(dv.p + dv.n - 3, "GMT", 3) != 0)
            return BAIL;
    }
    /* Content-Length: once, digits, at most 9 of them (the caller frames the body). */
    *cl = Py_None;
    Py_INCREF(Py_None);
    if (h->count[ID_CONTENT_LENGTH] > 0) {
        long long n;
        if (h->count[ID_CONTENT_LENGTH] != 1 || !digits(VAL(h->first[ID_CONTENT_LENGTH]), 9, &n))
            return BAIL;
        Py_DECREF(Py_None);
        *cl = PyLong_FromLongLong(n);
        if (*cl == NULL)
            return ERR;
    }
#undef VAL
    return OK;
}

/* parser.labels_of of a payload built above: the sip.* labels, same keys in the same order. */
static PyObject *L_call_id, *L_from_uri, *L_to_uri, *L_cseq, *L_cseq_method, *L_method,
    *L_request_uri, *L_status_code, *L_from_user, *L_to_user, *L_from_tag, *L_to_tag, *L_via,
    *L_via_branch, *L_user_agent, *K_user_agent, *K_server;

static int put_from(PyObject *labels, PyObject *key, PyObject *d, PyObject *k) {
    PyObject *v = PyDict_GetItemWithError(d, k);
    if (v == NULL)
        return PyErr_Occurred() ? ERR : OK;
    return PyDict_SetItem(labels, key, v) < 0 ? ERR : OK;
}

static PyObject *labels_of(PyObject *p) {
    PyObject *frm = PyDict_GetItem(p, K_from), *to = PyDict_GetItem(p, K_to);
    PyObject *cseq = PyDict_GetItem(p, K_cseq);
    PyObject *fu = PyDict_GetItem(frm, K_uri), *tu = PyDict_GetItem(to, K_uri);
    PyObject *cmeth = PyDict_GetItem(cseq, K_method);
    PyObject *l = PyDict_New();
    if (l == NULL)
        return NULL;
    if (put_from(l, L_call_id, p, K_call_id) || put_from(l, L_from_uri, fu, K_raw) ||
        put_from(l, L_to_uri, tu, K_raw) ||
        put(l, L_cseq, PyUnicode_FromFormat("%S %U", PyDict_GetItem(cseq, K_number), cmeth)) ||
        PyDict_SetItem(l, L_cseq_method, cmeth) < 0)
        goto err;
    if (PyDict_GetItem(p, K_kind) == V_request) {
        if (put_from(l, L_method, p, K_method) ||
            put_from(l, L_request_uri, PyDict_GetItem(p, K_request_uri), K_raw))
            goto err;
    } else if (put(l, L_status_code, PyObject_Str(PyDict_GetItem(p, K_status_code))) ||
               PyDict_SetItem(l, L_method, cmeth) < 0) {
        goto err;
    }
    if (put_from(l, L_from_user, fu, K_user) || put_from(l, L_to_user, tu, K_user) ||
        put_from(l, L_from_tag, frm, K_tag) || put_from(l, L_to_tag, to, K_tag))
        goto err;
    PyObject *vias = PyDict_GetItem(p, K_via);
    if (vias != NULL && PyList_GET_SIZE(vias) > 0) {
        PyObject *top = PyList_GET_ITEM(vias, 0);
        PyObject *port = PyDict_GetItem(top, K_port);
        PyObject *v = port == NULL
                          ? PyUnicode_FromFormat("%U/%U %U", PyDict_GetItem(top, K_protocol),
                                                 PyDict_GetItem(top, K_transport),
                                                 PyDict_GetItem(top, K_host))
                          : PyUnicode_FromFormat("%U/%U %U:%S", PyDict_GetItem(top, K_protocol),
                                                 PyDict_GetItem(top, K_transport),
                                                 PyDict_GetItem(top, K_host), port);
        if (put(l, L_via, v) || put_from(l, L_via_branch, top, K_branch))
            goto err;
    }
    /* p.get("user_agent") or p.get("server") */
    PyObject *ua = PyDict_GetItem(p, K_user_agent);
    if (ua == NULL || PyUnicode_GET_LENGTH(ua) == 0)
        ua = PyDict_GetItem(p, K_server);
    if (ua != NULL && PyDict_SetItem(l, L_user_agent, ua) < 0)
        goto err;
    return l;
err:
    Py_DECREF(l);
    return NULL;
}

#define MAX_STACK_HEADERS 256

static PyObject *parse_head(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "parse_head(data: bytes, hend, max_headers, max_line)");
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t hend = PyLong_AsSsize_t(args[1]);
    long max_headers = PyLong_AsLong(args[2]);
    long max_line = PyLong_AsLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (hend < 0 || hend > size || max_headers < 0 || max_headers > 1000000 || max_line < 0 ||
        hend > 0x7fffffff)
        Py_RETURN_NONE;
    const char *buf = PyBytes_AS_STRING(args[0]);
    int32_t stack_spans[(MAX_STACK_HEADERS + 1) * SIP_SCAN_FIELDS];
    PyObject *stack_vals[MAX_STACK_HEADERS + 1];
    int32_t *spans = stack_spans;
    PyObject **vals = stack_vals;
    if (max_headers > MAX_STACK_HEADERS) {
        spans = PyMem_Malloc(sizeof(int32_t) * (size_t)(max_headers + 1) * SIP_SCAN_FIELDS);
        vals = PyMem_Malloc(sizeof(PyObject *) * (size_t)(max_headers + 1));
        if (spans == NULL || vals == NULL) {
            PyMem_Free(spans);
            PyMem_Free(vals);
            return PyErr_NoMemory();
        }
    }
    PyObject *result = NULL, *payload = NULL, *cl = NULL;
    heads h;
    h.spans = spans;
    h.vals = vals;
    h.n = sip_scan((const uint8_t *)buf, (size_t)hend, spans, (int)max_headers, (int)max_line);
    memset(h.first, 0, sizeof(h.first));
    memset(h.count, 0, sizeof(h.count));
    int built = 0;
    if (h.n < 0) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    const char *eol = memchr(buf, '\n', (size_t)hend);
    sv line = {buf, eol == NULL ? hend : (eol - buf) - 1};
    if (eol == NULL) {
        result = Py_None; /* start line only: rare, left to the reference */
        Py_INCREF(result);
        goto done;
    }
    payload = PyDict_New();
    if (payload == NULL)
        goto done;
    /* vals[] holds a reference per header once the index is built; count how many. */
    for (int k = 0; k < h.n; k++)
        vals[k] = NULL;
    int rc = build(buf, &h, line, payload, &cl);
    built = 1;
    if (rc == ERR)
        goto done;
    if (rc == BAIL) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    PyObject *labels = labels_of(payload);
    if (labels != NULL) {
        result = PyTuple_Pack(3, payload, cl, labels);
        Py_DECREF(labels);
    }
done:
    if (built)
        for (int k = 0; k < h.n; k++)
            Py_XDECREF(vals[k]);
    Py_XDECREF(payload);
    Py_XDECREF(cl);
    if (spans != stack_spans) {
        PyMem_Free(spans);
        PyMem_Free(vals);
    }
    return result;
}

static PyMethodDef methods[] = {
    {"parse_head", (PyCFunction)(void (*)(void))parse_head, METH_FASTCALL,
     "parse_head(data, hend, max_headers, max_line) -> (payload, content_length, labels) | None"},
    {"parse_json", (PyCFunction)(void (*)(void))otus_sip_parse_json, METH_FASTCALL,
     "parse_json(data, max_headers, max_line, datagram, parse_sdp) -> (payload_json, labels, "
     "status, trailing, body, content_type, media) | None"},
    {"parse_batch", (PyCFunction)(void (*)(void))otus_sip_parse_batch, METH_FASTCALL,
     "parse_batch(datagrams, start, out, cfg, table) -> (next, pending, counts)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sip_fast", "SIP message head parser (fast path).", -1, methods,
    NULL, NULL, NULL, NULL,
};

static int intern(PyObject **slot, const char *s) {
    *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__sip_fast(void) {
    static const char *list_keys[4] = {"contact", "route", "record_route", "p_asserted_identity"};
    static const char *scalar_keys[10] = {"max_forwards", "content_type", "user_agent", "server",
                                          "expires",      "reason_header", "subject",
                                          "supported",    "allow",         "event"};
    if (intern(&K_raw, "raw") || intern(&K_scheme, "scheme") || intern(&K_user, "user") ||
        intern(&K_password, "password") || intern(&K_headers, "headers") ||
        intern(&K_host, "host") || intern(&K_port, "port") || intern(&K_params, "params") ||
        intern(&K_opaque, "opaque") || intern(&K_uri, "uri") || intern(&K_display, "display") ||
        intern(&K_tag, "tag") || intern(&K_star, "star") || intern(&K_protocol, "protocol") ||
        intern(&K_transport, "transport") || intern(&K_branch, "branch") ||
        intern(&K_received, "received") || intern(&K_rport, "rport") ||
        intern(&K_kind, "kind") || intern(&K_method, "method") ||
        intern(&K_request_uri, "request_uri") || intern(&K_status_code, "status_code") ||
        intern(&K_reason, "reason") || intern(&K_call_id, "call_id") ||
        intern(&K_from, "from") || intern(&K_to, "to") || intern(&K_cseq, "cseq") ||
        intern(&K_number, "number") || intern(&K_via, "via") ||
        intern(&K_max_forwards, "max_forwards") || intern(&V_empty, "") ||
        intern(&V_request, "request") || intern(&V_response, "response") ||
        intern(&V_sip, "sip") || intern(&V_sips, "sips") || intern(&V_tel, "tel") ||
        intern(&V_sip20, "SIP/2.0") || intern(&V_udp, "UDP") || intern(&V_tcp, "TCP"))
        return NULL;
    for (int k = 0; k < 4; k++)
        if (intern(&K_lists[k], list_keys[k]))
            return NULL;
    for (int k = 0; k < 10; k++)
        if (intern(&K_scalars[k], scalar_keys[k]))
            return NULL;
    if (intern(&L_call_id, "sip.call_id") || intern(&L_from_uri, "sip.from_uri") ||
        intern(&L_to_uri, "sip.to_uri") || intern(&L_cseq, "sip.cseq") ||
        intern(&L_cseq_method, "sip.cseq_method") || intern(&L_method, "sip.method") ||
        intern(&L_request_uri, "sip.request_uri") || intern(&L_status_code, "sip.status_code") ||
        intern(&L_from_user, "sip.from_user") || intern(&L_to_user, "sip.to_user") ||
        intern(&L_from_tag, "sip.from_tag") || intern(&L_to_tag, "sip.to_tag") ||
        intern(&L_via, "sip.via") || intern(&L_via_branch, "sip.via_branch") ||
        intern(&L_user_agent, "sip.user_agent") || intern(&K_user_agent, "user_agent") ||
        intern(&K_server, "server"))
        return NULL;
    if (otus_sip_json_init() < 0)
        return NULL;
    return PyModule_Create(&module);
}
