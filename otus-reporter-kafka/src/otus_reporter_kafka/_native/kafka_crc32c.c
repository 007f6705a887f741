/* CRC-32C of record batches (declared in kafka_crc32c.h): SSE4.2 when the CPU has it, else
 * a table.
 */
#include "kafka_crc32c.h"

static uint32_t crc_table[256];
static int crc_hw = 0;

void otus_kafka_crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[i] = c;
    }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                                size_t n) {
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
    }
    crc = (uint32_t)c;
    for (; n > 0; n--, p++) crc = __builtin_ia32_crc32qi(crc, *p);
    return crc;
}
#endif

/* CRC-32C of the concatenation of the pieces (pre- and post-inverted as Kafka's). */
uint32_t otus_kafka_crc32c_update(uint32_t crc, const unsigned char *p, size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (crc_hw) return crc32c_sse42(crc, p, n);
#endif
    return crc32c_table(crc, p, n);
}

OTUS_KAFKA_DOC(otus_kafka_crc32c_doc,
               "crc32c(data) -> int\n\nCRC-32C (Castagnoli) of a bytes-like object.");

PyObject *otus_kafka_crc32c(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t crc = ~otus_kafka_crc32c_update(0xFFFFFFFFu, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}
