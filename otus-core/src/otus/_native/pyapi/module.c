/* otus._native._pyapi: the module (see pyapi.h). */
#include "pyapi.h"

static PyMethodDef methods[] = {
    {"setup", otus_build_setup, METH_VARARGS,
     "setup(Datagram, TcpSegment, text): the classes and the address formatter."},
    {"datagrams", (PyCFunction)(void (*)(void))otus_build_datagrams, METH_FASTCALL,
     "datagrams(entries, idx, count, skip_proto, data, arena) -> list of Datagram."},
    {"segments", (PyCFunction)(void (*)(void))otus_build_segments, METH_FASTCALL,
     "segments(entries, idx, count, data, arena, parser) -> list of TcpSegment."},
    {"label_in", (PyCFunction)(void (*)(void))otus_label_in, METH_FASTCALL,
     "label_in(labels_json, key) -> str, None (absent) or NotImplemented (decode them all)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pyapi", "The core's CPython-API helpers (built in C).", -1, methods,
    NULL,                  NULL,     NULL,                                          NULL};

PyMODINIT_FUNC PyInit__pyapi(void) { return PyModule_Create(&module); }
