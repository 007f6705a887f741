/* CRC-32C (Castagnoli), the checksum of a RecordBatch: SSE4.2's crc32 instruction when the CPU
 * has it (checked once at module init), else a table.
 */
#ifndef OTUS_KAFKA_CRC32C_H
#define OTUS_KAFKA_CRC32C_H

#include "kafka_common.h"

/* Fill the table and look for SSE4.2 (module init). */
OTUS_KAFKA_HIDDEN void otus_kafka_crc32c_init(void);

/* CRC-32C of the concatenation of the pieces (pre- and post-inverted as Kafka's). */
OTUS_KAFKA_HIDDEN uint32_t otus_kafka_crc32c_update(uint32_t crc, const unsigned char *p,
                                                    size_t n);

/* crc32c(data): the module function. */
extern OTUS_KAFKA_HIDDEN const char otus_kafka_crc32c_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_crc32c(PyObject *self, PyObject *arg);

#endif
