/* The Section type (see kafka_section.h): making, growing, routing into, splitting and
 * resetting sections, their buffer export for the compressor, and the route() function.
 */
#include "kafka_section.h"

#include <structmember.h>

#include "kafka_wire.h"

static SectionObject *section_alloc(PyObject *topic, Py_ssize_t partition) {
    SectionObject *s = PyObject_New(SectionObject, &otus_kafka_SectionType);
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
char *otus_kafka_section_put(SectionObject *s, long long ts_ms, Py_ssize_t body_len,
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

SectionObject *otus_kafka_section_route(const route_t *r, PyObject *topic, PyObject *hashed,
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
    if (Py_TYPE(item) != &otus_kafka_SectionType) {
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
        if (Py_TYPE(fresh) != &otus_kafka_SectionType || fresh->exports > 0) {
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
    char *p = otus_kafka_section_put(s, ts_ms, n, framed, held, 0);
    if (p == NULL) return NULL;
    memcpy(p, PyBytes_AS_STRING(args[0]), (size_t)n);
    Py_RETURN_NONE;
}

OTUS_KAFKA_DOC(otus_kafka_route_doc,
               "route(routes, sealed, pool, limit, topic, hashed, body, ts_ms, held) -> bool\n\n"
               "Append a ready record body to the open section of its partition, as report() does "
               "for the records it encodes (sealing a full section); False when the topic has no "
               "route.");

PyObject *otus_kafka_route(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
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
    SectionObject *s = otus_kafka_section_route(&r, args[4], args[5], ts_ms, n, &framed);
    if (s == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_FALSE;
    }
    char *p = otus_kafka_section_put(s, ts_ms, n, framed, held, r.limit + 65536);
    if (p == NULL) return NULL;
    memcpy(p, PyBytes_AS_STRING(args[6]), (size_t)n);
    Py_RETURN_TRUE;
}

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
            char *q = framed ? otus_kafka_section_put(rest, ts, body, framed, 0, 0) : NULL;
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

PyTypeObject otus_kafka_SectionType = {
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
