/* A batch of SIP datagrams to records in one call: the common case of parser.SipParser.parse.
 *
 * parse_batch(datagrams, start, out, cfg, dcfg) walks datagrams[start:] and, for each one the
 * C path fully handles -- a CRLF keep-alive, or a message otus_sip_json_core writes completely
 * (head and body) -- does what SipParser._one does around that call: strips leading CRLFs,
 * counts (messages, requests by method, responses by class, trailing octets, keep-alives),
 * copies the bytes and appends the otus.Record to out. It stops at the first datagram it does
 * not handle (not bytes-like, TLS, too large, declined by the C parser: Python runs it) and
 * returns (next, ops, counts, dcounts), after the dialog table (sip_dialog.c) has seen each
 * message as SipParser._follow would have it:
 *   next     the index Python continues at (len(datagrams) when all were handled);
 *   ops      the media registry's work, in order: [is_end, call_id, ts_ns, media, ...] (is_end:
 *            the call ended or was evicted at ts_ns; else register media, an SDP's summary);
 *            empty when the registry is the C table (MediaTable, sip_media.c): then the SDP's
 *            endpoints and the ended calls go to it directly;
 *   counts   (messages, requests, responses, trailing, keepalives, 1xx .. 6xx, then
 *            (method index, count) pairs in first-seen order; index into KNOWN below, 14 is
 *            "other");
 *   dcounts  (created, evicted, setup count, setup sum ms, setup buckets x8) of DialogTable.
 * cfg is (Record, Datagram, max_message_size, max_headers, max_line, parse_sdp, "sip",
 * datagram): datagram false for messages framed from a TCP stream (SipParser.parse_stream:
 * Content-Length required, and a keep-alive, TLS or leading CRLF is left to Python); dcfg
 * is (the DialogStore, DialogTable.by_outcome, max_dialogs, dialog labels on, the media registry
 * or None, media timeout ns, dialog linger ns).
 * Records are built by writing otus.Record's slots directly when its __slots__ are exactly the
 * ones known here (else by calling the class with keywords): same values __init__ stores. The
 * labels go in as JSON (Record(labels_json=...)): otus_sip_json_core writes the message's,
 * the dialog table appends the call's, byte for byte orjson.dumps of the dict Python builds.
 */
#include "sip_dialog.h"
#include "sip_jb.h"
#include "sip_sv.h"
#include "structmember.h"

#define NMETHODS 14
static const char *const KNOWN[NMETHODS] = {
    "INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE"};

enum { R_TS, R_SRC, R_DST, R_SPORT, R_DPORT, R_PROTO, R_PTYPE, R_RAW, R_JSON, R_LJSON,
       R_LABELS, R_PAYLOAD, R_TASK, R_AGENT, R_PIPE, R_N };
static const char *const R_NAMES[R_N] = {
    "ts_ns", "src_ip", "dst_ip", "src_port", "dst_port", "protocol", "payload_type",
    "raw_payload", "_payload_json", "_labels_json", "_labels", "_payload", "task_id",
    "agent_id", "pipeline_id"};
/* The keywords of Record(...) when the slots cannot be written directly (first 10 of R_NAMES,
 * _payload_json and _labels_json as payload_json and labels_json). */
static PyObject *r_kwnames;
static PyTypeObject *r_type;
static Py_ssize_t r_off[R_N];
static int r_direct;

enum { D_TS, D_SRC, D_DST, D_SPORT, D_DPORT, D_PROTO, D_PAYLOAD, D_N };
static const char *const D_NAMES[D_N] = {"ts_ns",    "src_ip",   "dst_ip", "src_port",
                                         "dst_port", "protocol", "payload"};
static PyObject *d_names[D_N];
static PyTypeObject *d_type;
static Py_ssize_t d_off[D_N];
static int d_direct;

static PyObject *s_empty, *s_zero;

/* 1 when t's own __slots__ hold `names` (exactly those, as a set, when `exact`: a Record is
 * written whole) and no base adds instance state; their offsets in off. */
static int slots_are(PyTypeObject *t, const char *const *names, int n, Py_ssize_t *off,
                     int exact) {
    if (t->tp_base != &PyBaseObject_Type || t->tp_dictoffset != 0)
        return 0;
    PyObject *slots = PyObject_GetAttrString((PyObject *)t, "__slots__");
    if (slots == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t len = PySequence_Size(slots);
    Py_DECREF(slots);
    if (exact ? len != n : len < n) {
        PyErr_Clear();
        return 0;
    }
    for (int k = 0; k < n; k++)
        if ((off[k] = otus_sip_slot_offset(t, names[k])) < 0)
            return 0;
    return 1;
}

static int setup(PyTypeObject *rt, PyTypeObject *dt) {
    if (s_empty == NULL) {
        s_empty = PyUnicode_InternFromString("");
        s_zero = PyLong_FromLong(0);
        r_kwnames = PyTuple_New(10);
        if (s_empty == NULL || s_zero == NULL || r_kwnames == NULL)
            return -1;
        for (int k = 0; k < 10; k++) {
            PyObject *s = PyUnicode_InternFromString(k == R_JSON    ? "payload_json"
                                                     : k == R_LJSON ? "labels_json"
                                                                    : R_NAMES[k]);
            if (s == NULL)
                return -1;
            PyTuple_SET_ITEM(r_kwnames, k, s);
        }
        for (int k = 0; k < D_N; k++)
            if ((d_names[k] = PyUnicode_InternFromString(D_NAMES[k])) == NULL)
                return -1;
    }
    if (rt != r_type) {
        r_direct = slots_are(rt, R_NAMES, R_N, r_off, 1);
        Py_XDECREF(r_type);
        Py_INCREF(rt);
        r_type = rt;
    }
    if (dt != d_type) {
        d_direct = slots_are(dt, D_NAMES, D_N, d_off, 0) && dt->tp_basicsize > 0;
        Py_XDECREF(d_type);
        Py_INCREF(dt);
        d_type = dt;
    }
    return 0;
}

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* A new otus.Record; v holds the first 10 fields in R_NAMES order (borrowed). */
static PyObject *make_record(PyObject *const *v) {
    if (!r_direct)
        return PyObject_Vectorcall((PyObject *)r_type, v, 0, r_kwnames);
    PyObject *r = r_type->tp_alloc(r_type, 0);
    if (r == NULL)
        return NULL;
    for (int k = 0; k < 10; k++) {
        Py_INCREF(v[k]);
        SLOT(r, r_off[k]) = v[k];
    }
    SLOT(r, r_off[R_LABELS]) = Py_NewRef(Py_None);
    SLOT(r, r_off[R_PAYLOAD]) = Py_NewRef(Py_None);
    Py_INCREF(s_empty);
    SLOT(r, r_off[R_TASK]) = s_empty;
    Py_INCREF(s_empty);
    SLOT(r, r_off[R_AGENT]) = s_empty;
    Py_INCREF(s_zero);
    SLOT(r, r_off[R_PIPE]) = s_zero;
    return r;
}

/* The datagram's fields (new references in f); 0, or -1 (exception set). */
static int fields(PyObject *d, PyObject **f) {
    if (d_direct && Py_IS_TYPE(d, d_type)) {
        for (int k = 0; k < D_N; k++) {
            f[k] = SLOT(d, d_off[k]);
            if (f[k] == NULL) {
                for (int j = 0; j < k; j++)
                    Py_DECREF(f[j]);
                PyErr_SetString(PyExc_AttributeError, D_NAMES[k]);
                return -1;
            }
            Py_INCREF(f[k]);
        }
        return 0;
    }
    for (int k = 0; k < D_N; k++) {
        if ((f[k] = PyObject_GetAttr(d, d_names[k])) == NULL) {
            for (int j = 0; j < k; j++)
                Py_DECREF(f[j]);
            return -1;
        }
    }
    return 0;
}

/* A prefetch the compiler keeps: GCC 12 at -O3 with -DNDEBUG (as setuptools compiles)
 * silently dropped the __builtin_prefetch calls of prefetch_ahead, an asm statement it cannot.
 * A no-op under AddressSanitizer (prefetch_ahead may name a line just past a small object). */
#if defined(__SANITIZE_ADDRESS__)
#define PREFETCH(a) ((void)(a))
#elif defined(__GNUC__) && defined(__SSE__) /* prefetcht0 is an SSE instruction */
#define PREFETCH(a) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(a)))
#elif defined(__GNUC__) || defined(__clang__)
#define PREFETCH(a) __builtin_prefetch(a)
#else
#define PREFETCH(a) ((void)(a))
#endif

/* A batch built before it is parsed (the capture's, the bench's) is cold in the caches, and
 * each message starts with three dependent misses: the Datagram, its payload object, the
 * message bytes. So at step i: the Datagram three steps ahead, the payload object and the
 * time of the one two steps ahead (their pointers read from the Datagram prefetched one step
 * earlier), and the bytes of the next one (up to 2 KB). Every pointer is read from the list
 * and the objects it holds at this moment, when no Python code runs, and only exact
 * Datagrams with bytes or memoryview payloads are followed; prefetches never fault. */
static inline void prefetch_ahead(PyObject *seq, Py_ssize_t i) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    if (!d_direct)
        return;
    if (i + 3 < n) {
        PREFETCH(items[i + 3]);
        PREFETCH((char *)items[i + 3] + d_off[D_PAYLOAD]);
    }
    if (i + 2 < n && Py_IS_TYPE(items[i + 2], d_type)) {
        PyObject *p = SLOT(items[i + 2], d_off[D_PAYLOAD]), *ts = SLOT(items[i + 2], d_off[D_TS]);
        if (p != NULL) {
            PREFETCH(p);
            PREFETCH((char *)p + 64);
        }
        if (ts != NULL)
            PREFETCH(ts);
    }
    if (i + 1 < n && Py_IS_TYPE(items[i + 1], d_type)) {
        PyObject *p = SLOT(items[i + 1], d_off[D_PAYLOAD]);
        const char *buf = NULL;
        Py_ssize_t size = 0;
        if (p == NULL) {
        } else if (PyBytes_CheckExact(p)) {
            buf = PyBytes_AS_STRING(p);
            size = PyBytes_GET_SIZE(p);
        } else if (PyMemoryView_Check(p)) {
            buf = PyMemoryView_GET_BUFFER(p)->buf;
            size = PyMemoryView_GET_BUFFER(p)->len;
        }
        for (Py_ssize_t k = 0; buf != NULL && k < size && k < 2048; k += 64)
            PREFETCH(buf + k);
    }
}

static int method_index(sv m) {
    static const unsigned char LENS[NMETHODS] = {6, 3, 3, 6, 8, 7, 5, 9, 6, 7, 4, 5, 7, 6};
    for (int k = 0; k < NMETHODS; k++)
        if ((size_t)m.n == LENS[k] && memcmp(m.p, KNOWN[k], (size_t)m.n) == 0)
            return k;
    return NMETHODS;
}

PyObject *otus_sip_parse_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyList_Check(args[2]) || !PyTuple_Check(args[3]) ||
        PyTuple_GET_SIZE(args[3]) != 8 || !PyTuple_Check(args[4]) ||
        PyTuple_GET_SIZE(args[4]) != 7 || !otus_sip_dialog_is_store(PyTuple_GET_ITEM(args[4], 0)) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(args[4], 1)) ||
        !PyType_Check(PyTuple_GET_ITEM(args[3], 0)) ||
        !PyType_Check(PyTuple_GET_ITEM(args[3], 1))) {
        PyErr_SetString(PyExc_TypeError, "parse_batch(datagrams, start, out: list, cfg: tuple, "
                                         "dcfg: tuple)");
        return NULL;
    }
    PyObject *cfg = args[3], *out = args[2], *dcfg = args[4];
    sip_dstate st = {0};
    st.store = PyTuple_GET_ITEM(dcfg, 0);
    st.by_outcome = PyTuple_GET_ITEM(dcfg, 1);
    st.max_dialogs = PyLong_AsSsize_t(PyTuple_GET_ITEM(dcfg, 2));
    st.labels_on = PyObject_IsTrue(PyTuple_GET_ITEM(dcfg, 3));
    PyObject *registry = PyTuple_GET_ITEM(dcfg, 4);
    st.media_on = registry != Py_None;
    int over1, over2; /* beyond 64 bits: the registry's work goes through Python */
    st.ttl_ns = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(dcfg, 5), &over1);
    st.linger_ns = PyLong_AsLongLongAndOverflow(PyTuple_GET_ITEM(dcfg, 6), &over2);
    if (over1 || over2)
        st.ttl_ns = -1;
    /* times within 2**62 (otus_sip_dialog_check) plus these stay within 64 bits */
    if (st.media_on && otus_sip_mreg_check(registry) && st.ttl_ns >= 0 &&
        st.ttl_ns <= (1LL << 62) && st.linger_ns >= 0 && st.linger_ns <= (1LL << 62))
        st.creg = registry;
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    long max_size = PyLong_AsLong(PyTuple_GET_ITEM(cfg, 2));
    long max_headers = PyLong_AsLong(PyTuple_GET_ITEM(cfg, 3));
    long max_line = PyLong_AsLong(PyTuple_GET_ITEM(cfg, 4));
    int parse_sdp = PyObject_IsTrue(PyTuple_GET_ITEM(cfg, 5));
    PyObject *ptype = PyTuple_GET_ITEM(cfg, 6);
    int datagram = PyObject_IsTrue(PyTuple_GET_ITEM(cfg, 7));
    if (PyErr_Occurred() || parse_sdp < 0 || datagram < 0 || st.labels_on < 0 || st.media_on < 0)
        return NULL;
    if (setup((PyTypeObject *)PyTuple_GET_ITEM(cfg, 0), (PyTypeObject *)PyTuple_GET_ITEM(cfg, 1)))
        return NULL;
    PyObject *seq = PySequence_Fast(args[0], "datagrams must be a sequence");
    if (seq == NULL)
        return NULL;
    PyObject *result = NULL;
    jb lab; /* the labels JSON of the message at hand */
    sip_msums ms; /* its SDP's endpoints for the C registry */
    jb_init(&lab);
    PyObject *pending = st.ops = PyList_New(0);
    long cnt[11] = {0}; /* messages, requests, responses, trailing, keepalives, 1xx..6xx */
    long mcount[NMETHODS + 1] = {0};
    int morder[NMETHODS + 1], nseen = 0;
    Py_ssize_t i = start < 0 ? 0 : start;
    if (pending == NULL)
        goto done;
    /* The size and item are read again each step and the item held while its fields are read:
     * a Datagram subclass's attribute getter may run Python code that shrinks the list. */
    for (; i < PySequence_Fast_GET_SIZE(seq); i++) {
        prefetch_ahead(seq, i);
        PyObject *f[D_N], *item = PySequence_Fast_GET_ITEM(seq, i);
        Py_INCREF(item);
        int got = fields(item, f);
        Py_DECREF(item);
        if (got < 0) {
            PyErr_Clear(); /* Python reads it again and raises where it would have */
            break;
        }
        Py_buffer view;
        int have = 0;
        const char *buf = NULL;
        Py_ssize_t size = 0;
        if (PyBytes_Check(f[D_PAYLOAD])) {
            buf = PyBytes_AS_STRING(f[D_PAYLOAD]);
            size = PyBytes_GET_SIZE(f[D_PAYLOAD]);
        } else if (PyMemoryView_Check(f[D_PAYLOAD]) &&
                   !(((PyMemoryViewObject *)f[D_PAYLOAD])->flags & _Py_MEMORYVIEW_RELEASED) &&
                   PyBuffer_IsContiguous(PyMemoryView_GET_BUFFER(f[D_PAYLOAD]), 'C')) {
            /* held by f[] for the whole step and nothing here can release it */
            buf = PyMemoryView_GET_BUFFER(f[D_PAYLOAD])->buf;
            size = PyMemoryView_GET_BUFFER(f[D_PAYLOAD])->len;
        } else if (PyObject_GetBuffer(f[D_PAYLOAD], &view, PyBUF_SIMPLE) == 0) {
            have = 1;
            buf = view.buf;
            size = view.len;
        } else {
            PyErr_Clear(); /* not bytes-like (or released): Python's bytes() decides */
        }
        int handled = 0, failed = 0;
        int keepalive = buf != NULL && size <= 4;
        for (Py_ssize_t k = 0; keepalive && k < size; k++)
            if (buf[k] != '\r' && buf[k] != '\n' && buf[k] != '\0')
                keepalive = 0;
        int odd = buf != NULL && (keepalive || ((unsigned char)buf[0] >= 20 &&
                                                (unsigned char)buf[0] <= 23) ||
                                  (size >= 2 && buf[0] == '\r' && buf[1] == '\n'));
        if (buf == NULL || (!datagram && odd)) {
        } else if (keepalive) {
            cnt[4]++; /* RFC 5626 CRLF keep-alive */
            handled = 1;
        } else if (!((unsigned char)buf[0] >= 20 && (unsigned char)buf[0] <= 23)) {
            if (size >= 2 && buf[0] == '\r' && buf[1] == '\n')
                while (size > 0 && (*buf == '\r' || *buf == '\n'))
                    buf++, size--;
            sip_jres r;
            /* views (no Python summary) for the C registry, or when there is no registry */
            r.msum = st.creg != NULL || !st.media_on ? &ms : NULL;
            int rc = size > max_size ? BAIL
                                     : otus_sip_json_core(buf, size, max_headers, max_line,
                                                          datagram, parse_sdp, 0, &r, &lab);
            int cls = rc == OK ? (int)(r.status / 100) : 0;
            if (rc == OK && r.status && (cls < 1 || cls > 6)) {
                sip_jres_clear(&r);
                rc = BAIL;
            }
            int32_t slot = -1; /* the call's slot in the table, or -1 */
            if (rc == OK) {
                int chk = otus_sip_dialog_check(&st, &r.lv, f[D_TS], &slot);
                if (chk != 1) {
                    sip_jres_clear(&r);
                    rc = chk == 0 ? BAIL : ERR;
                }
            }
            if (rc == OK) {
                /* the dialog first: its labels close the record's labels JSON */
                int ok = otus_sip_dialog_update(&st, &r.lv, &lab, r.status, f[D_TS], r.media,
                                                r.msum, slot) == 0;
                PyObject *raw = NULL, *labels = NULL, *rec = NULL;
                if (ok) {
                    LIT(&lab, "}");
                    ok = !lab.oom;
                    if (!ok)
                        PyErr_NoMemory();
                }
                if (ok) {
                    raw = otus_sip_bytes(OTUS_SIP_RAW, buf, size - r.trailing);
                    labels = otus_sip_bytes(OTUS_SIP_LABELS, lab.p, (Py_ssize_t)lab.n);
                }
                if (raw != NULL && labels != NULL) {
                    PyObject *v[10] = {f[D_TS],    f[D_SRC],   f[D_DST], f[D_SPORT], f[D_DPORT],
                                       f[D_PROTO], ptype,      raw,      r.json,     labels};
                    rec = make_record(v);
                }
                ok = rec != NULL && PyList_Append(out, rec) == 0;
                Py_XDECREF(rec);
                Py_XDECREF(raw);
                Py_XDECREF(labels);
                sip_jres_clear(&r);
                if (!ok)
                    rc = ERR;
            }
            if (rc == OK) {
                cnt[0]++;
                if (r.status) {
                    cnt[2]++;
                    cnt[4 + cls]++;
                } else {
                    cnt[1]++;
                    int mi = method_index(r.method);
                    if (mcount[mi]++ == 0)
                        morder[nseen++] = mi;
                }
                if (r.trailing)
                    cnt[3]++;
                handled = 1;
            }
            failed = rc == ERR;
        }
        if (have)
            PyBuffer_Release(&view);
        for (int k = 0; k < D_N; k++)
            Py_DECREF(f[k]);
        if (failed)
            goto done;
        if (!handled)
            break;
    }
    PyObject *counts = PyTuple_New(11 + 2 * nseen);
    if (counts == NULL)
        goto done;
    for (int k = 0; k < 11 + 2 * nseen; k++) {
        long v = k < 11 ? cnt[k] : (k - 11) % 2 == 0 ? morder[(k - 11) / 2]
                                                      : mcount[morder[(k - 11) / 2]];
        PyObject *o = PyLong_FromLong(v);
        if (o == NULL) {
            Py_DECREF(counts);
            goto done;
        }
        PyTuple_SET_ITEM(counts, k, o);
    }
    PyObject *dcounts = Py_BuildValue(
        "(LLLLLLLLLLLL)", st.created, st.evicted, st.setup_count, st.setup_sum_ms,
        st.setup_buckets[0], st.setup_buckets[1], st.setup_buckets[2], st.setup_buckets[3],
        st.setup_buckets[4], st.setup_buckets[5], st.setup_buckets[6], st.setup_buckets[7]);
    if (dcounts == NULL) {
        Py_DECREF(counts);
        goto done;
    }
    result = Py_BuildValue("(nONN)", i, pending, counts, dcounts);
done:
    jb_free(&lab);
    Py_XDECREF(pending);
    Py_DECREF(seq);
    return result;
}
