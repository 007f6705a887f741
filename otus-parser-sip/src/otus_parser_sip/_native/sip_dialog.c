/* DialogTable.update and Dialog.add_labels (_dialogs.py) for the batch path, line for line.
 *
 * The table stays the Python objects: the OrderedDict of Call-ID to _dialogs.Dialog (whose
 * slots are read and written here), and the by_outcome dict. Counters that only add up
 * (created, evicted, setup histogram) are accumulated in sip_dstate and added by Python after
 * the run. Calls that ended (or were evicted) and SDP of a dialog message go to the media
 * registry: on its C table right away (sip_media.c), else handed back as media operations, in
 * message order.
 *
 * The message's labels are read from their views into the message (sip_lview) and the dialog
 * labels appended to the record's labels JSON. Those are kept in the Dialog's _labels_json
 * slot (bytes) and copied from there until a slot they show changes (here: dropped with the
 * change; from Python: Dialog.__setattr__ drops them); while the copy is there the dialog's
 * times are known to be checked (only such dialogs get one).
 *
 * otus_sip_dialog_check says whether this message can be done here (else the datagram goes to
 * Python, before anything changed): ts_ns and the dialog's times must be 64-bit ints.
 */
#include "sip_dialog.h"
#include "sip_jb.h"

#include "structmember.h"

enum { G_ANSWER, G_CALL_ID, G_CALLEE, G_CALLER, G_CANCEL, G_END, G_FINAL, G_FROM_TAG, G_INVITE,
       G_LAST, G_RING, G_STATE, G_TO_TAG, G_LJ, G_N };
static const char *const G_NAMES[G_N] = {
    "answer_ns", "call_id", "callee", "caller", "cancel_seen", "end_ns", "final_status",
    "from_tag", "invite_ns", "last_ns", "ring_ns", "state", "to_tag", "_labels_json"};
static PyTypeObject *g_type;
static Py_ssize_t g_off[G_N];

enum { S_TRYING, S_RINGING, S_EARLY, S_CONFIRMED, S_TERMINATED, S_FAILED, S_CANCELLED, S_N };
static const char *const S_NAMES[S_N] = {"trying",     "ringing", "early",    "confirmed",
                                         "terminated", "failed",  "cancelled"};
static PyObject *s_state[S_N];
/* The labels Dialog.add_labels writes (JSON member names, opening quote included). */
enum { K_STATE, K_CALLER, K_CALLEE, K_RING, K_ANSWER, K_FINAL, K_DURATION, K_N };
static const char *const K_NAMES[K_N] = {
    ",\"sip.call_state\":", ",\"sip.caller\":", ",\"sip.callee\":", ",\"sip.ring_ms\":\"",
    ",\"sip.answer_ms\":\"", ",\"sip.final_status\":", ",\"sip.duration_ms\":\""};
static size_t K_LENS[K_N]; /* strlen of K_NAMES, set up once */
static PyObject *s_move_to_end, *s_popitem, *s_blank, *s_zero, *s_call_id;

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

/* OrderedDict.move_to_end (the method descriptor), looked up once. */
static PyObject *odict_move_to_end;

PyObject *otus_sip_odict_move_to_end(PyObject *od) {
    if (!PyODict_CheckExact(od))
        return NULL;
    if (odict_move_to_end == NULL) {
        odict_move_to_end = PyObject_GetAttr((PyObject *)&PyODict_Type, s_move_to_end);
        if (odict_move_to_end == NULL)
            PyErr_Clear();
    }
    return odict_move_to_end;
}

int otus_sip_dialog_setup(PyTypeObject *dialog_type) {
    if (s_move_to_end == NULL) {
        for (int k = 0; k < K_N; k++)
            K_LENS[k] = strlen(K_NAMES[k]);
        s_move_to_end = PyUnicode_InternFromString("move_to_end");
        s_popitem = PyUnicode_InternFromString("popitem");
        s_blank = PyUnicode_InternFromString("");
        s_zero = PyLong_FromLong(0);
        s_call_id = PyUnicode_InternFromString("call_id");
        if (s_move_to_end == NULL || s_popitem == NULL || s_blank == NULL || s_zero == NULL ||
            s_call_id == NULL)
            return -1;
        for (int k = 0; k < S_N; k++)
            if ((s_state[k] = PyUnicode_InternFromString(S_NAMES[k])) == NULL)
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
#if PY_VERSION_HEX < 0x030C0000 && PYLONG_BITS_IN_DIGIT == 30
    /* up to three 30-bit digits read directly (a nanosecond time has three); the layout of
     * int before 3.12 */
    Py_ssize_t sz = Py_SIZE(o), an = sz < 0 ? -sz : sz;
    const digit *dg = ((PyLongObject *)o)->ob_digit;
    if (an <= 2 || (an == 3 && dg[2] < 8)) {
        unsigned long long x = an == 0 ? 0 : dg[0];
        if (an >= 2)
            x |= (unsigned long long)dg[1] << 30;
        if (an == 3)
            x |= (unsigned long long)dg[2] << 60;
        *v = sz < 0 ? -(long long)x : (long long)x;
        return 1;
    }
#endif
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

/* set_slot of a slot the dialog labels show: their copy is dropped (made again at the
 * labels) */
static void set_lslot(PyObject *d, int k, PyObject *v) {
    set_slot(d, k, v);
    Py_CLEAR(GSLOT(d, G_LJ));
}

int otus_sip_dialog_check(PyObject *od, PyObject *cid, PyObject *ts, PyObject **found) {
    long long v;
    *found = NULL;
    if (!i64(ts, &v) || v > (1LL << 62) || v < -(1LL << 62))
        return 0;
    PyObject *d = PyDict_GetItemWithError(od, cid);
    if (d == NULL)
        return PyErr_Occurred() ? -1 : 1;
    *found = d;
    if (!Py_IS_TYPE(d, g_type))
        return 0;
    /* A labels copy is made only from times checked here or set from such a message's time,
     * and dropped when Python sets any slot (Dialog.__setattr__): they are still fine */
    PyObject *lj = GSLOT(d, G_LJ);
    if (lj != NULL && PyBytes_CheckExact(lj))
        return GSLOT(d, G_STATE) != NULL && GSLOT(d, G_CALL_ID) != NULL ? 1 : 0;
    static const int times[] = {G_INVITE, G_RING, G_ANSWER, G_END};
    for (int k = 0; k < 4; k++)
        if (!i64(GSLOT(d, times[k]), &v) || v > (1LL << 62) || v < -(1LL << 62))
            return 0;
    return GSLOT(d, G_STATE) != NULL && GSLOT(d, G_CALL_ID) != NULL ? 1 : 0;
}

/* A label value as a new str (the string cache: tags, users and URIs repeat). */
static PyObject *lstr(sv s) { return otus_sip_small_str(s); }

/* A tag as a new str: unique to its call, so the string cache would only lose an entry that
 * repeats (a Call-ID of a call still going, a party) to it. */
static PyObject *tag_str(sv s) {
    PyObject *u = PyUnicode_New(s.n, 127);
    if (u != NULL && s.n > 0)
        memcpy(PyUnicode_DATA(u), s.p, (size_t)s.n);
    return u;
}

static int ended_op(sip_dstate *st, PyObject *d, PyObject *ts) {
    if (!st->media_on)
        return 0;
    return PyList_Append(st->ops, Py_True) || PyList_Append(st->ops, d) ||
                   PyList_Append(st->ops, ts) || PyList_Append(st->ops, Py_None)
               ? -1
               : 0;
}

static int end_call(sip_dstate *st, PyObject *d, int outcome, PyObject *ts) {
    set_lslot(d, G_STATE, s_state[outcome]);
    set_lslot(d, G_END, ts);
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

static PyObject *create(sip_dstate *st, PyObject *cid, const sip_lview *lv, PyObject *ts) {
    /* Dialog(call_id, ts) and the tags and parties set right after, as Dialog.__init__ and
     * DialogTable.update store them: the slots written directly (no Python __init__ call) */
    PyObject *d = g_type->tp_alloc(g_type, 0);
    if (d == NULL)
        return NULL;
    GSLOT(d, G_CALL_ID) = Py_NewRef(cid);
    GSLOT(d, G_STATE) = Py_NewRef(s_state[S_TRYING]);
    GSLOT(d, G_INVITE) = Py_NewRef(ts);
    GSLOT(d, G_LAST) = Py_NewRef(ts);
    static const int zero[4] = {G_RING, G_ANSWER, G_END, G_FINAL};
    for (int k = 0; k < 4; k++)
        GSLOT(d, zero[k]) = Py_NewRef(s_zero);
    GSLOT(d, G_CANCEL) = Py_NewRef(Py_False);
    /* from_tag, to_tag ("" when absent), caller (the From user, else its URI), callee */
    sv v[4] = {lv->from_tag, lv->to_tag, lv->has_from_user ? lv->from_user : lv->from_uri,
               lv->has_to_user ? lv->to_user : lv->to_uri};
    int has[4] = {lv->has_from_tag, lv->has_to_tag, 1, 1};
    static const int slot[4] = {G_FROM_TAG, G_TO_TAG, G_CALLER, G_CALLEE};
    for (int k = 0; k < 4; k++) {
        PyObject *o = !has[k] ? Py_NewRef(s_blank) : k < 2 ? tag_str(v[k]) : lstr(v[k]);
        if (o == NULL)
            goto fail;
        GSLOT(d, slot[k]) = o;
    }
    /* Its slots only ever hold str, int, bool and bytes (here and in _dialogs.py), so it can be
     * in no reference cycle: out of the cyclic GC, whose collections walked every live call */
    PyObject_GC_UnTrack(d);
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
fail:
    Py_DECREF(d);
    return NULL;
}

static const long long SETUP_BOUNDS_MS[8] = {100, 250, 500, 1000, 2500, 5000, 10000, 30000};

/* (a - b) // 1_000_000 into *q; 0, or -1 (exception set). */
static int ms_of(PyObject *a, PyObject *b, long long *q) {
    long long x, y;
    if (!i64(a, &x) || !i64(b, &y)) {
        PyErr_SetString(PyExc_OverflowError, "parse_batch: dialog time");
        return -1;
    }
    long long dt = x - y; /* both within +-2^62 (checked) */
    *q = dt / 1000000;
    if (dt % 1000000 < 0)
        (*q)--;
    return 0;
}

/* A str as a JSON string member value ("" for a str that has no UTF-8: never from the
 * parsers, which decode with errors="replace"). */
static int put_str(jb *l, int k, PyObject *v) {
    Py_ssize_t n;
    const char *p = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &n) : NULL;
    if (p == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "parse_batch: a dialog label is not a str");
        return -1;
    }
    jb_put(l, K_NAMES[k], K_LENS[k]);
    jb_str(l, (sv){p, n});
    return 0;
}

/* A number as a JSON string member value: str(ms). */
static int put_ms(jb *l, int k, PyObject *a, PyObject *b) {
    long long q;
    if (ms_of(a, b, &q) < 0)
        return -1;
    jb_put(l, K_NAMES[k], K_LENS[k]);
    jb_int(l, q);
    LIT(l, "\"");
    return 0;
}

/* PyObject_IsTrue, without the call for a str. */
static inline int truthy(PyObject *o) {
    return PyUnicode_CheckExact(o) ? PyUnicode_GET_LENGTH(o) != 0 : PyObject_IsTrue(o);
}

/* ms as a JSON string member value: "key":"ms". */
static void put_ms_of(jb *l, int k, long long ms) {
    jb_put(l, K_NAMES[k], K_LENS[k]);
    jb_int(l, ms);
    LIT(l, "\"");
}

/* (a - b) // 1_000_000 of two times within +-2^62. */
static inline long long floor_ms(long long a, long long b) {
    long long dt = a - b, q = dt / 1000000;
    return dt % 1000000 < 0 ? q - 1 : q;
}

/* Dialog.add_labels, as JSON members appended to l. */
static int add_labels(PyObject *d, jb *l) {
    if (put_str(l, K_STATE, GSLOT(d, G_STATE)) < 0)
        return -1;
    PyObject *v = GSLOT(d, G_CALLER);
    if (truthy(v) && put_str(l, K_CALLER, v) < 0)
        return -1;
    v = GSLOT(d, G_CALLEE);
    if (truthy(v) && put_str(l, K_CALLEE, v) < 0)
        return -1;
    long long ti, tr, ta, te, fv;
    PyObject *fin0 = GSLOT(d, G_FINAL);
    if (i64(GSLOT(d, G_INVITE), &ti) && i64(GSLOT(d, G_RING), &tr) &&
        i64(GSLOT(d, G_ANSWER), &ta) && i64(GSLOT(d, G_END), &te) && PyLong_CheckExact(fin0) &&
        i64(fin0, &fv)) {
        /* the usual case: all plain ints, each read once (the times within +-2^62, checked
         * by otus_sip_dialog_check or set from such a message's time) */
        if (tr)
            put_ms_of(l, K_RING, floor_ms(tr, ti));
        if (ta)
            put_ms_of(l, K_ANSWER, floor_ms(ta, ti));
        if (fv) {
            jb_put(l, K_NAMES[K_FINAL], K_LENS[K_FINAL]);
            LIT(l, "\"");
            jb_int(l, fv);
            LIT(l, "\"");
        }
        if (te && ta)
            put_ms_of(l, K_DURATION, floor_ms(te, ta));
        return l->oom ? (PyErr_NoMemory(), -1) : 0;
    }
    PyObject *inv = GSLOT(d, G_INVITE), *ring = GSLOT(d, G_RING), *ans = GSLOT(d, G_ANSWER);
    PyObject *end = GSLOT(d, G_END), *fin = GSLOT(d, G_FINAL);
    if (PyObject_IsTrue(ring) && put_ms(l, K_RING, ring, inv) < 0)
        return -1;
    if (PyObject_IsTrue(ans) && put_ms(l, K_ANSWER, ans, inv) < 0)
        return -1;
    if (PyLong_CheckExact(fin) && i64(fin, &fv)) { /* str(int): its decimal digits */
        if (fv) {
            jb_put(l, K_NAMES[K_FINAL], K_LENS[K_FINAL]);
            LIT(l, "\"");
            jb_int(l, fv);
            LIT(l, "\"");
        }
    } else if (PyObject_IsTrue(fin)) {
        PyObject *f = PyObject_Str(fin);
        int rc = f == NULL ? -1 : put_str(l, K_FINAL, f);
        Py_XDECREF(f);
        if (rc < 0)
            return -1;
    }
    if (PyObject_IsTrue(end) && PyObject_IsTrue(ans) && put_ms(l, K_DURATION, end, ans) < 0)
        return -1;
    return l->oom ? (PyErr_NoMemory(), -1) : 0;
}

static int str_eq(PyObject *s, const char *lit, Py_ssize_t n) {
    return s != NULL && PyUnicode_Check(s) && PyUnicode_GET_LENGTH(s) == n &&
           PyUnicode_KIND(s) == PyUnicode_1BYTE_KIND && memcmp(PyUnicode_DATA(s), lit, n) == 0;
}

/* The calls this message ended (ops: is_end, dialog, ts, None quadruples) on the C registry,
 * after its SDP as in SipParser._follow; ops emptied. */
static int ended_to_creg(sip_dstate *st) {
    Py_ssize_t n = PyList_GET_SIZE(st->ops);
    for (Py_ssize_t k = 0; k + 3 < n; k += 4) {
        long long t;
        PyObject *cid = PyObject_GetAttr(PyList_GET_ITEM(st->ops, k + 1), s_call_id);
        int rc = cid == NULL || !i64(PyList_GET_ITEM(st->ops, k + 2), &t)
                     ? -1
                     : otus_sip_mreg_end(st->creg, cid, t + st->linger_ns);
        if (rc < 0 && !PyErr_Occurred())
            PyErr_SetString(PyExc_OverflowError, "parse_batch: time of an ended call");
        Py_XDECREF(cid);
        if (rc < 0)
            return -1;
    }
    return PyList_SetSlice(st->ops, 0, n, NULL);
}

int otus_sip_dialog_update(sip_dstate *st, const sip_lview *lv, jb *lab, PyObject *cid,
                           long status, PyObject *ts, PyObject *media, const sip_msums *ms,
                           PyObject *found) {
    st->ops_mark = PyList_GET_SIZE(st->ops);
    PyObject *d = found; /* otus_sip_dialog_check's lookup: nothing ran in between */
    Py_XINCREF(d);
    if (!status) {
        int invite = eq(lv->method, "INVITE");
        if (d == NULL) {
            if (!invite)
                return 0;
            if ((d = create(st, cid, lv, ts)) == NULL)
                return -1;
        } else {
            int s = state_of(GSLOT(d, G_STATE));
            int tagged = lv->has_to_tag && lv->to_tag.n > 0;
            if (invite && s >= 0 && OUTCOME_ENDED(s) && !tagged) {
                Py_DECREF(d);
                if ((d = create(st, cid, lv, ts)) == NULL)
                    return -1;
            } else if (eq(lv->method, "CANCEL")) {
                set_slot(d, G_CANCEL, Py_True);
            } else if (eq(lv->method, "BYE") && !(s >= 0 && OUTCOME_ENDED(s))) {
                if (end_call(st, d, S_TERMINATED, ts) < 0)
                    goto fail;
            }
        }
    } else {
        if (d == NULL)
            return 0;
        long code = status;
        if (eq(lv->cseq_method, "INVITE")) {
            if (lv->has_to_tag && lv->to_tag.n > 0 && str_eq(GSLOT(d, G_TO_TAG), "", 0)) {
                PyObject *tt = tag_str(lv->to_tag);
                if (tt == NULL)
                    goto fail;
                Py_XSETREF(GSLOT(d, G_TO_TAG), tt);
            }
            int s = state_of(GSLOT(d, G_STATE));
            if (!(s >= 0 && OUTCOME_ENDED(s)) && s != S_CONFIRMED) {
                if (code == 180 && s == S_TRYING)
                    set_lslot(d, G_STATE, s_state[S_RINGING]);
                else if (180 <= code && code < 200 && code != 180 &&
                         (s == S_TRYING || s == S_RINGING))
                    set_lslot(d, G_STATE, s_state[S_EARLY]);
                if (180 <= code && code < 200 && !PyObject_IsTrue(GSLOT(d, G_RING)))
                    set_lslot(d, G_RING, ts);
                if (200 <= code && code < 300) {
                    set_lslot(d, G_STATE, s_state[S_CONFIRMED]);
                    set_lslot(d, G_ANSWER, ts);
                    PyObject *c = PyLong_FromLong(code);
                    if (c == NULL)
                        goto fail;
                    Py_XSETREF(GSLOT(d, G_FINAL), c);
                    Py_CLEAR(GSLOT(d, G_LJ));
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
                    Py_CLEAR(GSLOT(d, G_LJ));
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
        /* OrderedDict.move_to_end looked up once (a plain OrderedDict), else by name */
        PyObject *r = st->move_to_end != NULL
                          ? PyObject_Vectorcall(st->move_to_end, (PyObject *[]){st->od, cid}, 2,
                                                NULL)
                          : PyObject_VectorcallMethod(s_move_to_end, (PyObject *[]){st->od, cid},
                                                      2 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (r == NULL)
            goto fail;
        Py_DECREF(r);
    }
    /* SipParser._follow: media first, then the dialog labels, then the calls that ended (their
     * operations were queued by end_call/create, before this message's media: reorder). */
    if (st->creg != NULL && ms != NULL && ms->n > 0) {
        long long t;
        if (!i64(ts, &t)) { /* otus_sip_dialog_check let only such times through */
            PyErr_SetString(PyExc_OverflowError, "parse_batch: time of an SDP");
            goto fail;
        }
        if (otus_sip_mreg_sdp(st->creg, ms, GSLOT(d, G_CALL_ID), t + st->ttl_ns) < 0)
            goto fail;
    } else if (media != NULL && st->media_on && PyObject_IsTrue(media)) {
        /* the ended operations of this message were appended already; the registry's
         * register must come before end_call as in _follow: insert before them */
        Py_ssize_t at = st->ops_mark;
        PyObject *quad[4] = {Py_False, d, ts, media};
        for (int k = 0; k < 4; k++)
            if (PyList_Insert(st->ops, at + k, quad[k]) < 0)
                goto fail;
    }
    if (st->labels_on && lab != NULL) {
        /* the call's labels as the copy made when they last changed, else written and kept */
        PyObject *lj = GSLOT(d, G_LJ);
        if (lj != NULL && PyBytes_CheckExact(lj)) {
            jb_put(lab, PyBytes_AS_STRING(lj), (size_t)PyBytes_GET_SIZE(lj));
            if (lab->oom) {
                PyErr_NoMemory();
                goto fail;
            }
        } else {
            size_t mark = lab->n;
            if (add_labels(d, lab) < 0)
                goto fail;
            PyObject *b = PyBytes_FromStringAndSize(lab->p + mark, (Py_ssize_t)(lab->n - mark));
            if (b == NULL)
                goto fail;
            Py_XSETREF(GSLOT(d, G_LJ), b);
        }
    }
    if (st->creg != NULL && PyList_GET_SIZE(st->ops) > 0 && ended_to_creg(st) < 0)
        goto fail;
    Py_DECREF(d);
    return 0;
fail:
    Py_DECREF(d);
    return -1;
}
