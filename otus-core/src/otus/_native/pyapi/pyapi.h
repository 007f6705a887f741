/* otus._native._pyapi: the core's CPython-API helpers (cffi cannot hand back Python objects).
 *
 * A CPython extension of its own, built by setup.py from this subdirectory (the cffi build
 * compiles only the *.c files one level up). module.c holds the method table. */
#ifndef OTUS_PYAPI_H
#define OTUS_PYAPI_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* build.c: Datagram and TcpSegment objects of a decoded batch. */
PyObject *otus_build_setup(PyObject *self, PyObject *args);
PyObject *otus_build_datagrams(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *otus_build_segments(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* labels.c: one label read from serialised labels (Record.label). */
PyObject *otus_label_in(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

#endif
