/* Reading a record's fields: straight from the __slots__ of otus.Record itself (offsets taken
 * once by set_record_type()), through getattr for anything else (subclasses, look-alikes).
 * field() runs a dozen times per record, so it is static inline here; the slot table and
 * set_record_type() are in kafka_fields.c.
 */
#ifndef OTUS_KAFKA_FIELDS_H
#define OTUS_KAFKA_FIELDS_H

#include "kafka_common.h"

/* -- record fields: slot reads for otus.Record itself, getattr for anything else ----------- */

enum { F_TASK_ID, F_AGENT_ID, F_PIPELINE_ID, F_SRC_IP, F_DST_IP, F_SRC_PORT, F_DST_PORT,
       F_PROTOCOL, F_PAYLOAD_TYPE, F_TS_NS, F_LABELS, F_LABELS_JSON, F_RAW_PAYLOAD, F_PAYLOAD_JSON,
       F_COUNT };

extern OTUS_KAFKA_HIDDEN PyObject *otus_kafka_field_attr[F_COUNT]; /* interned slot names */
extern OTUS_KAFKA_HIDDEN PyTypeObject *otus_kafka_record_type; /* otus.Record, once set */
extern OTUS_KAFKA_HIDDEN Py_ssize_t otus_kafka_field_offset[F_COUNT]; /* its slot offsets */
/* "labels", "serialized_labels", "serialized_payload" (the getattr path) */
extern OTUS_KAFKA_HIDDEN PyObject *otus_kafka_s_labels, *otus_kafka_s_serialized_labels,
    *otus_kafka_s_serialized_payload;

/* Intern the names above (module init): 0, or -1 with an error. */
OTUS_KAFKA_HIDDEN int otus_kafka_fields_init(void);

/* set_record_type(Record): the module function. */
extern OTUS_KAFKA_HIDDEN const char otus_kafka_set_record_type_doc[];
OTUS_KAFKA_HIDDEN PyObject *otus_kafka_set_record_type(PyObject *self, PyObject *cls);

/* A new reference to a record field, or NULL with an error (AttributeError when unset). The
 * getattr path reads ``labels`` for ``_labels`` and calls serialized_labels() for
 * ``_labels_json`` and serialized_payload() for ``_payload_json`` (what the methods return). */
static inline PyObject *field(PyObject *record, int f) {
    if (Py_TYPE(record) == otus_kafka_record_type) {
        PyObject *v = *(PyObject **)((char *)record + otus_kafka_field_offset[f]);
        if (v == NULL) {
            PyErr_SetObject(PyExc_AttributeError, otus_kafka_field_attr[f]);
            return NULL;
        }
        return Py_NewRef(v);
    }
    switch (f) {
    case F_PAYLOAD_JSON: return PyObject_CallMethodNoArgs(record, otus_kafka_s_serialized_payload);
    case F_LABELS_JSON: return PyObject_CallMethodNoArgs(record, otus_kafka_s_serialized_labels);
    case F_LABELS: return PyObject_GetAttr(record, otus_kafka_s_labels);
    default: return PyObject_GetAttr(record, otus_kafka_field_attr[f]);
    }
}

#endif
