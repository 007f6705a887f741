/* The dialog table as plain structs (DialogStore) with handles for Python (DialogRef), and
 * DialogTable.update with Dialog.add_labels (_dialogs.py) for the batch path, line for line.
 *
 * A call is a slot of one array: its Call-ID (the key), tags and parties inline, its times as
 * 64-bit ints (within +-2^62, so differences and the media expiries stay within 64 bits), its
 * state as an index; slots are found by an open-addressing hash of the key (linear probing,
 * tombstones) and kept in order of last activity on an intrusive list (head: least recently
 * active), which gives the eviction and expiry order of the pure-Python OrderedDict.
 *
 * Python sees a call through a DialogRef: reads and writes go to the slot, so the next
 * message's labels show a change made from Python. A value a slot cannot hold (an int past
 * +-2^62, an unknown state, a non-str party, a longer tag or party, a new call_id) moves the
 * call into a pure-Python Dialog (the slot's box): reads and writes go there, and the batch
 * path leaves the call's messages to Python until the box's values fit a slot again (then they
 * are moved back). A call that leaves the table (evicted, expired, removed) hands its handle
 * (at most one per call, so get() returns the same object while the call lives) a Dialog with
 * its values as they were: the handle reads and writes that from then on.
 *
 * The media registry's work of the batch path goes to its C table right away (sip_media.c),
 * or is handed back as [is_end, call_id, ts_ns, media] operations, in message order.
 */
#include "sip_dialog.h"
#include "sip_jb.h"

#include "structmember.h"

#include <stdlib.h>

enum { F_ANSWER, F_BR_DONE, F_CALL_ID, F_CALLEE, F_CALLER, F_CANCEL, F_END, F_FINAL, F_FROM_TAG,
       F_BRANCHES, F_INVITE_CSEQ, F_INVITE, F_LAST, F_RING, F_STATE, F_TO_TAG, F_N };
static const char *const F_NAMES[F_N] = {
    "answer_ns", "branches_done", "call_id", "callee",  "caller",  "cancel_seen", "end_ns",
    "final_status", "from_tag",  "invite_branches", "invite_cseq", "invite_ns", "last_ns", "ring_ns", "state",      "to_tag"};
static PyObject *f_name[F_N];

enum { S_TRYING, S_RINGING, S_EARLY, S_CONFIRMED, S_TERMINATED, S_FAILED, S_CANCELLED, S_N };
static const char *const S_NAMES[S_N] = {"trying",     "ringing", "early",    "confirmed",
                                         "terminated", "failed",  "cancelled"};
static PyObject *s_state[S_N];
/* The labels Dialog.add_labels writes (JSON member names, opening quote included). */
enum { K_STATE, K_CALLER, K_CALLEE, K_RING, K_ANSWER, K_FINAL, K_DURATION, K_N };
static const char *const K_NAMES[K_N] = {
    ",\"sip.call_state\":", ",\"sip.caller\":", ",\"sip.callee\":", ",\"sip.ring_ms\":\"",
    ",\"sip.answer_ms\":\"", ",\"sip.final_status\":\"", ",\"sip.duration_ms\":\""};
static size_t K_LENS[K_N];
#define OUTCOME_ENDED(s) ((s) >= S_TERMINATED)
#define T_MAX (1LL << 62)
#define KEY_IN 80 /* Call-IDs up to this many bytes inline, longer ones on the heap */
#define TAG_CAP 40
#define PARTY_CAP 56
#define MAX_BRANCHES 4 /* _dialogs.MAX_BRANCHES */

typedef struct {
    long long invite, last, ring, answer, end;
    uint64_t h;
    uint64_t br[MAX_BRANCHES]; /* _dialogs.branch_key of the INVITE's Via branches, nbr */
    int32_t prev, next, final;
    uint32_t cseq; /* the CSeq number of the call's INVITE (a retransmission repeats it) */
    uint16_t key_n;
    uint8_t state, cancel, ftag_n, ttag_n, caller_n, callee_n;
    uint8_t nbr, brdone; /* branches followed; bit k: branch k had its final response */
    char *key_heap;
    PyObject *box; /* the call as a pure-Python Dialog while a value does not fit, or NULL */
    PyObject *ref; /* its DialogRef (borrowed; cleared by the handle's dealloc), or NULL */
    char key[KEY_IN], ftag[TAG_CAP], ttag[TAG_CAP], caller[PARTY_CAP], callee[PARTY_CAP];
} cdlg;

typedef struct {
    PyObject_HEAD
    cdlg *s;
    int32_t *ix; /* slot, -1 empty, -2 tombstone */
    size_t nslots, scap, cap, len, tomb;
    int32_t head, tail, free_;
    PyObject *view_type, *dialog_type;
} dstore;

typedef struct {
    PyObject_HEAD
    dstore *st; /* NULL once detached */
    int32_t slot;
    PyObject *snap; /* the call as it was when it left the table, or NULL */
} dview;

static PyTypeObject dstore_type, dview_type;

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

/* ---- the table ---------------------------------------------------------------------------- */

static inline const char *key_of(const cdlg *d) { return d->key_n <= KEY_IN ? d->key : d->key_heap; }

static inline uint64_t key_hash(const char *p, size_t n) {
    uint64_t h = sv_hash_words(p, n, 0x9E3779B97F4A7C15ull ^ n);
    return h ^ (h >> 32);
}

static int ix_resize(dstore *t, size_t need) {
    size_t cap = 1024;
    while (cap < need * 4)
        cap *= 2;
    int32_t *ix = malloc(cap * sizeof *ix);
    if (ix == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memset(ix, 0xff, cap * sizeof *ix);
    for (int32_t s = t->head; s >= 0; s = t->s[s].next) {
        size_t i = t->s[s].h & (cap - 1);
        while (ix[i] != -1)
            i = (i + 1) & (cap - 1);
        ix[i] = s;
    }
    free(t->ix);
    t->ix = ix;
    t->cap = cap;
    t->tomb = 0;
    return 0;
}

/* Position in ix of the key, or -1. */
static long ix_find(const dstore *t, const char *p, size_t n, uint64_t h) {
    if (t->cap == 0)
        return -1;
    size_t i = h & (t->cap - 1);
    for (;;) {
        int32_t s = t->ix[i];
        if (s == -1)
            return -1;
        if (s >= 0) {
            const cdlg *d = &t->s[s];
            if (d->h == h && d->key_n == n && memcmp(key_of(d), p, n) == 0)
                return (long)i;
        }
        i = (i + 1) & (t->cap - 1);
    }
}

static inline int32_t find_slot(const dstore *t, const char *p, size_t n) {
    long at = ix_find(t, p, n, key_hash(p, n));
    return at < 0 ? -1 : t->ix[at];
}

static void lru_unlink(dstore *t, int32_t s) {
    cdlg *d = &t->s[s];
    if (d->prev >= 0)
        t->s[d->prev].next = d->next;
    else
        t->head = d->next;
    if (d->next >= 0)
        t->s[d->next].prev = d->prev;
    else
        t->tail = d->prev;
}

static void lru_append(dstore *t, int32_t s) {
    cdlg *d = &t->s[s];
    d->prev = t->tail;
    d->next = -1;
    if (t->tail >= 0)
        t->s[t->tail].next = s;
    else
        t->head = s;
    t->tail = s;
}

static inline void lru_touch(dstore *t, int32_t s) {
    if (t->tail != s) {
        lru_unlink(t, s);
        lru_append(t, s);
    }
}

/* A new slot for key p[:n] at the end of the list, its values zero (no state set): its index,
 * or -1 (exception set). Pointers into t->s are stale after it. */
static int32_t slot_new(dstore *t, const char *p, size_t n) {
    if (n > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "DialogStore: Call-ID too long");
        return -1;
    }
    if ((t->len + t->tomb + 1) * 2 > t->cap && ix_resize(t, t->len + 1) < 0)
        return -1;
    char *heap = NULL;
    if (n > KEY_IN && (heap = malloc(n)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int32_t s = t->free_;
    if (s >= 0) {
        t->free_ = t->s[s].next;
    } else {
        if (t->nslots >= INT32_MAX - 1) {
            free(heap);
            PyErr_SetString(PyExc_OverflowError, "DialogStore: too many calls");
            return -1;
        }
        if (t->nslots == t->scap) {
            size_t cap = t->scap < 64 ? 64 : t->scap * 2;
            cdlg *ns = realloc(t->s, cap * sizeof *ns);
            if (ns == NULL) {
                free(heap);
                PyErr_NoMemory();
                return -1;
            }
            t->s = ns;
            t->scap = cap;
        }
        s = (int32_t)t->nslots++;
    }
    cdlg *d = &t->s[s];
    memset(d, 0, offsetof(cdlg, key));
    d->h = key_hash(p, n);
    d->key_n = (uint16_t)n;
    d->key_heap = heap;
    memcpy(heap != NULL ? heap : d->key, p, n);
    size_t i = d->h & (t->cap - 1);
    while (t->ix[i] >= 0)
        i = (i + 1) & (t->cap - 1);
    if (t->ix[i] == -2)
        t->tomb--;
    t->ix[i] = s;
    lru_append(t, s);
    t->len++;
    return s;
}

static PyObject *native_get(const cdlg *d, int k);

/* The call of slot s as a new pure-Python Dialog (its box when it has one). */
static PyObject *snapshot(dstore *t, int32_t s) {
    cdlg *d = &t->s[s];
    if (d->box != NULL)
        return Py_NewRef(d->box);
    PyTypeObject *dt = (PyTypeObject *)t->dialog_type;
    PyObject *args = PyTuple_New(0);
    PyObject *o = args == NULL ? NULL : dt->tp_new(dt, args, NULL);
    Py_XDECREF(args);
    if (o == NULL)
        return NULL;
    for (int k = 0; k < F_N; k++) {
        PyObject *v = native_get(&t->s[s], k);
        int rc = v == NULL ? -1 : PyObject_SetAttr(o, f_name[k], v);
        Py_XDECREF(v);
        if (rc < 0) {
            Py_DECREF(o);
            return NULL;
        }
    }
    return o;
}

/* Removes slot s: its handle (if any) gets the call as it was first. 0, or -1 (exception set;
 * the slot is removed all the same). */
static int slot_free(dstore *t, int32_t s) {
    int rc = 0;
    cdlg *d = &t->s[s];
    if (d->ref != NULL) {
        dview *v = (dview *)d->ref;
        PyObject *snap = snapshot(t, s);
        d = &t->s[s];
        if (snap == NULL)
            rc = -1;
        v->snap = snap;
        v->st = NULL;
        d->ref = NULL;
        Py_DECREF(t); /* the handle's reference */
    }
    long at = ix_find(t, key_of(d), d->key_n, d->h);
    if (at >= 0) {
        t->ix[at] = -2;
        t->tomb++;
    }
    lru_unlink(t, s);
    free(d->key_heap);
    d->key_heap = NULL;
    Py_CLEAR(d->box);
    d->next = t->free_;
    t->free_ = s;
    t->len--;
    return rc;
}

/* The handle of slot s (new reference). */
static PyObject *view_of(dstore *t, int32_t s) {
    cdlg *d = &t->s[s];
    if (d->ref != NULL)
        return Py_NewRef(d->ref);
    PyTypeObject *vt = (PyTypeObject *)t->view_type;
    dview *v = (dview *)vt->tp_alloc(vt, 0);
    if (v == NULL)
        return NULL;
    v->st = (dstore *)Py_NewRef(t);
    v->slot = s;
    v->snap = NULL;
    t->s[s].ref = (PyObject *)v;
    return (PyObject *)v;
}

/* ---- values of a slot ------------------------------------------------------------------- */

static PyObject *ustr(const char *p, Py_ssize_t n) {
    return PyUnicode_DecodeUTF8(p, n, "surrogatepass");
}

static PyObject *native_get(const cdlg *d, int k) {
    switch (k) {
    case F_ANSWER: return PyLong_FromLongLong(d->answer);
    case F_CALL_ID: return ustr(key_of(d), d->key_n);
    case F_CALLEE: return ustr(d->callee, d->callee_n);
    case F_CALLER: return ustr(d->caller, d->caller_n);
    case F_CANCEL: return PyBool_FromLong(d->cancel);
    case F_END: return PyLong_FromLongLong(d->end);
    case F_FINAL: return PyLong_FromLong(d->final);
    case F_FROM_TAG: return ustr(d->ftag, d->ftag_n);
    case F_INVITE: return PyLong_FromLongLong(d->invite);
    case F_INVITE_CSEQ: return PyLong_FromUnsignedLong(d->cseq);
    case F_BR_DONE: return PyLong_FromLong(d->brdone);
    case F_BRANCHES: {
        PyObject *tup = PyTuple_New(d->nbr);
        for (int i = 0; tup != NULL && i < d->nbr; i++) {
            PyObject *x = PyLong_FromUnsignedLongLong(d->br[i]);
            if (x == NULL)
                Py_CLEAR(tup);
            else
                PyTuple_SET_ITEM(tup, i, x);
        }
        return tup;
    }
    case F_LAST: return PyLong_FromLongLong(d->last);
    case F_RING: return PyLong_FromLongLong(d->ring);
    case F_STATE: return Py_NewRef(s_state[d->state]);
    default: return ustr(d->ttag, d->ttag_n);
    }
}

/* A time that a slot holds: an exact int within +-2^62 (exclusive: a time plus a timeout up to
 * 2^62 stays within 64 bits). */
static int time_of(PyObject *o, long long *v) {
    if (o == NULL || !PyLong_CheckExact(o))
        return 0;
    int over = 0;
    *v = PyLong_AsLongLongAndOverflow(o, &over);
    if (over || (*v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    return *v < T_MAX && *v > -T_MAX;
}

/* The UTF-8 of an exact str of at most cap bytes. */
static int text_of(PyObject *o, size_t cap, const char **p, Py_ssize_t *n) {
    if (o == NULL || !PyUnicode_CheckExact(o))
        return 0;
    *p = PyUnicode_AsUTF8AndSize(o, n);
    if (*p == NULL) {
        PyErr_Clear();
        return 0;
    }
    return (size_t)*n <= cap;
}

static int state_index(PyObject *o) {
    if (o == NULL || !PyUnicode_CheckExact(o))
        return -1;
    for (int k = 0; k < S_N; k++)
        if (o == s_state[k])
            return k;
    for (int k = 0; k < S_N; k++)
        if (PyUnicode_Compare(o, s_state[k]) == 0)
            return k;
    PyErr_Clear();
    return -1;
}

/* Whether slot d can hold value o of field k; with put, stores it. */
static int native_fits(cdlg *d, int k, PyObject *o, int put) {
    long long v;
    const char *p;
    Py_ssize_t n;
    switch (k) {
    case F_ANSWER: case F_END: case F_INVITE: case F_LAST: case F_RING: {
        if (!time_of(o, &v))
            return 0;
        if (put)
            *(k == F_ANSWER ? &d->answer : k == F_END ? &d->end : k == F_INVITE ? &d->invite
                              : k == F_LAST ? &d->last : &d->ring) = v;
        return 1;
    }
    case F_FINAL: {
        int over = 0;
        if (!PyLong_CheckExact(o))
            return 0;
        v = PyLong_AsLongLongAndOverflow(o, &over);
        if (over || v > INT32_MAX || v < INT32_MIN) {
            PyErr_Clear();
            return 0;
        }
        if (put)
            d->final = (int32_t)v;
        return 1;
    }
    case F_BRANCHES: {
        uint64_t br[MAX_BRANCHES];
        if (o == NULL || !PyTuple_CheckExact(o) || PyTuple_GET_SIZE(o) > MAX_BRANCHES)
            return 0;
        Py_ssize_t nb = PyTuple_GET_SIZE(o);
        for (Py_ssize_t i = 0; i < nb; i++) {
            PyObject *x = PyTuple_GET_ITEM(o, i);
            if (!PyLong_CheckExact(x))
                return 0;
            unsigned long long u = PyLong_AsUnsignedLongLong(x);
            if (u == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return 0;
            }
            br[i] = (uint64_t)u;
        }
        if (put) {
            memcpy(d->br, br, sizeof(br[0]) * (size_t)nb);
            d->nbr = (uint8_t)nb;
        }
        return 1;
    }
    case F_BR_DONE: {
        int over = 0;
        if (o == NULL || !PyLong_CheckExact(o))
            return 0;
        v = PyLong_AsLongLongAndOverflow(o, &over);
        if (over || v < 0 || v >= (1 << MAX_BRANCHES)) {
            PyErr_Clear();
            return 0;
        }
        if (put)
            d->brdone = (uint8_t)v;
        return 1;
    }
    case F_INVITE_CSEQ: {
        int over = 0;
        if (!PyLong_CheckExact(o))
            return 0;
        v = PyLong_AsLongLongAndOverflow(o, &over);
        if (over || v > 0xFFFFFFFFLL || v < 0) {
            PyErr_Clear();
            return 0;
        }
        if (put)
            d->cseq = (uint32_t)v;
        return 1;
    }
    case F_CANCEL:
        if (o != Py_True && o != Py_False)
            return 0;
        if (put)
            d->cancel = o == Py_True;
        return 1;
    case F_STATE: {
        int s = state_index(o);
        if (s < 0)
            return 0;
        if (put)
            d->state = (uint8_t)s;
        return 1;
    }
    case F_CALL_ID: /* the key: only the same value */
        return text_of(o, 0xFFFF, &p, &n) && (size_t)n == d->key_n &&
               memcmp(p, key_of(d), (size_t)n) == 0;
    default: {
        size_t cap = k == F_CALLER || k == F_CALLEE ? PARTY_CAP : TAG_CAP;
        if (!text_of(o, cap, &p, &n))
            return 0;
        if (put) {
            char *dst = k == F_CALLER ? d->caller : k == F_CALLEE ? d->callee
                      : k == F_FROM_TAG ? d->ftag : d->ttag;
            uint8_t *dn = k == F_CALLER ? &d->caller_n : k == F_CALLEE ? &d->callee_n
                        : k == F_FROM_TAG ? &d->ftag_n : &d->ttag_n;
            memcpy(dst, p, (size_t)n);
            *dn = (uint8_t)n;
        }
        return 1;
    }
    }
}

/* The box's values back into slot s when all of them fit: 1 (box dropped), 0 (kept), -1. */
static int unbox(dstore *t, int32_t s) {
    PyObject *v[F_N] = {0};
    int ok = 1, rc = 0;
    for (int k = 0; k < F_N && ok; k++) {
        v[k] = PyObject_GetAttr(t->s[s].box, f_name[k]);
        if (v[k] == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                rc = -1;
                ok = 0;
                break;
            }
            PyErr_Clear();
            ok = 0;
        } else {
            ok = native_fits(&t->s[s], k, v[k], 0);
        }
    }
    if (ok) {
        for (int k = 0; k < F_N; k++)
            native_fits(&t->s[s], k, v[k], 1);
        Py_CLEAR(t->s[s].box);
        rc = 1;
    }
    for (int k = 0; k < F_N; k++)
        Py_XDECREF(v[k]);
    return rc;
}

/* ---- DialogRef -------------------------------------------------------------------------- */

/* Where the handle's values are: *o a Python Dialog (snapshot or box), else *d the slot. */
static void view_target(dview *v, PyObject **o, cdlg **d) {
    *o = NULL;
    *d = NULL;
    if (v->st == NULL) {
        *o = v->snap;
        return;
    }
    cdlg *c = &v->st->s[v->slot];
    if (c->box != NULL)
        *o = c->box;
    else
        *d = c;
}

static PyObject *view_get(dview *v, void *closure) {
    int k = (int)(intptr_t)closure;
    PyObject *o;
    cdlg *d;
    view_target(v, &o, &d);
    if (o != NULL)
        return PyObject_GetAttr(o, f_name[k]);
    if (d == NULL) {
        PyErr_SetString(PyExc_ReferenceError, "DialogRef: no call");
        return NULL;
    }
    return native_get(d, k);
}

static int view_set(dview *v, PyObject *val, void *closure) {
    int k = (int)(intptr_t)closure;
    PyObject *o;
    cdlg *d;
    view_target(v, &o, &d);
    if (o == NULL && d == NULL) {
        PyErr_SetString(PyExc_ReferenceError, "DialogRef: no call");
        return -1;
    }
    if (o == NULL && val != NULL && native_fits(d, k, val, 1))
        return 0;
    if (o == NULL) { /* the call moves into a Dialog, which takes any value */
        PyObject *box = snapshot(v->st, v->slot);
        if (box == NULL)
            return -1;
        v->st->s[v->slot].box = o = box;
    }
    return val == NULL ? PyObject_DelAttr(o, f_name[k]) : PyObject_SetAttr(o, f_name[k], val);
}

static PyObject *view_alive(dview *v, void *closure) {
    (void)closure;
    return PyBool_FromLong(v->st != NULL);
}

/* Detaches the handle from its slot (the slot forgets it) and drops its references. */
static int view_clear(dview *v) {
    if (v->st != NULL) {
        cdlg *d = &v->st->s[v->slot];
        if (d->ref == (PyObject *)v)
            d->ref = NULL;
        Py_CLEAR(v->st);
    }
    Py_CLEAR(v->snap);
    return 0;
}

static void view_dealloc(dview *v) {
    PyObject_GC_UnTrack(v);
    view_clear(v);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static int view_traverse(dview *v, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(v));
    Py_VISIT(v->st);
    Py_VISIT(v->snap);
    return 0;
}

#define VIEW_FIELD(k) {NULL, (getter)view_get, (setter)view_set, NULL, (void *)(intptr_t)(k)}
static PyGetSetDef view_getset[F_N + 2] = {
    {"_alive", (getter)view_alive, NULL, "whether the call is still in the table", NULL},
};

static PyTypeObject dview_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "otus_parser_sip._native._sip_fast.DialogRef",
    .tp_basicsize = sizeof(dview),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A call of a DialogStore: its values read and written in the table.",
    .tp_dealloc = (destructor)view_dealloc,
    .tp_traverse = (traverseproc)view_traverse,
    .tp_clear = (inquiry)view_clear,
    .tp_getset = view_getset,
};

/* ---- DialogStore ------------------------------------------------------------------------ */

static PyObject *store_new(PyTypeObject *tp, PyObject *args, PyObject *kw) {
    PyObject *vt, *dt;
    static char *kwlist[] = {"view_type", "dialog_type", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!:DialogStore", kwlist, &PyType_Type, &vt,
                                     &PyType_Type, &dt))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)vt, &dview_type)) {
        PyErr_SetString(PyExc_TypeError, "DialogStore: view_type must subclass DialogRef");
        return NULL;
    }
    dstore *t = (dstore *)tp->tp_alloc(tp, 0);
    if (t == NULL)
        return NULL;
    t->head = t->tail = t->free_ = -1;
    t->view_type = Py_NewRef(vt);
    t->dialog_type = Py_NewRef(dt);
    return (PyObject *)t;
}

static int store_traverse(dstore *t, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(t));
    Py_VISIT(t->view_type);
    Py_VISIT(t->dialog_type);
    for (int32_t s = t->head; s >= 0; s = t->s[s].next)
        Py_VISIT(t->s[s].box);
    return 0;
}

static int store_clear(dstore *t) {
    for (int32_t s = t->head; s >= 0; s = t->s[s].next)
        Py_CLEAR(t->s[s].box);
    Py_CLEAR(t->view_type);
    Py_CLEAR(t->dialog_type);
    return 0;
}

static void store_dealloc(dstore *t) {
    PyObject_GC_UnTrack(t);
    store_clear(t); /* no handle is left: each holds a reference to the table */
    for (int32_t s = t->head; s >= 0; s = t->s[s].next)
        free(t->s[s].key_heap);
    free(t->s);
    free(t->ix);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

static Py_ssize_t store_len(dstore *t) { return (Py_ssize_t)t->len; }

/* The key of a str: its UTF-8. */
static int key_arg(PyObject *o, const char **p, Py_ssize_t *n) {
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "DialogStore: a Call-ID is a str");
        return -1;
    }
    *p = PyUnicode_AsUTF8AndSize(o, n);
    return *p == NULL ? -1 : 0;
}

static PyObject *store_get(dstore *t, PyObject *key) {
    const char *p;
    Py_ssize_t n;
    if (key_arg(key, &p, &n) < 0)
        return NULL;
    int32_t s = find_slot(t, p, (size_t)n);
    if (s < 0)
        Py_RETURN_NONE;
    return view_of(t, s);
}

/* create(call_id, ts_ns, from_tag, to_tag, caller, callee): a new call at the end, as
 * Dialog(call_id, ts_ns) with the tags and parties set (DialogTable._create). */
static PyObject *store_create(dstore *t, PyObject *const *a, Py_ssize_t na) {
    if (na != 6) {
        PyErr_SetString(PyExc_TypeError, "create(call_id, ts_ns, from_tag, to_tag, caller, callee)");
        return NULL;
    }
    const char *p;
    Py_ssize_t n;
    if (key_arg(a[0], &p, &n) < 0)
        return NULL;
    if (find_slot(t, p, (size_t)n) >= 0) {
        PyErr_SetString(PyExc_KeyError, "DialogStore.create: the call is there");
        return NULL;
    }
    int32_t s = slot_new(t, p, (size_t)n);
    if (s < 0)
        return NULL;
    cdlg *d = &t->s[s];
    d->state = S_TRYING;
    static const int k[5] = {F_INVITE, F_FROM_TAG, F_TO_TAG, F_CALLER, F_CALLEE};
    PyObject *v[5] = {a[1], a[2], a[3], a[4], a[5]};
    int fits = 1;
    for (int j = 0; j < 5 && fits; j++)
        fits = native_fits(d, k[j], v[j], 0);
    if (fits) {
        for (int j = 0; j < 5; j++)
            native_fits(d, k[j], v[j], 1);
        d->last = d->invite;
        return view_of(t, s);
    }
    PyObject *box = PyObject_CallFunctionObjArgs(t->dialog_type, a[0], a[1], NULL);
    int rc = box == NULL ? -1 : 0;
    for (int j = 1; j < 5 && rc == 0; j++)
        rc = PyObject_SetAttr(box, f_name[k[j]], v[j]);
    if (rc < 0) {
        Py_XDECREF(box);
        slot_free(t, s);
        return NULL;
    }
    t->s[s].box = box;
    return view_of(t, s);
}

static int32_t view_slot(dstore *t, PyObject *o) {
    if (!PyObject_TypeCheck(o, &dview_type)) {
        PyErr_SetString(PyExc_TypeError, "DialogStore: not a DialogRef");
        return -1;
    }
    dview *v = (dview *)o;
    if (v->st != t) {
        PyErr_SetString(PyExc_KeyError, "DialogStore: the call is not in this table");
        return -1;
    }
    return v->slot;
}

static PyObject *store_touch(dstore *t, PyObject *key) {
    const char *p;
    Py_ssize_t n;
    if (key_arg(key, &p, &n) < 0)
        return NULL;
    int32_t s = find_slot(t, p, (size_t)n);
    if (s < 0) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    lru_touch(t, s);
    Py_RETURN_NONE;
}

static PyObject *store_remove(dstore *t, PyObject *o) {
    int32_t s = view_slot(t, o);
    if (s < 0 || slot_free(t, s) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* The least recently active call, removed: its handle (reading the call as it was). */
static PyObject *store_pop_oldest(dstore *t, PyObject *unused) {
    (void)unused;
    if (t->head < 0) {
        PyErr_SetString(PyExc_KeyError, "DialogStore: empty");
        return NULL;
    }
    int32_t s = t->head;
    PyObject *v = view_of(t, s);
    if (v == NULL)
        return NULL;
    if (slot_free(t, s) < 0) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

static PyObject *store_first(dstore *t, PyObject *unused) {
    (void)unused;
    if (t->head < 0)
        Py_RETURN_NONE;
    return view_of(t, t->head);
}

static PyObject *store_after(dstore *t, PyObject *o) {
    int32_t s = view_slot(t, o);
    if (s < 0)
        return NULL;
    int32_t nx = t->s[s].next;
    if (nx < 0)
        Py_RETURN_NONE;
    return view_of(t, nx);
}

/* [(call_id key, handle)] in order of last activity. */
static PyObject *store_items(dstore *t, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(0);
    for (int32_t s = t->head; out != NULL && s >= 0; s = t->s[s].next) {
        PyObject *k = ustr(key_of(&t->s[s]), t->s[s].key_n);
        PyObject *v = k == NULL ? NULL : view_of(t, s);
        PyObject *pair = v == NULL ? NULL : PyTuple_Pack(2, k, v);
        Py_XDECREF(k);
        Py_XDECREF(v);
        if (pair == NULL || PyList_Append(out, pair) < 0)
            Py_CLEAR(out);
        Py_XDECREF(pair);
    }
    return out;
}

static PyMethodDef store_methods[] = {
    {"get", (PyCFunction)store_get, METH_O, "get(call_id) -> handle | None"},
    {"create", (PyCFunction)(void (*)(void))store_create, METH_FASTCALL,
     "create(call_id, ts_ns, from_tag, to_tag, caller, callee) -> handle"},
    {"touch", (PyCFunction)store_touch, METH_O, "touch(call_id): the call is the most recent"},
    {"remove", (PyCFunction)store_remove, METH_O, "remove(handle): the call leaves the table"},
    {"pop_oldest", (PyCFunction)store_pop_oldest, METH_NOARGS,
     "pop_oldest() -> handle: the least recently active call, removed"},
    {"first", (PyCFunction)store_first, METH_NOARGS, "first() -> handle | None (oldest)"},
    {"after", (PyCFunction)store_after, METH_O, "after(handle) -> handle | None (next newer)"},
    {"items", (PyCFunction)store_items, METH_NOARGS,
     "items() -> [(call_id, handle)], least recently active first"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods store_seq = {.sq_length = (lenfunc)store_len};

static PyTypeObject dstore_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "otus_parser_sip._native._sip_fast.DialogStore",
    .tp_basicsize = sizeof(dstore),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "DialogStore(view_type, dialog_type): the dialog table's calls as plain structs.",
    .tp_new = store_new,
    .tp_dealloc = (destructor)store_dealloc,
    .tp_traverse = (traverseproc)store_traverse,
    .tp_clear = (inquiry)store_clear,
    .tp_methods = store_methods,
    .tp_as_sequence = &store_seq,
};

int otus_sip_dialog_ready(PyObject *module) {
    for (int k = 0; k < K_N; k++)
        K_LENS[k] = strlen(K_NAMES[k]);
    for (int k = 0; k < S_N; k++)
        if ((s_state[k] = PyUnicode_InternFromString(S_NAMES[k])) == NULL)
            return -1;
    for (int k = 0; k < F_N; k++) {
        if ((f_name[k] = PyUnicode_InternFromString(F_NAMES[k])) == NULL)
            return -1;
        view_getset[k + 1] = (PyGetSetDef)VIEW_FIELD(k);
        view_getset[k + 1].name = F_NAMES[k];
    }
    if (PyType_Ready(&dview_type) < 0 || PyType_Ready(&dstore_type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "DialogRef", (PyObject *)&dview_type) < 0 ||
        PyModule_AddObjectRef(module, "DialogStore", (PyObject *)&dstore_type) < 0)
        return -1;
    return 0;
}

/* ---- the batch path ---------------------------------------------------------------------- */

int otus_sip_dialog_is_store(PyObject *o) { return Py_IS_TYPE(o, &dstore_type); }

static int i64(PyObject *o, long long *v) {
#if PY_VERSION_HEX < 0x030C0000 && PYLONG_BITS_IN_DIGIT == 30
    if (o != NULL && PyLong_CheckExact(o)) {
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
            return *v < T_MAX && *v > -T_MAX;
        }
    }
#endif
    return time_of(o, v);
}

int otus_sip_dialog_check(sip_dstate *st, const sip_lview *lv, PyObject *ts, int32_t *slot) {
    long long v;
    *slot = -1;
    if (!i64(ts, &v))
        return 0;
    /* what a call created or updated from this message stores must fit its slot */
    if (lv->call_id.n > 0xFFFF || (lv->has_from_tag && lv->from_tag.n > TAG_CAP) ||
        (lv->has_to_tag && lv->to_tag.n > TAG_CAP) ||
        (lv->has_from_user ? lv->from_user : lv->from_uri).n > PARTY_CAP ||
        (lv->has_to_user ? lv->to_user : lv->to_uri).n > PARTY_CAP)
        return 0;
    dstore *t = (dstore *)st->store;
    int32_t s = find_slot(t, lv->call_id.p, (size_t)lv->call_id.n);
    if (s >= 0 && t->s[s].box != NULL) {
        int rc = unbox(t, s);
        if (rc <= 0)
            return rc;
    }
    *slot = s;
    return 1;
}

static void put_text(jb *l, int k, const char *p, size_t n) {
    jb_put(l, K_NAMES[k], K_LENS[k]);
    jb_str(l, (sv){p, (Py_ssize_t)n});
}

/* ms as a JSON string member value: "key":"ms". */
static void put_ms(jb *l, int k, long long ms) {
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
static int add_labels(const cdlg *d, jb *l) {
    put_text(l, K_STATE, S_NAMES[d->state], strlen(S_NAMES[d->state]));
    if (d->caller_n)
        put_text(l, K_CALLER, d->caller, d->caller_n);
    if (d->callee_n)
        put_text(l, K_CALLEE, d->callee, d->callee_n);
    if (d->ring)
        put_ms(l, K_RING, floor_ms(d->ring, d->invite));
    if (d->answer)
        put_ms(l, K_ANSWER, floor_ms(d->answer, d->invite));
    if (d->final) {
        jb_put(l, K_NAMES[K_FINAL], K_LENS[K_FINAL]);
        jb_int(l, d->final);
        LIT(l, "\"");
    }
    if (d->end && d->answer)
        put_ms(l, K_DURATION, floor_ms(d->end, d->answer));
    return l->oom ? (PyErr_NoMemory(), -1) : 0;
}

static inline void set_text(char *dst, uint8_t *dn, sv v) {
    memcpy(dst, v.p, (size_t)v.n);
    *dn = (uint8_t)v.n;
}

/* The call's Call-ID as a str (the string cache for a short ASCII one, as the batch path's). */
static PyObject *call_id_of(const cdlg *d) {
    const char *p = key_of(d);
    int ascii = 1;
    for (size_t i = 0; ascii && i < d->key_n; i++)
        ascii = (unsigned char)p[i] < 0x80;
    return ascii ? otus_sip_small_str((sv){p, d->key_n}) : ustr(p, d->key_n);
}

static int count_outcome(sip_dstate *st, int outcome) {
    PyObject *old = PyDict_GetItemWithError(st->by_outcome, s_state[outcome]);
    if (old == NULL && PyErr_Occurred())
        return -1;
    long n = old != NULL ? PyLong_AsLong(old) : 0;
    if (n == -1 && PyErr_Occurred())
        return -1;
    PyObject *nv = PyLong_FromLong(n + 1);
    int rc = nv == NULL ? -1 : PyDict_SetItem(st->by_outcome, s_state[outcome], nv);
    Py_XDECREF(nv);
    return rc;
}

/* A call that ended (or was evicted) for the media registry: its C table after this message's
 * SDP (*ended set), else an operation for Python. */
static int ended_op(sip_dstate *st, const cdlg *d, PyObject *ts, int *ended) {
    if (!st->media_on)
        return 0;
    if (st->creg != NULL) {
        *ended = 1;
        return 0;
    }
    PyObject *cid = call_id_of(d);
    int rc = cid == NULL || PyList_Append(st->ops, Py_True) || PyList_Append(st->ops, cid) ||
                     PyList_Append(st->ops, ts) || PyList_Append(st->ops, Py_None)
                 ? -1
                 : 0;
    Py_XDECREF(cid);
    return rc;
}

/* _dialogs.branch_key: FNV-1a 64 of the top Via branch, 0 without one. */
static uint64_t branch_key(const sip_lview *lv) {
    if (!lv->has_branch)
        return 0;
    uint64_t h = 0xCBF29CE484222325ULL;
    for (Py_ssize_t i = 0; i < lv->branch.n; i++)
        h = (h ^ (unsigned char)lv->branch.p[i]) * 0x100000001B3ULL;
    return h;
}

static int32_t create(sip_dstate *st, const sip_lview *lv, long long t_ns, PyObject *ts,
                      int *evicted_ends, PyObject **evicted) {
    dstore *t = (dstore *)st->store;
    int32_t s = slot_new(t, lv->call_id.p, (size_t)lv->call_id.n);
    if (s < 0)
        return -1;
    cdlg *d = &t->s[s];
    d->state = S_TRYING;
    d->invite = d->last = t_ns;
    d->cseq = (uint32_t)lv->cseq;
    d->br[0] = branch_key(lv);
    d->nbr = 1;
    if (lv->has_from_tag)
        set_text(d->ftag, &d->ftag_n, lv->from_tag);
    if (lv->has_to_tag)
        set_text(d->ttag, &d->ttag_n, lv->to_tag);
    set_text(d->caller, &d->caller_n, lv->has_from_user ? lv->from_user : lv->from_uri);
    set_text(d->callee, &d->callee_n, lv->has_to_user ? lv->to_user : lv->to_uri);
    st->created++;
    while ((Py_ssize_t)t->len > st->max_dialogs) {
        int32_t v = t->head;
        st->evicted++;
        if (st->media_on && st->creg != NULL) {
            /* the C registry ends it after this message's SDP: keep its Call-ID */
            PyObject *cid = call_id_of(&t->s[v]);
            if (cid == NULL || PyList_Append(*evicted, cid) < 0) {
                Py_XDECREF(cid);
                return -1;
            }
            Py_DECREF(cid);
            (*evicted_ends)++;
        } else {
            int unused = 0;
            if (ended_op(st, &t->s[v], ts, &unused) < 0)
                return -1;
        }
        if (slot_free(t, v) < 0)
            return -1;
    }
    return s;
}

/* The index of branch key among the call's INVITE branches, or -1. */
static int branch_index(const cdlg *d, uint64_t key) {
    for (int i = 0; i < d->nbr; i++)
        if (d->br[i] == key)
            return i;
    return -1;
}

/* DialogTable._last_branch: a final failure on branch of the response's top Via; whether
 * every branch of the call's INVITE has one now. */
static int last_branch(cdlg *d, const sip_lview *lv) {
    int i = branch_index(d, branch_key(lv));
    if (i < 0 && d->nbr == 1 && lv->cseq == (long long)d->cseq)
        i = 0; /* the call's one INVITE, answered with another top Via */
    if (i < 0 || (d->brdone >> i) & 1)
        return 0;
    d->brdone |= (uint8_t)(1u << i);
    return d->brdone == (1u << d->nbr) - 1;
}

/* The message's From tag (absent: "") is the call's. */
static int same_ftag(const cdlg *d, const sip_lview *lv) {
    size_t n = lv->has_from_tag ? (size_t)lv->from_tag.n : 0;
    return n == d->ftag_n && (n == 0 || memcmp(lv->from_tag.p, d->ftag, n) == 0);
}

static const long long SETUP_BOUNDS_MS[8] = {100, 250, 500, 1000, 2500, 5000, 10000, 30000};

int otus_sip_dialog_update(sip_dstate *st, const sip_lview *lv, jb *lab, long status,
                           PyObject *ts, PyObject *media, const sip_msums *ms, int32_t s) {
    dstore *t = (dstore *)st->store;
    long long t_ns;
    if (!i64(ts, &t_ns)) { /* otus_sip_dialog_check let only such times through */
        PyErr_SetString(PyExc_OverflowError, "parse_batch: dialog time");
        return -1;
    }
    st->ops_mark = PyList_GET_SIZE(st->ops);
    int ended = 0, nevicted = 0;
    PyObject *evicted = NULL; /* Call-IDs of calls evicted here, for the C registry */
    if (!status) {
        int invite = eq(lv->method, "INVITE");
        int initial = invite && !(lv->has_to_tag && lv->to_tag.n > 0);
        int same = s >= 0 && initial && lv->cseq == (long long)t->s[s].cseq &&
                   same_ftag(&t->s[s], lv);
        uint64_t key = initial ? branch_key(lv) : 0;
        if (same && branch_index(&t->s[s], key) >= 0) {
            /* a retransmission of the call's INVITE (DialogTable.update): nothing changes */
        } else if (s < 0 || (initial && OUTCOME_ENDED(t->s[s].state))) {
            if (!invite)
                return 0;
            if (s >= 0) { /* a new call reusing the Call-ID: the old one leaves */
                if (slot_free(t, s) < 0)
                    return -1;
            }
            if (st->creg != NULL && (evicted = PyList_New(0)) == NULL)
                return -1;
            if ((s = create(st, lv, t_ns, ts, &nevicted, &evicted)) < 0)
                goto fail;
        } else if (initial) {
            cdlg *d = &t->s[s];
            if (d->state == S_CONFIRMED) {
            } else if (d->final) {
                /* the caller tries again after a 401/407/422 or a 3xx: the same call, a new
                 * INVITE transaction (DialogTable.update) */
                d->final = 0;
                d->ttag_n = 0;
                d->cseq = (uint32_t)lv->cseq;
                d->br[0] = key;
                d->nbr = 1;
                d->brdone = 0;
            } else if (same && d->nbr < MAX_BRANCHES) {
                d->br[d->nbr++] = key; /* a forking proxy's next branch */
            }
        } else if (eq(lv->method, "CANCEL")) {
            t->s[s].cancel = 1;
        } else if (eq(lv->method, "BYE") && !OUTCOME_ENDED(t->s[s].state)) {
            t->s[s].state = S_TERMINATED;
            t->s[s].end = t_ns;
            if (count_outcome(st, S_TERMINATED) < 0 || ended_op(st, &t->s[s], ts, &ended) < 0)
                return -1;
        }
    } else {
        if (s < 0)
            return 0;
        cdlg *d = &t->s[s];
        long code = status;
        if (eq(lv->cseq_method, "INVITE")) {
            if (lv->has_to_tag && lv->to_tag.n > 0 && d->ttag_n == 0)
                set_text(d->ttag, &d->ttag_n, lv->to_tag);
            int was = d->state;
            if (!OUTCOME_ENDED(was) && was != S_CONFIRMED) {
                if (code == 180 && was == S_TRYING)
                    d->state = S_RINGING;
                else if (180 <= code && code < 200 && code != 180 &&
                         (was == S_TRYING || was == S_RINGING))
                    d->state = S_EARLY;
                if (180 <= code && code < 200 && !d->ring)
                    d->ring = t_ns;
                if (200 <= code && code < 300) {
                    if (lv->has_to_tag && lv->to_tag.n > 0) /* a forked call: the answer's */
                        set_text(d->ttag, &d->ttag_n, lv->to_tag);
                    d->state = S_CONFIRMED;
                    d->answer = t_ns;
                    d->final = (int32_t)code;
                    long long msx = (t_ns - d->invite > 0 ? t_ns - d->invite : 0) / 1000000;
                    st->setup_count++;
                    st->setup_sum_ms += msx;
                    for (int k = 0; k < 8; k++)
                        if (msx <= SETUP_BOUNDS_MS[k]) {
                            st->setup_buckets[k]++;
                            break;
                        }
                } else if (code >= 300 && last_branch(d, lv)) {
                    d->final = (int32_t)code;
                    int outcome = code == 487 || d->cancel ? S_CANCELLED : S_FAILED;
                    /* after a 3xx, 401, 407 or 422 the call waits for the caller's retry
                     * (_dialogs.retryable) */
                    int retry = outcome == S_FAILED &&
                                (code < 400 || code == 401 || code == 407 || code == 422);
                    if (!retry) {
                        d->state = (uint8_t)outcome;
                        d->end = t_ns;
                        if (count_outcome(st, outcome) < 0 || ended_op(st, d, ts, &ended) < 0)
                            return -1;
                    }
                }
            }
        }
    }
    cdlg *d = &t->s[s];
    d->last = t_ns;
    lru_touch(t, s);
    /* SipParser._follow: media first, then the dialog labels, then the calls that ended */
    if (st->creg != NULL && ms != NULL && ms->n > 0) {
        PyObject *cid = call_id_of(d);
        int rc = cid == NULL ? -1 : otus_sip_mreg_sdp(st->creg, ms, cid, t_ns + st->ttl_ns);
        Py_XDECREF(cid);
        if (rc < 0)
            goto fail;
    } else if (media != NULL && st->media_on && st->creg == NULL && PyObject_IsTrue(media)) {
        /* the ended operations of this message were appended already; the registry's
         * register must come before end_call as in _follow: insert before them */
        PyObject *cid = call_id_of(d);
        PyObject *quad[4] = {Py_False, cid, ts, media};
        for (int k = 0; cid != NULL && k < 4; k++)
            if (PyList_Insert(st->ops, st->ops_mark + k, quad[k]) < 0)
                Py_CLEAR(cid);
        if (cid == NULL)
            goto fail;
        Py_DECREF(cid);
    }
    if (st->labels_on && lab != NULL && add_labels(d, lab) < 0)
        goto fail;
    if (st->creg != NULL) {
        /* evicted calls first (they left the table before this call ended), as _follow */
        for (int k = 0; k < nevicted; k++)
            if (otus_sip_mreg_end(st->creg, PyList_GET_ITEM(evicted, k), t_ns + st->linger_ns) <
                0)
                goto fail;
        if (ended) {
            PyObject *cid = call_id_of(d);
            int rc = cid == NULL ? -1 : otus_sip_mreg_end(st->creg, cid, t_ns + st->linger_ns);
            Py_XDECREF(cid);
            if (rc < 0)
                goto fail;
        }
    }
    Py_XDECREF(evicted);
    return 0;
fail:
    Py_XDECREF(evicted);
    return -1;
}
