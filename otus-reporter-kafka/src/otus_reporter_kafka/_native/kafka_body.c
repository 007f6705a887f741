/* Record bodies in C, byte-identical to the Python path of otus_reporter_kafka._records.
 *
 * encode_bodies() turns a run of otus.Record objects into Messages (topic, key hash, body,
 * timestamp ms, held size, record) reading the records' str/dict/bytes fields directly
 * (kafka_fields.h): flow look-up, JSON value (labels escaped as orjson escapes them, or the
 * parser's serialised labels spliced: kafka_json.c; base64 of the raw payload:
 * kafka_base64.c; the parser's serialised payload spliced), key, headers with their varints
 * (from serialised labels: parsed, strictly, without Python objects). encode_sections() writes
 * each body straight into the open Section of its partition instead (kafka_section.c).
 * A record it does not handle plainly (a field of an unusual type, an oversized body, text that
 * is not valid UTF-8, a payload orjson refuses, serialised labels that are not a compact JSON
 * object of strings) stops the run: the caller encodes that one in Python, with the Python
 * path's errors and counters, and calls again from the next record.
 */
#include "kafka_body.h"

#include "kafka_base64.h"
#include "kafka_fields.h"
#include "kafka_json.h"
#include "kafka_section.h"
#include "kafka_wire.h"

static PyObject *s_payload; /* "payload" */

int otus_kafka_body_init(void) {
    s_payload = PyUnicode_InternFromString("payload");
    return s_payload == NULL ? -1 : 0;
}

/* Decimal text of v (what "%lld" prints) into out (at least 21 bytes); its length. */
static Py_ssize_t decimal(char *out, long long v) {
    char tmp[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    Py_ssize_t len = 0;
    if (v < 0) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    return len;
}

static const char TS_HEADER[] = "\x12timestamp"; /* varint(9) + name */
static const char RAW_LEN[] = ",\"raw_payload_len\":";
static const char RAW[] = ",\"raw_payload\":\"";
static const char PAYLOAD[] = "\",\"payload\":";
#define CLEN(s) ((Py_ssize_t)(sizeof(s) - 1))

/* -- prefetching the records ahead ---------------------------------------------------------- */

/* A prefetch the compiler keeps: GCC 12 at -O3 with -DNDEBUG (as setuptools compiles) drops
 * __builtin_prefetch in loops like this one, not an asm statement. A no-op under
 * AddressSanitizer (a prefetched line may lie just past a small object). */
#if defined(__SANITIZE_ADDRESS__)
#define PREFETCH(a) ((void)(a))
#elif defined(__GNUC__) && defined(__SSE__) /* prefetcht0 is an SSE instruction */
#define PREFETCH(a) __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)(a)))
#elif defined(__GNUC__) || defined(__clang__)
#define PREFETCH(a) __builtin_prefetch(a)
#else
#define PREFETCH(a) ((void)(a))
#endif

static inline void prefetch_bytes(PyObject *b, Py_ssize_t most) {
    if (b == NULL || !PyBytes_CheckExact(b)) return;
    const char *p = PyBytes_AS_STRING(b);
    Py_ssize_t n = PyBytes_GET_SIZE(b);
    for (Py_ssize_t k = 0; k < n && k < most; k += 64) PREFETCH(p + k);
}

/* Records reported a batch at a time were made a while ago (by the parser, before the
 * queue): cold in the caches, each with dependent misses (the record, its bytes objects,
 * their contents). So at record i: the record three ahead (its slots), the bytes objects of
 * the one two ahead, and the contents of the next one (payload and labels JSON, raw
 * payload; up to 2 KB each). Only exact otus.Record objects are followed, their pointers read
 * while no Python code runs; prefetches never fault. */
static inline void prefetch_ahead(PyObject *records, Py_ssize_t i) {
    Py_ssize_t n = PyList_GET_SIZE(records);
    if (otus_kafka_record_type == NULL) return;
    if (i + 3 < n) {
        PyObject *r = PyList_GET_ITEM(records, i + 3);
        PREFETCH(r);
        PREFETCH((char *)r + otus_kafka_field_offset[F_RAW_PAYLOAD]);
        PREFETCH((char *)r + otus_kafka_field_offset[F_PAYLOAD_JSON]);
    }
    if (i + 2 < n && Py_IS_TYPE(PyList_GET_ITEM(records, i + 2), otus_kafka_record_type)) {
        char *r = (char *)PyList_GET_ITEM(records, i + 2);
        static const int fs[] = {F_PAYLOAD_JSON, F_LABELS_JSON, F_RAW_PAYLOAD, F_SRC_IP, F_DST_IP};
        for (size_t k = 0; k < sizeof(fs) / sizeof(fs[0]); k++) {
            PyObject *v = *(PyObject **)(r + otus_kafka_field_offset[fs[k]]);
            if (v != NULL) PREFETCH(v);
        }
    }
    if (i + 1 < n && Py_IS_TYPE(PyList_GET_ITEM(records, i + 1), otus_kafka_record_type)) {
        char *r = (char *)PyList_GET_ITEM(records, i + 1);
        prefetch_bytes(*(PyObject **)(r + otus_kafka_field_offset[F_PAYLOAD_JSON]), 2048);
        prefetch_bytes(*(PyObject **)(r + otus_kafka_field_offset[F_LABELS_JSON]), 2048);
        prefetch_bytes(*(PyObject **)(r + otus_kafka_field_offset[F_RAW_PAYLOAD]), 2048);
    }
}

/* The flow key tuple of a record (what BodyEncoder._key builds), or NULL with an error. */
static PyObject *flow_key(PyObject *record) {
    PyObject *key = PyTuple_New(9);
    if (key == NULL) return NULL;
    for (int i = 0; i < 9; i++) {
        PyObject *v = field(record, i); /* F_TASK_ID … F_PAYLOAD_TYPE */
        if (v == NULL) {
            Py_DECREF(key);
            return NULL;
        }
        PyTuple_SET_ITEM(key, i, v);
    }
    return key;
}

typedef struct {
    PyObject *flows, *new_flow, *dumps, *topic, *topics, *prefix, *message_type;
    int keep;
    Py_ssize_t max_size, framing;
    const route_t *route; /* sections: records go there, not into Messages */
} ctx_t;

/* What the buffer still takes (sections): records and held bytes. */
typedef struct {
    Py_ssize_t records, bytes;
} budget_t;

/* One record as a Message appended to ``out``, or (with ``c->route``, when its topic has a
 * route) written into the open section of its partition: 1 a Message, 3 written into a
 * section, 2 refused (no room in ``budget``), 0 left for the Python path (no error set), -1 a
 * real error (set). ``*size`` gets the held size. */
static int encode_one(const ctx_t *c, PyObject *record, PyObject *out, budget_t *budget,
                      Py_ssize_t *size) {
    int result = 0;
    PyObject *key = NULL, *flow = NULL, *labels = NULL, *raw = NULL, *payload = NULL;
    PyObject *ts_obj = NULL, *body = NULL, *topic = NULL, *stamp_obj = NULL, *message = NULL;

    key = flow_key(record);
    if (key == NULL) goto reject;
    flow = PyDict_GetItemWithError(c->flows, key);
    if (flow != NULL) {
        Py_INCREF(flow);
    } else {
        if (PyErr_Occurred()) goto reject;
        flow = PyObject_CallOneArg(c->new_flow, record);
        if (flow == NULL) goto reject;
    }
    if (!PyTuple_CheckExact(flow) || PyTuple_GET_SIZE(flow) != 5) goto reject;
    PyObject *f_key = PyTuple_GET_ITEM(flow, 0), *f_headers = PyTuple_GET_ITEM(flow, 1),
             *f_hash = PyTuple_GET_ITEM(flow, 2), *f_head = PyTuple_GET_ITEM(flow, 3),
             *f_middle = PyTuple_GET_ITEM(flow, 4);
    if (!PyBytes_CheckExact(f_key) || !PyBytes_CheckExact(f_headers) || !PyLong_CheckExact(f_hash)
        || !PyBytes_CheckExact(f_head) || !PyBytes_CheckExact(f_middle))
        goto reject;

    /* topic: the fixed one, or prefix + payload type (cached) */
    if (c->topic != Py_None) {
        topic = Py_NewRef(c->topic);
    } else {
        PyObject *ptype = PyTuple_GET_ITEM(key, 8);
        if (!PyUnicode_CheckExact(ptype)) goto reject;
        topic = PyDict_GetItemWithError(c->topics, ptype);
        if (topic != NULL) {
            Py_INCREF(topic);
        } else {
            if (PyErr_Occurred()) goto reject;
            topic = PyUnicode_Concat(c->prefix, ptype);
            if (topic == NULL || PyDict_SetItem(c->topics, ptype, topic) < 0) {
                result = -1;
                goto done;
            }
        }
    }
    /* timestamp: ts_ns // 1_000_000 (floor) */
    ts_obj = field(record, F_TS_NS);
    if (ts_obj == NULL || !PyLong_CheckExact(ts_obj)) goto reject;
    int overflow = 0;
    long long ts_ns = PyLong_AsLongLongAndOverflow(ts_obj, &overflow);
    if (overflow || (ts_ns == -1 && PyErr_Occurred())) goto reject;
    long long ts_ms = ts_ns / 1000000;
    if (ts_ns % 1000000 != 0 && ts_ns < 0) ts_ms -= 1;
    char stamp[24];
    Py_ssize_t stamp_len = decimal(stamp, ts_ms);

    /* raw payload and the serialised payload: before the labels, since reading them may run
     * Python code (a subclass's property, serialized_payload(), dumps, a finalizer) that
     * changes the labels dict and frees the strings whose UTF-8 the labels scratch points
     * into. From the labels on, nothing here runs Python code until the body is written. */
    raw = field(record, F_RAW_PAYLOAD);
    if (raw == NULL || !PyBytes_CheckExact(raw)) goto reject;
    Py_ssize_t raw_len = PyBytes_GET_SIZE(raw);
    payload = field(record, F_PAYLOAD_JSON);
    if (payload == NULL) goto reject;
    if (payload == Py_None) {
        Py_DECREF(payload);
        PyObject *p = PyObject_GetAttr(record, s_payload);
        if (p == NULL) goto reject_no_payload;
        payload = PyObject_CallOneArg(c->dumps, p);
        Py_DECREF(p);
        if (payload == NULL) goto reject_no_payload;
    }
    if (!PyBytes_CheckExact(payload)) goto reject;
    /* labels: the parser's serialised ones (spliced into the value, parsed here for the
     * headers: pointers into those bytes, which we hold, and into the scratch), else the dict
     * (borrowed UTF-8 pointers: valid while no Python code runs). Serialised labels of a
     * subclass come from its serialized_labels(), which runs Python code: before the dict. */
    labels = field(record, F_LABELS_JSON);
    if (labels == NULL) goto reject;
    int spliced = labels != Py_None;
    Py_ssize_t nl = 0, labels_json = 2, label_headers = 0;
    if (spliced) {
        if (!PyBytes_CheckExact(labels)) goto reject;
        nl = otus_kafka_labels_parse((const unsigned char *)PyBytes_AS_STRING(labels),
                          PyBytes_GET_SIZE(labels), &label_headers);
        if (nl == -2) {
            result = -1;
            goto done;
        }
        if (nl < 0) goto reject;
        labels_json = PyBytes_GET_SIZE(labels);
    } else {
        Py_DECREF(labels);
        labels = field(record, F_LABELS);
        if (labels == NULL) goto reject;
        /* otus.Record's ``_labels`` is None for no labels; a ``labels`` property must be a dict */
        if (labels == Py_None && Py_TYPE(record) == otus_kafka_record_type) {
            Py_SETREF(labels, PyDict_New());
            if (labels == NULL) {
                result = -1;
                goto done;
            }
        }
        if (!PyDict_CheckExact(labels)) goto reject;
        nl = PyDict_GET_SIZE(labels);
        if (otus_kafka_labels_reserve(nl) < 0) {
            result = -1;
            goto done;
        }
        labels_json = 2 + (nl > 0 ? nl - 1 : 0);
        Py_ssize_t pos = 0, i = 0;
        PyObject *k, *v;
        while (PyDict_Next(labels, &pos, &k, &v)) {
            if (!PyUnicode_CheckExact(k) || !PyUnicode_CheckExact(v) || i >= nl) goto reject;
            label_t *l = &otus_kafka_labels[i++];
            l->name = (const unsigned char *)PyUnicode_AsUTF8AndSize(k, &l->name_len);
            if (l->name == NULL) goto reject;
            l->value = (const unsigned char *)PyUnicode_AsUTF8AndSize(v, &l->value_len);
            if (l->value == NULL) goto reject;
            l->name_json = json_str_len(l->name, l->name_len);
            l->value_json = json_str_len(l->value, l->value_len);
            labels_json += l->name_json + 1 + l->value_json;
            label_headers += len_varint_len(l->name_len + 2) + 2 + l->name_len
                             + len_varint_len(l->value_len) + l->value_len;
        }
        if (i != nl) goto reject;
    }

    char raw_len_txt[24];
    Py_ssize_t raw_len_len = decimal(raw_len_txt, raw_len);

    Py_ssize_t value_len = PyBytes_GET_SIZE(f_head) + stamp_len + PyBytes_GET_SIZE(f_middle)
                           + labels_json + CLEN(RAW_LEN) + raw_len_len + CLEN(RAW)
                           + (raw_len + 2) / 3 * 4 + CLEN(PAYLOAD) + PyBytes_GET_SIZE(payload) + 1;
    Py_ssize_t body_len = PyBytes_GET_SIZE(f_key) + len_varint_len(value_len) + value_len
                          + len_varint_len(8 + nl) + PyBytes_GET_SIZE(f_headers) + CLEN(TS_HEADER)
                          + len_varint_len(stamp_len) + stamp_len + label_headers;
    if (body_len + c->framing > c->max_size) goto reject; /* oversized: Python truncates */

    Py_ssize_t held = body_len + c->framing;
    char *p = NULL;
    SectionObject *sec = NULL;
    if (c->route != NULL) {
        if (budget->records < 1 || budget->bytes < held) {
            result = 2;
            goto done;
        }
        Py_ssize_t framed = 0;
        sec = otus_kafka_section_route(c->route, topic, f_hash, ts_ms, body_len, &framed);
        if (sec == NULL && PyErr_Occurred()) {
            result = -1;
            goto done;
        }
        if (sec != NULL) { /* else no route yet: a Message */
            p = framed ? otus_kafka_section_put(sec, ts_ms, body_len, framed, held,
                                                c->route->limit + 65536)
                       : NULL;
            if (p == NULL) {
                if (PyErr_Occurred()) {
                    result = -1;
                    goto done;
                }
                goto reject; /* a timestamp 2**63 ms from the section's first: Python */
            }
        }
    }
    if (sec == NULL) {
        body = PyBytes_FromStringAndSize(NULL, body_len);
        if (body == NULL) {
            result = -1;
            goto done;
        }
        p = PyBytes_AS_STRING(body);
    }
    char *const body_start = p;
#define PUT(src, n)                                                                            \
    do {                                                                                       \
        memcpy(p, (src), (size_t)(n));                                                         \
        p += (n);                                                                              \
    } while (0)
#define PUT_BYTES(obj) PUT(PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
    PUT_BYTES(f_key);
    p = len_varint_put(p, value_len);
    PUT_BYTES(f_head);
    PUT(stamp, stamp_len);
    PUT_BYTES(f_middle);
    if (spliced) {
        PUT_BYTES(labels);
    } else {
        *p++ = '{';
        for (Py_ssize_t i = 0; i < nl; i++) {
            if (i) *p++ = ',';
            p = json_str_put_known(p, otus_kafka_labels[i].name, otus_kafka_labels[i].name_len,
                                   otus_kafka_labels[i].name_json);
            *p++ = ':';
            p = json_str_put_known(p, otus_kafka_labels[i].value, otus_kafka_labels[i].value_len,
                                   otus_kafka_labels[i].value_json);
        }
        *p++ = '}';
    }
    PUT(RAW_LEN, CLEN(RAW_LEN));
    PUT(raw_len_txt, raw_len_len);
    PUT(RAW, CLEN(RAW));
    p = otus_kafka_b64_put(p, (const unsigned char *)PyBytes_AS_STRING(raw), raw_len);
    PUT(PAYLOAD, CLEN(PAYLOAD));
    PUT_BYTES(payload);
    *p++ = '}';
    p = len_varint_put(p, 8 + nl);
    PUT_BYTES(f_headers);
    PUT(TS_HEADER, CLEN(TS_HEADER));
    p = len_varint_put(p, stamp_len);
    PUT(stamp, stamp_len);
    for (Py_ssize_t i = 0; i < nl; i++) {
        const label_t *l = &otus_kafka_labels[i];
        p = len_varint_put(p, l->name_len + 2);
        *p++ = 'l';
        *p++ = '.';
        PUT(l->name, l->name_len);
        p = len_varint_put(p, l->value_len);
        PUT(l->value, l->value_len);
    }
#undef PUT_BYTES
#undef PUT
    if (p != body_start + body_len) {
        PyErr_SetString(PyExc_SystemError, "kafka_fast: body length mismatch");
        result = -1;
        goto done;
    }
    if (sec != NULL) {
        budget->records -= 1;
        budget->bytes -= held;
        *size = held;
        result = 3;
        goto done;
    }

    stamp_obj = PyLong_FromLongLong(ts_ms);
    if (stamp_obj == NULL) {
        result = -1;
        goto done;
    }
    PyObject *size_obj = PyLong_FromSsize_t(held);
    if (size_obj == NULL) {
        result = -1;
        goto done;
    }
    message = ((PyTypeObject *)c->message_type)->tp_alloc((PyTypeObject *)c->message_type, 6);
    if (message == NULL) {
        Py_DECREF(size_obj);
        result = -1;
        goto done;
    }
    PyTuple_SET_ITEM(message, 0, topic);
    topic = NULL;
    PyTuple_SET_ITEM(message, 1, Py_NewRef(f_hash));
    PyTuple_SET_ITEM(message, 2, body);
    body = NULL;
    PyTuple_SET_ITEM(message, 3, stamp_obj);
    stamp_obj = NULL;
    PyTuple_SET_ITEM(message, 4, size_obj);
    PyTuple_SET_ITEM(message, 5, Py_NewRef(c->keep ? record : Py_None));
    /* Without the record, a Message holds only str, int and bytes: no cycle can go through
     * it, so the collector need not scan it (CPython untracks such tuples itself, but not
     * instances of a tuple subclass: 200,000 queued Messages were rescanned by every older-
     * generation collection). */
    if (!c->keep)
        PyObject_GC_UnTrack(message);
    if (PyList_Append(out, message) < 0) {
        result = -1;
        goto done;
    }
    *size = held;
    result = 1;
    goto done;

reject_no_payload:
    payload = NULL;
reject:
    PyErr_Clear();
    result = 0;
done:
    Py_XDECREF(key);
    Py_XDECREF(flow);
    Py_XDECREF(labels);
    Py_XDECREF(raw);
    Py_XDECREF(payload);
    Py_XDECREF(ts_obj);
    Py_XDECREF(body);
    Py_XDECREF(topic);
    Py_XDECREF(stamp_obj);
    Py_XDECREF(message);
    return result;
}

/* What a run of encode_one() did: held bytes and count written into sections, records
 * refused for want of room, held bytes of the Messages. */
typedef struct {
    Py_ssize_t held, count, refused, message_held;
} tally_t;

/* encode_one() over records[start:] until a record the Python path must take: its index
 * (len(records) when none), or -1 with an error. The length is read again each time: a
 * record's property may shrink the list. */
static Py_ssize_t encode_loop(const ctx_t *c, PyObject *records, Py_ssize_t start,
                              PyObject *out, budget_t *budget, tally_t *t) {
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < PyList_GET_SIZE(records); i++) {
        Py_ssize_t size = 0;
        PyObject *record = PyList_GET_ITEM(records, i);
        prefetch_ahead(records, i);
        Py_INCREF(record);
        int r = encode_one(c, record, out, budget, &size);
        Py_DECREF(record);
        if (r < 0) return -1;
        if (r == 0) break;
        if (r == 2) {
            t->refused++;
        } else if (r == 1) {
            t->message_held += size;
        } else {
            t->held += size;
            t->count++;
        }
    }
    return i;
}

/* The arguments encode_bodies() and encode_sections() share: records, start, out, flows,
 * new_flow, dumps, topic, topics, prefix (0-8), max_size and framing (at ms and ms + 1) and
 * message_type (at mt), checked and taken into *c (keep 0, no route). 0, or -1 with an
 * exception (a TypeError named after fn). */
static int shared_args(const char *fn, PyObject *const *args, Py_ssize_t ms, Py_ssize_t mt,
                       ctx_t *c, Py_ssize_t *start) {
    *start = PyLong_AsSsize_t(args[1]);
    if (*start == -1 && PyErr_Occurred()) return -1;
    if (!PyList_Check(args[0]) || !PyList_Check(args[2]) || !PyDict_Check(args[3])
        || !PyDict_Check(args[7]) || !PyUnicode_Check(args[8])
        || (args[6] != Py_None && !PyUnicode_Check(args[6])) || !PyType_Check(args[mt])
        || !PyType_IsSubtype((PyTypeObject *)args[mt], &PyTuple_Type)) {
        PyErr_Format(PyExc_TypeError, "%s(): bad argument types", fn);
        return -1;
    }
    *c = (ctx_t){args[3], args[4], args[5], args[6], args[7], args[8], args[mt], 0,
                 PyLong_AsSsize_t(args[ms]), PyLong_AsSsize_t(args[ms + 1]), NULL};
    return PyErr_Occurred() ? -1 : 0;
}

OTUS_KAFKA_DOC(otus_kafka_encode_bodies_doc,
               "encode_bodies(records, start, out, flows, new_flow, dumps, topic, topics, prefix, "
               "keep, max_size, framing, message_type) -> (stop, held)\n\n"
               "Messages of records[start:] appended to out until a record the Python path must "
               "encode (its index is ``stop``; len(records) when none); ``held`` is the sum of "
               "their held sizes.");

PyObject *otus_kafka_encode_bodies(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 13) {
        PyErr_SetString(PyExc_TypeError, "encode_bodies() takes 13 arguments");
        return NULL;
    }
    ctx_t c;
    Py_ssize_t start;
    if (shared_args("encode_bodies", args, 10, 12, &c, &start) < 0) return NULL;
    c.keep = PyObject_IsTrue(args[9]);
    if (c.keep < 0) return NULL;
    budget_t budget = {0, 0};
    tally_t t = {0, 0, 0, 0};
    Py_ssize_t stop = encode_loop(&c, args[0], start, args[2], &budget, &t);
    return stop < 0 ? NULL : Py_BuildValue("nn", stop, t.message_held);
}

OTUS_KAFKA_DOC(otus_kafka_encode_sections_doc,
               "encode_sections(records, start, out, flows, new_flow, dumps, topic, topics, "
               "prefix, max_size, framing, message_type, routes, sealed, pool, limit, "
               "room_records, room_bytes) -> (stop, held, count, refused, message_held)\n\n"
               "encode_bodies() writing each record straight into the open section of its "
               "partition (``routes``: topic -> list of Sections, by key hash; a section without "
               "room for the next record within ``limit`` bytes goes to ``sealed`` and a reset "
               "one from ``pool``, or a new one, takes its place); a record whose topic has no "
               "route yet becomes a Message appended to ``out``. Records beyond the room left "
               "(``room_records``, ``room_bytes`` held) are refused and counted; ``stop`` is the "
               "first record the Python path must take; ``held`` and ``count`` what was written "
               "into sections, ``message_held`` the held size of the Messages.");

PyObject *otus_kafka_encode_sections(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 18) {
        PyErr_SetString(PyExc_TypeError, "encode_sections() takes 18 arguments");
        return NULL;
    }
    ctx_t c;
    Py_ssize_t start;
    if (shared_args("encode_sections", args, 9, 11, &c, &start) < 0) return NULL;
    if (!PyDict_CheckExact(args[12]) || !PyList_CheckExact(args[13])
        || !PyList_CheckExact(args[14])) {
        PyErr_SetString(PyExc_TypeError, "encode_sections(): bad argument types");
        return NULL;
    }
    route_t route = {args[12], args[13], args[14], PyLong_AsSsize_t(args[15])};
    c.route = &route;
    budget_t budget = {PyLong_AsSsize_t(args[16]), PyLong_AsSsize_t(args[17])};
    if (PyErr_Occurred()) return NULL;
    tally_t t = {0, 0, 0, 0};
    Py_ssize_t stop = encode_loop(&c, args[0], start, args[2], &budget, &t);
    return stop < 0 ? NULL
                    : Py_BuildValue("nnnnn", stop, t.held, t.count, t.refused, t.message_held);
}
