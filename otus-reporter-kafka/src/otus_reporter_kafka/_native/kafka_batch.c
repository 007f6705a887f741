/* The RecordBatch header (see kafka_batch.h), written with be_put() and checksummed with
 * otus_kafka_crc32c_update().
 */
#include "kafka_batch.h"

#include "kafka_crc32c.h"
#include "kafka_wire.h"

OTUS_KAFKA_DOC(otus_kafka_batch_doc,
               "batch(records, attributes, count, first_ts, max_ts, producer_id, producer_epoch, "
               "base_sequence) -> bytes\n\n"
               "A whole RecordBatch (v2): the 61-byte header with its CRC-32C, then ``records`` "
               "(the records section, compressed or not).");

PyObject *otus_kafka_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "batch(records: bytes, attributes, count, first_ts, "
                                         "max_ts, producer_id, producer_epoch, base_sequence)");
        return NULL;
    }
    long long v[7];
    for (int i = 0; i < 7; i++) {
        v[i] = PyLong_AsLongLong(args[i + 1]);
        if (v[i] == -1 && PyErr_Occurred()) return NULL;
    }
    long long attributes = v[0], count = v[1], producer_epoch = v[5], base_sequence = v[6];
    if (attributes < -32768 || attributes > 32767 || producer_epoch < -32768
        || producer_epoch > 32767 || count < 1 || count > INT32_MAX || base_sequence < INT32_MIN
        || base_sequence > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "batch(): a header field out of range");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (n > INT32_MAX - 61) {
        PyErr_SetString(PyExc_OverflowError, "batch(): records too large");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, 61 + n);
    if (out == NULL) return NULL;
    char *start = PyBytes_AS_STRING(out), *p = start;
    p = be_put(p, 0, 8);                    /* base offset: the broker assigns it */
    p = be_put(p, (uint64_t)(49 + n), 4);   /* length: the bytes after this field */
    p = be_put(p, (uint64_t)-1, 4);         /* partition leader epoch */
    *p++ = 2;                               /* magic */
    char *crc_at = p;
    p += 4;
    p = be_put(p, (uint64_t)attributes, 2);
    p = be_put(p, (uint64_t)(count - 1), 4); /* last offset delta */
    p = be_put(p, (uint64_t)v[2], 8);        /* first timestamp */
    p = be_put(p, (uint64_t)v[3], 8);        /* max timestamp */
    p = be_put(p, (uint64_t)v[4], 8);        /* producer id */
    p = be_put(p, (uint64_t)producer_epoch, 2);
    p = be_put(p, (uint64_t)base_sequence, 4);
    p = be_put(p, (uint64_t)count, 4);
    memcpy(p, PyBytes_AS_STRING(args[0]), (size_t)n);
    uint32_t crc = ~otus_kafka_crc32c_update(0xFFFFFFFFu, (const unsigned char *)crc_at + 4,
                                  (size_t)(40 + n));
    be_put(crc_at, crc, 4);
    return out;
}
