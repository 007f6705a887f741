/* records_section() and records_section_into(): the uncompressed records section of a batch
 * of Messages (records held as Message objects rather than written into a Section, e.g.
 * before their topic had a route); the sender's _batch.PrebuiltBatch calls them.
 */
#ifndef OTUS_KAFKA_RECORDS_SECTION_H
#define OTUS_KAFKA_RECORDS_SECTION_H

#include "kafka_common.h"

extern OTUS_KAFKA_HIDDEN const char otus_kafka_records_section_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_records_section(PyObject *self, PyObject *const *args,
                                                       Py_ssize_t nargs);

extern OTUS_KAFKA_HIDDEN const char otus_kafka_records_section_into_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_records_section_into(PyObject *self,
                                                            PyObject *const *args,
                                                            Py_ssize_t nargs);

#endif
