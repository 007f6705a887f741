/* The Section type: one partition's records section, grown in place as report() encodes
 * records into it (kafka_body.c), split when a batch came out too large, reset and pooled for
 * reuse; and the routing of a record to the open section of its partition. All of it is in
 * kafka_section.c.
 */
#ifndef OTUS_KAFKA_SECTION_H
#define OTUS_KAFKA_SECTION_H

#include "kafka_common.h"

/* -- Sections: a partition's records section, written in place as records are reported ---- */

/* One partition's records section (records framed with their length, attributes 0, timestamp
 * delta from the first record and offset delta), grown in place: report() writes each record
 * straight into the open section of its partition, so no per-record body object, Message or
 * copy into a batch exists. Sections are not tracked by the cyclic GC (they refer to a str
 * only), so making one runs no Python code. Exported through the buffer protocol (read-only)
 * for the compressor; while exported, nothing can be appended. */
typedef struct {
    PyObject_HEAD
    char *buf;
    Py_ssize_t len, cap, exports;
    Py_ssize_t count, held;
    long long first_ts, max_ts;
    PyObject *topic;
    Py_ssize_t partition;
} SectionObject;

extern OTUS_KAFKA_HIDDEN PyTypeObject otus_kafka_SectionType;

/* Append the framing of the next record (``framed`` from otus_kafka_section_route()) and
 * account for it; where its body of ``body_len`` bytes goes, or NULL with an error. */
OTUS_KAFKA_HIDDEN char *otus_kafka_section_put(SectionObject *s, long long ts_ms,
                                               Py_ssize_t body_len, Py_ssize_t framed,
                                               Py_ssize_t held, Py_ssize_t hint);

/* Where report() puts records: ``routes`` maps a topic to the list of its partitions' open
 * sections (index = key hash % length); a section that has no room for the next record
 * (``limit`` bytes, at least one record) is appended to ``sealed`` and replaced by one from
 * ``pool`` (reset) or a new one. No Python code runs here. */
typedef struct {
    PyObject *routes, *sealed, *pool;
    Py_ssize_t limit;
} route_t;

/* The open section for a record of ``topic``/``hashed`` with room for ``body_len`` bytes at
 * ``ts_ms`` (its framed size in *framed): NULL with no error when the topic has no route;
 * NULL with an error on failure. Borrowed. */
OTUS_KAFKA_HIDDEN SectionObject *otus_kafka_section_route(const route_t *r, PyObject *topic,
                                                          PyObject *hashed, long long ts_ms,
                                                          Py_ssize_t body_len, Py_ssize_t *framed);

/* route(...): the module function (a ready body into its partition's section). */
extern OTUS_KAFKA_HIDDEN const char otus_kafka_route_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_route(PyObject *self, PyObject *const *args,
                                             Py_ssize_t nargs);

#endif
