/* The slot table of otus.Record that field() (kafka_fields.h) reads records through, and
 * set_record_type() that fills it.
 */
#include "kafka_fields.h"

#include <structmember.h>

/* Slot names of otus.Record; the getattr path reads ``labels`` for ``_labels`` and calls
 * serialized_labels() / serialized_payload() for the other two private ones. */
static const char *const field_names[F_COUNT] = {
    "task_id", "agent_id", "pipeline_id", "src_ip", "dst_ip", "src_port", "dst_port",
    "protocol", "payload_type", "ts_ns", "_labels", "_labels_json", "raw_payload",
    "_payload_json"};
PyObject *otus_kafka_field_attr[F_COUNT]; /* interned slot names */
PyObject *otus_kafka_s_labels, *otus_kafka_s_serialized_labels, *otus_kafka_s_serialized_payload;
PyTypeObject *otus_kafka_record_type = NULL; /* otus.Record, once set_record_type() was called */
Py_ssize_t otus_kafka_field_offset[F_COUNT]; /* its __slots__ member offsets */

int otus_kafka_fields_init(void) {
#define INTERN(var, text)                                                                      \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return -1
    INTERN(otus_kafka_s_serialized_payload, "serialized_payload");
    INTERN(otus_kafka_s_serialized_labels, "serialized_labels");
    INTERN(otus_kafka_s_labels, "labels");
#undef INTERN
    for (int f = 0; f < F_COUNT; f++)
        if ((otus_kafka_field_attr[f] = PyUnicode_InternFromString(field_names[f])) == NULL)
            return -1;
    return 0;
}

OTUS_KAFKA_DOC(otus_kafka_set_record_type_doc,
               "set_record_type(Record)\n\n"
               "Read the fields of exactly this class (otus.Record) from its __slots__ directly; "
               "other objects (subclasses too) go through getattr.");

PyObject *otus_kafka_set_record_type(PyObject *self, PyObject *cls) {
    (void)self;
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "set_record_type(): not a class");
        return NULL;
    }
    Py_ssize_t offsets[F_COUNT];
    for (int f = 0; f < F_COUNT; f++) {
        PyObject *d = PyDict_GetItemWithError(((PyTypeObject *)cls)->tp_dict,
                                              otus_kafka_field_attr[f]);
        if (d == NULL || Py_TYPE(d) != &PyMemberDescr_Type
            || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "set_record_type(): %R is not a slot",
                             otus_kafka_field_attr[f]);
            return NULL;
        }
        offsets[f] = ((PyMemberDescrObject *)d)->d_member->offset;
    }
    memcpy(otus_kafka_field_offset, offsets, sizeof(offsets));
    Py_INCREF(cls);
    Py_XSETREF(otus_kafka_record_type, (PyTypeObject *)cls);
    Py_RETURN_NONE;
}
