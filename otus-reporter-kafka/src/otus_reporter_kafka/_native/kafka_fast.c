/* The _kafka_fast module: its method table and init, nothing else. Kafka record bodies and
 * records sections in C (CPython API), byte-identical to the Python path of
 * otus_reporter_kafka._records / _batch; each piece lives in the file named for it:
 *
 *   kafka_body.c/.h      encode_bodies(), encode_sections(): records into record bodies
 *   kafka_fields.c/.h    reading otus.Record fields (slots, or getattr), set_record_type()
 *   kafka_json.c/.h      JSON strings as orjson escapes them; serialised labels parsed
 *   kafka_base64.c/.h    base64 of the raw payload
 *   kafka_section.c/.h   the Section type (written in place, split, reset) and route()
 *   kafka_records_section.c/.h  records_section(), records_section_into(): from Messages
 *   kafka_crc32c.c/.h    CRC-32C (SSE4.2 when the CPU has it)
 *   kafka_batch.c/.h     batch(): the RecordBatch header in front of a section
 *   kafka_wire.h         varints and big-endian integers (static inline)
 *   kafka_common.h       Python.h, OTUS_KAFKA_HIDDEN: the shared object exports only PyInit
 */
#include "kafka_common.h"

#include "kafka_base64.h"
#include "kafka_batch.h"
#include "kafka_body.h"
#include "kafka_crc32c.h"
#include "kafka_fields.h"
#include "kafka_json.h"
#include "kafka_records_section.h"
#include "kafka_section.h"

static PyMethodDef methods[] = {
    {"encode_bodies", (PyCFunction)(void (*)(void))otus_kafka_encode_bodies, METH_FASTCALL,
     otus_kafka_encode_bodies_doc},
    {"encode_sections", (PyCFunction)(void (*)(void))otus_kafka_encode_sections, METH_FASTCALL,
     otus_kafka_encode_sections_doc},
    {"route", (PyCFunction)(void (*)(void))otus_kafka_route, METH_FASTCALL, otus_kafka_route_doc},
    {"records_section", (PyCFunction)(void (*)(void))otus_kafka_records_section, METH_FASTCALL,
     otus_kafka_records_section_doc},
    {"records_section_into", (PyCFunction)(void (*)(void))otus_kafka_records_section_into,
     METH_FASTCALL, otus_kafka_records_section_into_doc},
    {"set_record_type", otus_kafka_set_record_type, METH_O, otus_kafka_set_record_type_doc},
    {"crc32c", otus_kafka_crc32c, METH_O, otus_kafka_crc32c_doc},
    {"batch", (PyCFunction)(void (*)(void))otus_kafka_batch, METH_FASTCALL, otus_kafka_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kafka_fast",
    "Kafka record bodies and records sections in C (optional; the Python path is the reference).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kafka_fast(void) {
    otus_kafka_json_init();
    otus_kafka_b64_init();
    otus_kafka_crc32c_init();
    if (otus_kafka_fields_init() < 0 || otus_kafka_body_init() < 0) return NULL;
    if (PyType_Ready(&otus_kafka_SectionType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObject(m, "Section", Py_NewRef((PyObject *)&otus_kafka_SectionType)) < 0) {
        Py_DECREF(&otus_kafka_SectionType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
