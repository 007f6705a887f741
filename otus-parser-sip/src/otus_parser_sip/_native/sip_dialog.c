/* DialogTable.update and Dialog.add_labels (_dialogs.py) for the batch path, line for line.
 *
 * The table stays the Python objects: the OrderedDict of Call-ID to _dialogs.Dialog (whose
 * slots are read and written here), and the by_outcome dict. Counters that only add up
 * (created, evicted, setup histogram) are accumulated in sip_dstate and added by Python after
 * the run. Calls that ended (or were evicted) and SDP of a dialog message are handed back as
 * media operations, in message order, for the media registry.
 *
 * otus_sip_dialog_check says whether this message can be done here (else the datagram goes to
 * Python, before anything changed): ts_ns and the dialog's times must be 64-bit ints.
 */
#include "sip_dialog.h"

#include "structmember.h"

enum { G_ANSWER, G_CALL_ID, G_CALLEE, G_CALLER, G_CANCEL, G_END, G_FINAL, G_FROM_TAG, G_INVITE,
       G_LAST, G_RING, G_STATE, G_TO_TAG, G_N };
static const char *const G_NAMES[G_N] = {
    "answer_ns", "call_id", "callee", "caller", "cancel_seen", "end_ns", "final_status",
    "from_tag", "invite_ns", "last_ns", "ring_ns", "state", "to_tag"};
static PyTypeObject *g_type;
static Py_ssize_t g_off[G_N];

enum { S_TRYING, S_RINGING, S_EARLY, S_CONFIRMED, S_TERMINATED, S_FAILED, S_CANCELLED, S_N };
static const char *const S_NAMES[S_N] = {"trying",     "ringing", "early",    "confirmed",
                                         "terminated", "failed",  "cancelled"};
static PyObject *s_state[S_N];
enum { K_STATE, K_CALLER, K_CALLEE, K_RING, K_ANSWER, K_FINAL, K_DURATION, K_FROM_TAG, K_TO_TAG,
       K_FROM_USER, K_TO_USER, K_FROM_URI, K_TO_URI, K_METHOD, K_CSEQ_METHOD, K_N };
static const char *const K_NAMES[K_N] = {
    "sip.call_state", "sip.caller",   "sip.callee",   "sip.ring_ms",     "sip.answer_ms",
    "sip.final_status", "sip.duration_ms", "sip.from_tag", "sip.to_tag", "sip.from_user",
    "sip.to_user", "sip.from_uri", "sip.to_uri", "sip.method", "sip.cseq_method"};
static PyObject *k_label[K_N];
static PyObject *s_move_to_end, *s_popitem, *s_blank;

#define GSLOT(o, k) (*(PyObject **)((char *)(o) + g_off[k]))
#define OUTCOME_ENDED(s) ((s) >= S_TERMINATED)

Py_ssize_t otus_sip_slot_offset(PyTypeObject *t, const char *name) {
    PyObject *d = PyObject_GetAttrString((PyObject *)t, name);
    if (d == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t off = -1;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY))
            off = m->offset;
    }
    Py_DECREF(d);
    return off;
}

int otus_sip_dialog_setup(PyTypeObject *dialog_type) {
    if (s_move_to_end == NULL) {
        s_move_to_end = PyUnicode_InternFromString("move_to_end");
        s_popitem = PyUnicode_InternFromString("popitem");
        s_blank = PyUnicode_InternFromString("");
        if (s_move_to_end == NULL || s_popitem == NULL || s_blank == NULL)
            return -1;
        for (int k = 0; k < S_N; k++)
            if ((s_state[k] = PyUnicode_InternFromString(S_NAMES[k])) == NULL)
                return -1;
        for (int k = 0; k < K_N; k++)
            if ((k_label[k] = PyUnicode_InternFromString(K_NAMES[k])) == NULL)
                return -1;
    }
    if (dialog_type == g_type)
        return g_type != NULL ? 0 : -1;
    if (dialog_type->tp_dictoffset != 0 || dialog_type->tp_base != &PyBaseObject_Type)
        goto bad;
    for (int k = 0; k < G_N; k++)
        if ((g_off[k] = otus_sip_slot_offset(dialog_type, G_NAMES[k])) < 0)
            goto bad;
    Py_INCREF(dialog_type);
    Py_XSETREF(g_type, dialog_type);
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, "parse_batch: the Dialog class has unexpected slots");
    return -1;
}

/* The state as an index into S_NAMES (-1: unknown, treated like Python would: not ended,
 * not confirmed). */
static int state_of(PyObject *s) {
    for (int k = 0; k < S_N; k++)
        if (s == s_state[k])
            return k;
    if (s != NULL && PyUnicode_Check(s))
        for (int k = 0; k < S_N; k++)
            if (PyUnicode_Compare(s, s_state[k]) == 0)
                return k;
    PyErr_Clear();
    return -1;
}

static int i64(PyObject *o, long long *v) {
    if (o == NULL || !PyLong_CheckExact(o))
        return 0;
    int over = 0;
    *v = PyLong_AsLongLongAndOverflow(o, &over);
    if (over || (*v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static void set_slot(PyObject *d, int k, PyObject *v) {
    Py_INCREF(v);
    Py_XSETREF(GSLOT(d, k), v);
}

int otus_sip_dialog_check(PyObject *od, PyObject *cid, PyObject *ts) {
    long long v;
    if (!i64(ts, &v) || v > (1LL << 62) || v < -(1LL << 62))
        return 0;
    PyObject *d = PyDict_GetItemWithError(od, cid);
    if (d == NULL)
        return PyErr_Occurred() ? -1 : 1;
    if (!Py_IS_TYPE(d, g_type))
        return 0;
    static const int times[] = {G_INVITE, G_RING, G_ANSWER, G_END};
    for (int k = 0; k < 4; k++)
        if (!i64(GSLOT(d, times[k]), &v) || v > (1LL << 62) || v < -(1LL << 62))
            return 0;
    return GSLOT(d, G_STATE) != NULL && GSLOT(d, G_CALL_ID) != NULL ? 1 : 0;
}

/* labels.get(key) as a borrowed reference (NULL when missing). */
static PyObject *lget(PyObject *labels, int k) { return PyDict_GetItem(labels, k_label[k]); }

static int ended_op(sip_dstate *st, PyObject *d, PyObject *ts) {
    if (!st->media_on)
        return 0;
    return PyList_Append(st->ops, Py_True) || PyList_Append(st->ops, d) ||
                   PyList_Append(st->ops, ts) || PyList_Append(st->ops, Py_None)
               ? -1
               : 0;
}

static int end_call(sip_dstate *st, PyObject *d, int outcome, PyObject *ts) {
    set_slot(d, G_STATE, s_state[outcome]);
    set_slot(d, G_END, ts);
    PyObject *old = PyDict_GetItemWithError(st->by_outcome, s_state[outcome]);
    if (old == NULL && PyErr_Occurred())
        return -1;
    long n = old != NULL ? PyLong_AsLong(old) : 0;
    if (n == -1 && PyErr_Occurred())
        return -1;
    PyObject *nv = PyLong_FromLong(n + 1);
    if (nv == NULL || PyDict_SetItem(st->by_outcome, s_state[outcome], nv) < 0) {
        Py_XDECREF(nv);
        return -1;
    }
    Py_DECREF(nv);
    return ended_op(st, d, ts);
}

static PyObject *create(sip_dstate *st, PyObject *cid, PyObject *labels, PyObject *ts) {
    PyObject *args[2] = {cid, ts};
    PyObject *d = PyObject_Vectorcall((PyObject *)g_type, args, 2, NULL);
    if (d == NULL)
        return NULL;
    if (!Py_IS_TYPE(d, g_type)) {
        Py_DECREF(d);
        PyErr_SetString(PyExc_TypeError, "parse_batch: Dialog() returned another type");
        return NULL;
    }
    PyObject *v = lget(labels, K_FROM_TAG);
    set_slot(d, G_FROM_TAG, v ? v : s_blank);
    v = lget(labels, K_TO_TAG);
    set_slot(d, G_TO_TAG, v ? v : s_blank);
    v = lget(labels, K_FROM_USER);
    if (v == NULL)
        v = lget(labels, K_FROM_URI);
    if (v == NULL)
        goto missing;
    set_slot(d, G_CALLER, v);
    v = lget(labels, K_TO_USER);
    if (v == NULL)
        v = lget(labels, K_TO_URI);
    if (v == NULL)
        goto missing;
    set_slot(d, G_CALLEE, v);
    if (PyObject_SetItem(st->od, cid, d) < 0)
        goto fail;
    st->created++;
    while (PyDict_GET_SIZE(st->od) > st->max_dialogs) {
        PyObject *last = Py_False;
        PyObject *pair = PyObject_VectorcallMethod(s_popitem, (PyObject *[]){st->od, last},
                                                   2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (pair == NULL)
            goto fail;
        st->evicted++;
        int rc = ended_op(st, PyTuple_GET_ITEM(pair, 1), ts);
        Py_DECREF(pair);
        if (rc < 0)
            goto fail;
    }
    return d;
missing:
    PyErr_SetString(PyExc_KeyError, "sip.from_uri/sip.to_uri");
fail:
    Py_DECREF(d);
    return NULL;
}

static const long long SETUP_BOUNDS_MS[8] = {100, 250, 500, 1000, 2500, 5000, 10000, 30000};

/* str((a - b) // 1_000_000) */
static PyObject *ms_str(PyObject *a, PyObject *b) {
    long long x, y;
    if (!i64(a, &x) || !i64(b, &y)) {
        PyErr_SetString(PyExc_OverflowError, "parse_batch: dialog time");
        return NULL;
    }
    long long dt = x - y; /* both within +-2^62 (checked) */
    long long q = dt / 1000000, r = dt % 1000000;
    if (r < 0)
        q--;
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", q);
    return PyUnicode_FromStringAndSize(buf, n);
}

static int put(PyObject *labels, int k, PyObject *v) {
    if (v == NULL)
        return -1;
    int rc = PyDict_SetItem(labels, k_label[k], v);
    Py_DECREF(v);
    return rc;
}

static int add_labels(PyObject *d, PyObject *labels) {
    if (PyDict_SetItem(labels, k_label[K_STATE], GSLOT(d, G_STATE)) < 0)
        return -1;
    PyObject *v = GSLOT(d, G_CALLER);
    if (PyObject_IsTrue(v) && PyDict_SetItem(labels, k_label[K_CALLER], v) < 0)
        return -1;
    v = GSLOT(d, G_CALLEE);
    if (PyObject_IsTrue(v) && PyDict_SetItem(labels, k_label[K_CALLEE], v) < 0)
        return -1;
    PyObject *inv = GSLOT(d, G_INVITE), *ring = GSLOT(d, G_RING), *ans = GSLOT(d, G_ANSWER);
    PyObject *end = GSLOT(d, G_END), *fin = GSLOT(d, G_FINAL);
    if (PyObject_IsTrue(ring) && put(labels, K_RING, ms_str(ring, inv)) < 0)
        return -1;
    if (PyObject_IsTrue(ans) && put(labels, K_ANSWER, ms_str(ans, inv)) < 0)
        return -1;
    if (PyObject_IsTrue(fin) && put(labels, K_FINAL, PyObject_Str(fin)) < 0)
        return -1;
    if (PyObject_IsTrue(end) && PyObject_IsTrue(ans) &&
        put(labels, K_DURATION, ms_str(end, ans)) < 0)
        return -1;
    return 0;
}

static int eq(PyObject *s, const char *lit, Py_ssize_t n) {
    return s != NULL && PyUnicode_Check(s) && PyUnicode_GET_LENGTH(s) == n &&
           PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND && memcmp(PyUnicode_DATA(s), lit, n) == 0;
}

int otus_sip_dialog_update(sip_dstate *st, PyObject *labels, PyObject *cid, long status,
                           PyObject *ts, PyObject *media) {
    st->ops_mark = PyList_GET_SIZE(st->ops);
    PyObject *d = PyDict_GetItemWithError(st->od, cid);
    if (d == NULL && PyErr_Occurred())
        return -1;
    Py_XINCREF(d);
    if (!status) {
        PyObject *method = lget(labels, K_METHOD);
        int invite = eq(method, "INVITE", 6);
        if (d == NULL) {
            if (!invite)
                return 0;
            if ((d = create(st, cid, labels, ts)) == NULL)
                return -1;
        } else {
            int s = state_of(GSLOT(d, G_STATE));
            PyObject *tt = lget(labels, K_TO_TAG);
            if (invite && s >= 0 && OUTCOME_ENDED(s) && (tt == NULL || !PyObject_IsTrue(tt))) {
                Py_DECREF(d);
                if ((d = create(st, cid, labels, ts)) == NULL)
                    return -1;
            } else if (eq(method, "CANCEL", 6)) {
                set_slot(d, G_CANCEL, Py_True);
            } else if (eq(method, "BYE", 3) && !(s >= 0 && OUTCOME_ENDED(s))) {
                if (end_call(st, d, S_TERMINATED, ts) < 0)
                    goto fail;
            }
        }
    } else {
        if (d == NULL)
            return 0;
        long code = status;
        if (eq(lget(labels, K_CSEQ_METHOD), "INVITE", 6)) {
            PyObject *tt = lget(labels, K_TO_TAG);
            PyObject *cur = GSLOT(d, G_TO_TAG);
            if (eq(cur, "", 0) && tt != NULL && PyObject_IsTrue(tt))
                set_slot(d, G_TO_TAG, tt);
            int s = state_of(GSLOT(d, G_STATE));
            if (!(s >= 0 && OUTCOME_ENDED(s)) && s != S_CONFIRMED) {
                if (code == 180 && s == S_TRYING)
                    set_slot(d, G_STATE, s_state[S_RINGING]);
                else if (180 <= code && code < 200 && code != 180 &&
                         (s == S_TRYING || s == S_RINGING))
                    set_slot(d, G_STATE, s_state[S_EARLY]);
                if (180 <= code && code < 200 && !PyObject_IsTrue(GSLOT(d, G_RING)))
                    set_slot(d, G_RING, ts);
                if (200 <= code && code < 300) {
                    set_slot(d, G_STATE, s_state[S_CONFIRMED]);
                    set_slot(d, G_ANSWER, ts);
                    PyObject *c = PyLong_FromLong(code);
                    if (c == NULL)
                        goto fail;
                    Py_XSETREF(GSLOT(d, G_FINAL), c);
                    long long t, inv;
                    if (!i64(ts, &t) || !i64(GSLOT(d, G_INVITE), &inv)) {
                        PyErr_SetString(PyExc_OverflowError, "parse_batch: dialog time");
                        goto fail;
                    }
                    long long ms = (t - inv > 0 ? t - inv : 0) / 1000000;
                    st->setup_count++;
                    st->setup_sum_ms += ms;
                    for (int k = 0; k < 8; k++)
                        if (ms <= SETUP_BOUNDS_MS[k]) {
                            st->setup_buckets[k]++;
                            break;
                        }
                } else if (code >= 300) {
                    PyObject *c = PyLong_FromLong(code);
                    if (c == NULL)
                        goto fail;
                    Py_XSETREF(GSLOT(d, G_FINAL), c);
                    int outcome = code == 487 || PyObject_IsTrue(GSLOT(d, G_CANCEL))
                                      ? S_CANCELLED
                                      : S_FAILED;
                    if (end_call(st, d, outcome, ts) < 0)
                        goto fail;
                }
            }
        }
    }
    set_slot(d, G_LAST, ts);
    {
        PyObject *r = PyObject_VectorcallMethod(s_move_to_end, (PyObject *[]){st->od, cid},
                                                2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (r == NULL)
            goto fail;
        Py_DECREF(r);
    }
    /* SipParser._follow: media first, then the dialog labels, then the calls that ended (their
     * operations were queued by end_call/create, before this message's media: reorder). */
    if (media != NULL && st->media_on && PyObject_IsTrue(media)) {
        /* the ended operations of this message were appended already; the registry's
         * register must come before end_call as in _follow: insert before them */
        Py_ssize_t at = st->ops_mark;
        PyObject *quad[4] = {Py_False, d, ts, media};
        for (int k = 0; k < 4; k++)
            if (PyList_Insert(st->ops, at + k, quad[k]) < 0)
                goto fail;
    }
    if (st->labels_on && add_labels(d, labels) < 0)
        goto fail;
    Py_DECREF(d);
    return 0;
fail:
    Py_DECREF(d);
    return -1;
}
