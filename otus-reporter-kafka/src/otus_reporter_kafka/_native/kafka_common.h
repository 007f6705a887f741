/* What every file of _kafka_fast includes first: Python.h (with PY_SSIZE_T_CLEAN), the
 * fixed-width integers, and the two macros that keep the module's internals internal.
 *
 * _kafka_fast is one extension module built from several C files (setup.py compiles every
 * *.c of this directory, with -flto so calls between them inline as within one file). A
 * function or table one file gives another is named otus_kafka_* and declared
 * OTUS_KAFKA_HIDDEN in its header: the shared object exports PyInit__kafka_fast and nothing
 * else, whatever the compiler flags. Small helpers used per byte or per record live as static
 * inline functions in the headers.
 */
#ifndef OTUS_KAFKA_COMMON_H
#define OTUS_KAFKA_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define OTUS_KAFKA_HIDDEN __attribute__((visibility("hidden")))
#else
#define OTUS_KAFKA_HIDDEN
#endif

/* A docstring another file's method table refers to (PyDoc_STRVAR, but not static). */
#define OTUS_KAFKA_DOC(name, text) OTUS_KAFKA_HIDDEN const char name[] = PyDoc_STR(text)

#endif
