/* Records sections from Messages (see kafka_records_section.h): a sizing pass and a writing
 * pass over a snapshot of the list, with the same framing as a Section's.
 */
#include "kafka_records_section.h"

#include "kafka_wire.h"

/* The sizing pass of a records section over a snapshot of messages (a tuple) whose first one
 * has offset delta ``base``: the length of its first *count messages (all of them, or as many
 * as fit in ``limit`` bytes, at least one; *count is set to how many) and their largest
 * timestamp (at least ``first``); -1 with an exception on a message that is not a Message of
 * int timestamp. */
static Py_ssize_t section_size(PyObject *messages, long long first, Py_ssize_t base,
                               Py_ssize_t limit, Py_ssize_t *count, long long *max_ts) {
    Py_ssize_t n = PyTuple_GET_SIZE(messages), total = 0, i = 0;
    *max_ts = first;
    for (; i < n; i++) {
        PyObject *m = PyTuple_GET_ITEM(messages, i);
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 6 || !PyBytes_Check(PyTuple_GET_ITEM(m, 2))
            || !PyLong_Check(PyTuple_GET_ITEM(m, 3))) {
            PyErr_SetString(PyExc_TypeError, "records_section(): not a Message");
            return -1;
        }
        long long stamp = PyLong_AsLongLong(PyTuple_GET_ITEM(m, 3));
        if (stamp == -1 && PyErr_Occurred()) return -1;
        long long delta;
        if (__builtin_sub_overflow(stamp, first, &delta)) {
            PyErr_SetString(PyExc_OverflowError, "records_section(): timestamp delta");
            return -1;
        }
        Py_ssize_t size = 1 + uvarint_len(zigzag(delta)) + uvarint_len(zigzag(base + i))
                          + PyBytes_GET_SIZE(PyTuple_GET_ITEM(m, 2));
        Py_ssize_t framed = uvarint_len(zigzag(size)) + size;
        if (i > 0 && total + framed > limit) break;
        total += framed;
        if (stamp > *max_ts) *max_ts = stamp;
    }
    *count = i;
    return total;
}

/* The writing pass: exactly section_size() bytes from p on, for the first count messages. */
static void section_write(PyObject *messages, long long first, Py_ssize_t base, Py_ssize_t count,
                          char *p) {
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *m = PyTuple_GET_ITEM(messages, i), *body = PyTuple_GET_ITEM(m, 2);
        long long stamp = PyLong_AsLongLong(PyTuple_GET_ITEM(m, 3));
        uint64_t delta = zigzag(stamp - first), offset = zigzag(base + i);
        Py_ssize_t size = 1 + uvarint_len(delta) + uvarint_len(offset) + PyBytes_GET_SIZE(body);
        p = uvarint_put(p, zigzag(size));
        *p++ = 0;
        p = uvarint_put(p, delta);
        p = uvarint_put(p, offset);
        memcpy(p, PyBytes_AS_STRING(body), (size_t)PyBytes_GET_SIZE(body));
        p += PyBytes_GET_SIZE(body);
    }
}

OTUS_KAFKA_DOC(otus_kafka_records_section_doc,
               "records_section(messages, first_ts) -> (bytes, max_ts)\n\n"
               "The uncompressed records of a batch: per message its body with length, attributes "
               "0, timestamp delta and offset delta in front; and the largest timestamp.");

PyObject *otus_kafka_records_section(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "records_section(messages: list, first_ts: int)");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[1]);
    if (first == -1 && PyErr_Occurred()) return NULL;
    /* A snapshot of the list (it holds the messages), and timestamps that are ints (read
     * without calling __index__): no Python code runs between sizing and writing, so both
     * passes see the same messages, bodies and timestamps. */
    PyObject *messages = PyList_AsTuple(args[0]);
    if (messages == NULL) return NULL;
    long long max_ts;
    Py_ssize_t count;
    Py_ssize_t total = section_size(messages, first, 0, PY_SSIZE_T_MAX, &count, &max_ts);
    PyObject *section = total < 0 ? NULL : PyBytes_FromStringAndSize(NULL, total);
    if (section != NULL) section_write(messages, first, 0, count, PyBytes_AS_STRING(section));
    Py_DECREF(messages);
    return section == NULL ? NULL : Py_BuildValue("NL", section, max_ts);
}

OTUS_KAFKA_DOC(otus_kafka_records_section_into_doc,
               "records_section_into(scratch, messages, first_ts, start, limit) -> "
               "(length, max_ts, stop)\n\n"
               "Part of records_section(): the records of messages[start:stop] (offset deltas "
               "from ``start`` on), as many as fit in ``limit`` bytes and at least one, written at "
               "the start of the bytearray ``scratch`` (grown when too small, never shrunk: the "
               "sender reuses it for every part, so a section costs no allocation and stays in "
               "the cache for the compressor); their length and largest timestamp (at least "
               "``first_ts``), and ``stop``. Parts written and compressed one after the other "
               "make the whole section.");

PyObject *otus_kafka_records_section_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyByteArray_CheckExact(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "records_section_into(scratch: bytearray, messages: "
                                         "list, first_ts: int, start: int, limit: int)");
        return NULL;
    }
    long long first = PyLong_AsLongLong(args[2]);
    if (first == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t start = PyLong_AsSsize_t(args[3]);
    if (start == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t limit = PyLong_AsSsize_t(args[4]);
    if (limit == -1 && PyErr_Occurred()) return NULL;
    if (start < 0 || start >= PyList_GET_SIZE(args[1])) {
        PyErr_SetString(PyExc_IndexError, "records_section_into(): start out of range");
        return NULL;
    }
    /* a snapshot of messages[start:], as in records_section() */
    PyObject *messages = PyList_GetSlice(args[1], start, PY_SSIZE_T_MAX);
    if (messages == NULL) return NULL;
    PyObject *snapshot = PyList_AsTuple(messages);
    Py_DECREF(messages);
    if (snapshot == NULL) return NULL;
    long long max_ts;
    Py_ssize_t count;
    Py_ssize_t total = section_size(snapshot, first, start, limit, &count, &max_ts);
    if (total >= 0 && PyByteArray_GET_SIZE(args[0]) < total
        && PyByteArray_Resize(args[0], total) < 0) /* BufferError while exported */
        total = -1;
    if (total >= 0) section_write(snapshot, first, start, count, PyByteArray_AS_STRING(args[0]));
    Py_DECREF(snapshot);
    return total < 0 ? NULL : Py_BuildValue("nLn", total, max_ts, start + count);
}
