/* batch(): a whole RecordBatch (v2), its 61-byte header with the CRC-32C in front of a records
 * section (compressed or not). The place for another header field or batch format.
 */
#ifndef OTUS_KAFKA_BATCH_H
#define OTUS_KAFKA_BATCH_H

#include "kafka_common.h"

extern OTUS_KAFKA_HIDDEN const char otus_kafka_batch_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_batch(PyObject *self, PyObject *const *args,
                                             Py_ssize_t nargs);

#endif
