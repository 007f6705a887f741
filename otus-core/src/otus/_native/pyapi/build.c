/* The Datagram and TcpSegment objects of a decoded batch, built in C (otus._native._pyapi).
 *
 * DecodedBatch.datagrams() did ~1.1 us of Python work per wanted entry (a struct unpack, two
 * address-cache lookups, a memoryview slice and Datagram.__init__). Here one call walks the
 * interest's index list over the otus_dec_t array the decoder wrote and fills the slots of new
 * otus.Datagram objects directly (their offsets taken from the class once, in setup()); the
 * TcpSegments of stream parsers likewise (tcp_segments() unpacked every wanted entry in Python
 * to keep the TCP ones).
 *
 * Address text comes from a small two-way cache of str objects keyed by the 16 address
 * bytes and the IP version; a miss asks the Python formatter (addresses.address_text).
 * Payloads are memoryview slices of the batch buffer or the reassembly arena, valid while the
 * raw batch is held; a segment's payload is a copy (bytes): the reassembler keeps it past the
 * batch.
 */
#include "pyapi.h"

#include <stdint.h>
#include <string.h>

#include "structmember.h"

#include "../decode.h"

/* The slots both classes have, first and in this order; then each one's own. */
enum { C_TS, C_SRC, C_DST, C_SPORT, C_DPORT, C_N };
enum { F_PROTO = C_N, F_PAYLOAD, F_VLAN, F_IFINDEX, F_N };
static const char *const F_NAMES[F_N] = {"ts_ns",    "src_ip",   "dst_ip",  "src_port", "dst_port",
                                         "protocol", "payload",  "vlan_id", "ifindex"};
enum { S_SEQ = C_N, S_ACK, S_FLAGS, S_PAYLOAD, S_PARSER, S_N };
static const char *const S_NAMES[S_N] = {"ts_ns", "src_ip", "dst_ip",  "src_port", "dst_port",
                                         "seq",   "ack",    "flags",   "payload",  "parser"};

typedef struct {
    PyTypeObject *type;
    Py_ssize_t off[16]; /* the slots' offsets, in *_NAMES order (F_N, S_N <= 16) */
} layout;
static layout d_layout, s_layout; /* otus.Datagram, otus._decode.segments.TcpSegment */
_Static_assert((int)F_N <= 16 && (int)S_N <= 16, "layout.off holds 16 slots");
static PyObject *text_fn;      /* addresses.address_text: (raw16, version) -> str */

#define ADDR_SLOTS 4096u
typedef struct {
    uint8_t raw[16];
    uint8_t version;
    PyObject *text; /* strong reference, NULL when empty */
} addr_slot;
static addr_slot addrs[ADDR_SLOTS];

/* The slot offset of a writable object member `name` of t, or -1. */
static Py_ssize_t slot_offset(PyTypeObject *t, const char *name) {
    PyObject *d = PyObject_GetAttrString((PyObject *)t, name);
    if (d == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY))
            off = m->offset;
    }
    Py_DECREF(d);
    return off;
}

/* Take the slot layout of t (names: n slot names) into l; -1 with an exception if unusable. */
static int take_layout(layout *l, PyObject *type, const char *const *names, int n) {
    if (!PyType_Check(type)) {
        PyErr_SetString(PyExc_TypeError, "setup: a class is needed");
        return -1;
    }
    PyTypeObject *t = (PyTypeObject *)type;
    for (int k = 0; k < n; k++) {
        l->off[k] = slot_offset(t, names[k]);
        if (l->off[k] < 0) {
            PyErr_Format(PyExc_TypeError, "setup: %s has no object slot %s", t->tp_name, names[k]);
            return -1;
        }
    }
    if (t->tp_dictoffset != 0 || t->tp_alloc == NULL) {
        PyErr_Format(PyExc_TypeError, "setup: %s must be a __slots__ class", t->tp_name);
        return -1;
    }
    Py_INCREF(type);
    Py_XSETREF(l->type, t);
    return 0;
}

/* setup(Datagram, TcpSegment, text): the classes' slot layouts and the address formatter. */
PyObject *otus_build_setup(PyObject *self, PyObject *args) {
    PyObject *dtype, *stype, *text;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOO:setup", &dtype, &stype, &text))
        return NULL;
    if (!PyCallable_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "setup: text must be callable");
        return NULL;
    }
    if (take_layout(&d_layout, dtype, F_NAMES, F_N) < 0 ||
        take_layout(&s_layout, stype, S_NAMES, S_N) < 0)
        return NULL;
    Py_INCREF(text);
    Py_XSETREF(text_fn, text);
    Py_RETURN_NONE;
}

/* The first of the two slots an address may occupy (murmur3's 64-bit finaliser). */
static inline uint32_t addr_set(const uint8_t *raw, uint8_t version) {
    uint64_t a, b;
    memcpy(&a, raw, 8);
    memcpy(&b, raw + 8, 8);
    uint64_t h = a ^ (b * 0x9E3779B97F4A7C15ull) ^ version;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 33;
    return (uint32_t)h & (ADDR_SLOTS - 2);
}

static inline int addr_is(const addr_slot *s, const uint8_t *raw, uint8_t version) {
    return s->text != NULL && s->version == version && memcmp(s->raw, raw, 16) == 0;
}

/* The text of an address (new reference): from the cache (two-way: a new address takes the
 * first slot of its set, the one there moves to the second), else the formatter. */
static PyObject *addr_text(const uint8_t *raw, uint8_t version) {
    addr_slot *s = &addrs[addr_set(raw, version)];
    if (addr_is(&s[0], raw, version))
        return Py_NewRef(s[0].text);
    if (addr_is(&s[1], raw, version))
        return Py_NewRef(s[1].text);
    PyObject *out = PyObject_CallFunction(text_fn, "y#i", (const char *)raw, (Py_ssize_t)16,
                                          (int)version);
    if (out == NULL)
        return NULL;
    if (!PyUnicode_CheckExact(out)) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_TypeError, "address text must be a str");
        return NULL;
    }
    Py_XDECREF(s[1].text);
    s[1] = s[0];
    memcpy(s[0].raw, raw, 16);
    s[0].version = version;
    s[0].text = Py_NewRef(out);
    return out;
}

/* Store v (stolen; NULL: fail) in slot k of o; -1 when v is NULL. */
static inline int put(PyObject *o, const layout *l, int k, PyObject *v) {
    if (v == NULL)
        return -1;
    *(PyObject **)((char *)o + l->off[k]) = v;
    return 0;
}

/* The time and the two ends of entry e into the slots both classes share; -1 on error. */
static inline int put_ends(PyObject *o, const layout *l, const otus_dec_t *e) {
    return put(o, l, C_TS, PyLong_FromLongLong(e->ts_ns)) < 0 ||
                   put(o, l, C_SRC, addr_text(e->src_ip, e->ip_version)) < 0 ||
                   put(o, l, C_DST, addr_text(e->dst_ip, e->ip_version)) < 0 ||
                   put(o, l, C_SPORT, PyLong_FromLong(e->src_port)) < 0 ||
                   put(o, l, C_DPORT, PyLong_FromLong(e->dst_port)) < 0
               ? -1
               : 0;
}

/* One Datagram of entry e (new reference), or NULL with an exception set. Each value is
 * stored as it is made: a failure leaves a partly filled object whose dealloc drops it. */
static PyObject *datagram(const otus_dec_t *e, PyObject *data, PyObject *arena) {
    const layout *l = &d_layout;
    PyObject *buf = e->buf && arena != Py_None ? arena : data;
    Py_ssize_t off = (Py_ssize_t)e->payload_offset;
    PyObject *o = l->type->tp_alloc(l->type, 0);
    if (o == NULL)
        return NULL;
    if (put_ends(o, l, e) < 0 || put(o, l, F_PROTO, PyLong_FromLong(e->ip_proto)) < 0 ||
        put(o, l, F_PAYLOAD,
            PySequence_GetSlice(buf, off, off + (Py_ssize_t)e->payload_len)) < 0 ||
        put(o, l, F_VLAN, PyLong_FromLong(e->vlan_outer)) < 0 ||
        put(o, l, F_IFINDEX, PyLong_FromUnsignedLong(e->ifindex)) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

/* One TcpSegment of entry e for stream parser `parser` (new reference), or NULL. */
static PyObject *segment(const otus_dec_t *e, const char *data, Py_ssize_t data_len,
                         const char *arena, Py_ssize_t arena_len, PyObject *parser) {
    const layout *l = &s_layout;
    const char *base = e->buf && arena != NULL ? arena : data;
    Py_ssize_t len = e->buf && arena != NULL ? arena_len : data_len;
    Py_ssize_t off = (Py_ssize_t)e->payload_offset, n = (Py_ssize_t)e->payload_len;
    if (off > len)
        off = len; /* clamped as a slice would be */
    if (n > len - off)
        n = len - off;
    PyObject *o = l->type->tp_alloc(l->type, 0);
    if (o == NULL)
        return NULL;
    if (put_ends(o, l, e) < 0 || put(o, l, S_SEQ, PyLong_FromUnsignedLong(e->tcp_seq)) < 0 ||
        put(o, l, S_ACK, PyLong_FromUnsignedLong(e->tcp_ack)) < 0 ||
        put(o, l, S_FLAGS, PyLong_FromLong(e->tcp_flags)) < 0 ||
        put(o, l, S_PAYLOAD, PyBytes_FromStringAndSize(base + off, n)) < 0 ||
        put(o, l, S_PARSER, Py_NewRef(parser)) < 0) {
        Py_DECREF(o);
        return NULL;
    }
    return o;
}

/* The arguments both builders share: entry array, index list and count (-1: error set). */
static Py_ssize_t entry_args(PyObject *const *args, const otus_dec_t **dec, const int32_t **ix) {
    if (d_layout.type == NULL || s_layout.type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() was not called");
        return -1;
    }
    uintptr_t entries = (uintptr_t)PyLong_AsUnsignedLongLong(args[0]);
    uintptr_t idx = (uintptr_t)PyLong_AsUnsignedLongLong(args[1]);
    Py_ssize_t count = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred())
        return -1;
    if (count < 0 || (count > 0 && (entries == 0 || idx == 0))) {
        PyErr_SetString(PyExc_ValueError, "bad entry array");
        return -1;
    }
    *dec = (const otus_dec_t *)entries;
    *ix = (const int32_t *)idx;
    return count;
}

/* A list of `count` slots to fill (n of them filled in the end: the rest stays allocated). */
static PyObject *finish(PyObject *out, Py_ssize_t n, int failed) {
    Py_SET_SIZE(out, n); /* only the filled items are released */
    if (failed) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* datagrams(entries, idx, count, skip_proto, data, arena) -> list[Datagram]
 *
 * entries: address of the otus_dec_t array; idx: address of the interest's int32 index list
 * (count of them); entries whose ip_proto is skip_proto are left out (TCP for stream parsers);
 * data/arena: memoryviews (format B) of the batch buffer and the reassembly arena (or None).
 */
PyObject *otus_build_datagrams(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "datagrams takes 6 arguments");
        return NULL;
    }
    const otus_dec_t *dec;
    const int32_t *ix;
    Py_ssize_t count = entry_args(args, &dec, &ix);
    long skip = PyLong_AsLong(args[3]);
    if (count < 0 || PyErr_Occurred())
        return NULL;
    PyObject *data = args[4], *arena = args[5];
    if (!PyMemoryView_Check(data) || (arena != Py_None && !PyMemoryView_Check(arena))) {
        PyErr_SetString(PyExc_TypeError, "datagrams: data and arena must be memoryviews");
        return NULL;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    Py_ssize_t n = 0;
    for (Py_ssize_t j = 0; j < count; j++) {
        const otus_dec_t *e = &dec[ix[j]];
        if ((long)e->ip_proto == skip)
            continue;
        PyObject *o = datagram(e, data, arena);
        if (o == NULL)
            return finish(out, n, 1);
        PyList_SET_ITEM(out, n++, o);
    }
    return finish(out, n, 0);
}

/* segments(entries, idx, count, data, arena, parser) -> list[TcpSegment]: the TCP entries of
 * the index list, payloads copied; data/arena as for datagrams(). */
PyObject *otus_build_segments(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "segments takes 6 arguments");
        return NULL;
    }
    const otus_dec_t *dec;
    const int32_t *ix;
    Py_ssize_t count = entry_args(args, &dec, &ix);
    if (count < 0)
        return NULL;
    PyObject *data = args[3], *arena = args[4], *parser = args[5];
    if (!PyMemoryView_Check(data) || (arena != Py_None && !PyMemoryView_Check(arena)) ||
        !PyLong_CheckExact(parser)) {
        PyErr_SetString(PyExc_TypeError, "segments: memoryviews and an int parser index needed");
        return NULL;
    }
    Py_buffer *db = PyMemoryView_GET_BUFFER(data);
    Py_buffer *ab = arena != Py_None ? PyMemoryView_GET_BUFFER(arena) : NULL;
    if (!PyBuffer_IsContiguous(db, 'C') || (ab != NULL && !PyBuffer_IsContiguous(ab, 'C'))) {
        PyErr_SetString(PyExc_TypeError, "segments: contiguous memoryviews needed");
        return NULL;
    }
    PyObject *out = PyList_New(count);
    if (out == NULL)
        return NULL;
    Py_ssize_t n = 0;
    for (Py_ssize_t j = 0; j < count; j++) {
        const otus_dec_t *e = &dec[ix[j]];
        if (e->ip_proto != 6)
            continue;
        PyObject *o = segment(e, db->buf, db->len, ab ? ab->buf : NULL, ab ? ab->len : 0, parser);
        if (o == NULL)
            return finish(out, n, 1);
        PyList_SET_ITEM(out, n++, o);
    }
    return finish(out, n, 0);
}
