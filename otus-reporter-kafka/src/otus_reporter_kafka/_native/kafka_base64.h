/* Base64 (standard alphabet, padded, no newline) of a record's raw payload, the
 * ``raw_payload`` field of its JSON value: what base64.b64encode() gives, twelve bits a table
 * look-up.
 */
#ifndef OTUS_KAFKA_BASE64_H
#define OTUS_KAFKA_BASE64_H

#include "kafka_common.h"

/* Fill the table (module init). */
OTUS_KAFKA_HIDDEN void otus_kafka_b64_init(void);

/* The base64 of the n bytes at s ((n + 2) / 3 * 4 characters) at p; past its end. */
OTUS_KAFKA_HIDDEN char *otus_kafka_b64_put(char *p, const unsigned char *s, Py_ssize_t n);

#endif
