/* encode_bodies() and encode_sections(): a run of otus.Record objects into Kafka record bodies
 * (key, JSON value, headers), as Messages or written straight into the open Section of each
 * record's partition. The place for another serialisation of the value.
 */
#ifndef OTUS_KAFKA_BODY_H
#define OTUS_KAFKA_BODY_H

#include "kafka_common.h"

/* Intern the names the encoder looks up (module init): 0, or -1 with an error. */
OTUS_KAFKA_HIDDEN int otus_kafka_body_init(void);

extern OTUS_KAFKA_HIDDEN const char otus_kafka_encode_bodies_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_encode_bodies(PyObject *self, PyObject *const *args,
                                                     Py_ssize_t nargs);

extern OTUS_KAFKA_HIDDEN const char otus_kafka_encode_sections_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_encode_sections(PyObject *self, PyObject *const *args,
                                                       Py_ssize_t nargs);

#endif
