/* The _sip_fast extension module: its method table and init, and the small string cache the
 * C writers share (sip_json.c, sip_sdp.c).
 *
 * parse_json (sip_json.c) frames a message and writes its payload as JSON; parse_batch
 * (sip_batch.c, sip_dialog.c) does SipParser.parse for a run of datagrams, and media_apply
 * (sip_media.c) the media registry's share of it. Whatever they
 * decline runs through the pure-Python reference (_message.py, _headers.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

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

PyObject *otus_sip_small_str(sv s) {
    return s.n <= SMALL_MAX ? small_lookup(s.p, s.n) : str_of(s);
}

static PyMethodDef methods[] = {
    {"parse_json", (PyCFunction)(void (*)(void))otus_sip_parse_json, METH_FASTCALL,
     "parse_json(data, max_headers, max_line, datagram, parse_sdp) -> (payload_json, labels, "
     "status, trailing, body, content_type, media) | None"},
    {"parse_batch", (PyCFunction)(void (*)(void))otus_sip_parse_batch, METH_FASTCALL,
     "parse_batch(datagrams, start, out, cfg, table) -> (next, pending, counts)"},
    {"media_apply", (PyCFunction)(void (*)(void))otus_sip_media_apply, METH_FASTCALL,
     "media_apply(ops, cfg) -> (registered, evicted)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sip_fast", "SIP message head parser (fast path).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__sip_fast(void) {
    if (otus_sip_json_init() < 0)
        return NULL;
    return PyModule_Create(&module);
}
