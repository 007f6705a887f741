/* The _sip_fast extension module: its method table and init, and the small string cache the
 * C writers share (sip_json.c, sip_sdp.c).
 *
 * parse_json (sip_json.c) frames a message and writes its payload as JSON; parse_batch
 * (sip_batch.c, sip_dialog.c) does SipParser.parse for a run of datagrams, and MediaTable
 * (sip_media.c) is the media registry. Whatever they
 * decline runs through the pure-Python reference (_message.py, _headers.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "sip_dialog.h"
#include "sip_sv.h"

/* A str from ASCII bytes (the writers decline anything else). */
static PyObject *str_of(sv s) {
    PyObject *u = PyUnicode_New(s.n, 127);
    if (u != NULL && s.n > 0)
        memcpy(PyUnicode_DATA(u), s.p, (size_t)s.n);
    return u;
}

/* A direct-mapped cache of short strings (hosts, users, methods, parameter names and values,
 * URIs): a message shares most of them with the messages before it (same call, same peers), and
 * a shared str costs no allocation and keeps its hash (parameter names are dict keys). */
#define SMALL_MAX 48
#define SMALL_SLOTS 1024
static PyObject *small_cache[SMALL_SLOTS];

static PyObject *small_lookup(const char *p, Py_ssize_t n) {
    /* The slot index only needs to spread. */
    uint64_t h = sv_hash_words(p, (size_t)n, 0x9E3779B97F4A7C15ull ^ (uint64_t)n);
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

PyObject *otus_sip_small_str(sv s) {
    return s.n <= SMALL_MAX ? small_lookup(s.p, s.n) : str_of(s);
}

/* Recycled bytes objects for the records' raw message, payload JSON and labels JSON (~0.5,
 * ~1.5 and ~0.5 KB: past pymalloc's 512 bytes, so each was a glibc malloc and free, and with a
 * batch of 1,024 records freed at once those take its slow path, sorting the unsorted bin and
 * merging neighbours). A ring per kind holds a reference to each object it made, in the order
 * made. For a new one it looks at the object made POOL_NEAR before, then at the one made
 * POOL_SLOTS before (the same place): when that one's record is gone (the ring's reference is
 * the only one), it is written again and handed out, and sits in the newest place, instead of
 * a new one. Nothing else can see it then: a bytes object is only mutated here while no one
 * else refers to it. The near one first because it was touched more recently (a batch of
 * 1,024 ago: still in the caches; one 4,096 objects old is ~15% slower than new memory); the
 * far one when records live longer than POOL_NEAR objects (a consumer holding a few
 * batches). Its size may be below what was allocated for it (capacity in steps of 256 bytes,
 * so it fits the next message of its kind; one more than twice too large is replaced, so the
 * capacities follow the sizes of the traffic instead of ratcheting up to its largest); the
 * allocator frees by address, not size. At most POOL_SLOTS objects of POOL_MIN to POOL_MAX
 * bytes per kind stay alive between runs, about POOL_NEAR when the records are let go within
 * that many (~0.5-1.5 MB per kind on the bench's mix); bytes_pool_clear() lets them go. */
#define POOL_SLOTS 4096
#define POOL_NEAR 1024
#define POOL_MIN 256
#define POOL_MAX 4096
typedef struct {
    PyObject *obj;
    Py_ssize_t cap;
} pool_slot;
typedef struct {
    pool_slot s[POOL_SLOTS];
    unsigned next;
} bytes_ring;
static bytes_ring pools[OTUS_SIP_BYTES_KINDS];

static inline int reusable(const pool_slot *e, Py_ssize_t n) {
    return e->obj != NULL && Py_REFCNT(e->obj) == 1 && e->cap >= n && e->cap <= 2 * n + 256;
}

PyObject *otus_sip_bytes(int kind, const char *p, Py_ssize_t n) {
#ifndef Py_GIL_DISABLED
    if (n >= POOL_MIN && n <= POOL_MAX) {
        bytes_ring *r = &pools[kind];
        unsigned k = r->next++ & (POOL_SLOTS - 1);
        pool_slot *near = &r->s[(k - POOL_NEAR) & (POOL_SLOTS - 1)], *here = &r->s[k];
        PyObject *o;
        Py_ssize_t cap;
        if (reusable(near, n)) { /* made POOL_NEAR ago: moves here */
            o = near->obj;
            cap = near->cap;
            near->obj = NULL;
            Py_XSETREF(here->obj, o);
        } else if (reusable(here, n)) { /* made POOL_SLOTS ago (records kept longer) */
            o = here->obj;
            cap = here->cap;
        } else {
            cap = (n | 255) + 1; /* room for the NUL too */
            if ((o = PyBytes_FromStringAndSize(NULL, cap)) == NULL)
                return NULL;
            Py_XSETREF(here->obj, o);
        }
        here->cap = cap;
        Py_SET_SIZE(o, n);
        _Py_COMP_DIAG_PUSH
        _Py_COMP_DIAG_IGNORE_DEPR_DECLS
        ((PyBytesObject *)o)->ob_shash = -1;
        _Py_COMP_DIAG_POP
        memcpy(PyBytes_AS_STRING(o), p, (size_t)n);
        PyBytes_AS_STRING(o)[n] = '\0';
        return Py_NewRef(o);
    }
#else
    (void)kind;
#endif
    return PyBytes_FromStringAndSize(p, n);
}

/* _sip_fast.bytes_pool_clear(): drops the rings' references (their objects whose records
 * are gone are freed); the tests measure memory around it. */
static PyObject *bytes_pool_clear(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    for (int kind = 0; kind < OTUS_SIP_BYTES_KINDS; kind++)
        for (int k = 0; k < POOL_SLOTS; k++)
            Py_CLEAR(pools[kind].s[k].obj);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"bytes_pool_clear", bytes_pool_clear, METH_NOARGS,
     "bytes_pool_clear() -> None: frees the recycled record bytes not in use"},
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

PyMODINIT_FUNC PyInit__sip_fast(void) {
    if (otus_sip_json_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (otus_sip_mreg_ready(m) < 0 || otus_sip_dialog_ready(m) < 0))
        Py_CLEAR(m);
    return m;
}
