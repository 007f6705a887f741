/* The media registry's share of a parse_batch run (SipParser._media_ops), line for line.
 *
 * media_apply(ops, cfg) runs the operations parse_batch handed back, in order, on the
 * registry's own Python objects, as SipParser._media_ops would with MediaFlowRegistry
 * (media.py): ops is [is_end, dialog, ts_ns, media, ...]; is_end: end_call(dialog.call_id,
 * ts_ns + linger_ns), else one MediaFlow per announced endpoint registered (RTP, and RTCP
 * unless rtcp-mux) with expires_ns = ts_ns + ttl_ns. cfg is (registry._flows (an OrderedDict
 * of (ip, port) to MediaFlow, in order of registration), registry._by_call (dict of Call-ID to a set of keys),
 * max_flows, MediaFlow, ttl_ns, linger_ns, registry._ended (the deque of (expiry, Call-ID) of
 * ended calls)). Returns (registered, evicted) for Python to add to the registry's counters.
 *
 * The flows keep the order of registration as the Python registry does: a registration takes
 * the key out and in again, eviction takes the first. The OrderedDict is read through the dict
 * API (safe) and written only through its own C API (PyODict_SetItem/DelItem, which keep its
 * order; no method calls) and popitem for eviction. A call announcing an endpoint it already
 * holds, with the same description, refreshes that flow (expiry, position) instead of
 * replacing it with an equal new object (refresh()). MediaFlow objects are
 * built by writing their slots when MediaFlow's __slots__ are exactly the ones known here,
 * else by calling the class.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sip_dialog.h"

enum { M_IP, M_PORT, M_KIND, M_CALL_ID, M_MEDIA, M_CODECS, M_EXPIRES, M_N };
static const char *const M_NAMES[M_N] = {"ip",    "port",   "kind",      "call_id",
                                         "media", "codecs", "expires_ns"};
static PyTypeObject *m_type;
static Py_ssize_t m_off[M_N];
static int m_direct;
static PyObject *s_rtp, *s_rtcp, *s_rtp_rtcp, *s_call_id, *s_expires, *s_append, *s_popitem;

#define MSLOT(o, k) (*(PyObject **)((char *)(o) + m_off[k]))

static int setup(PyTypeObject *t) {
    if (s_rtp == NULL) {
        s_rtp = PyUnicode_InternFromString("rtp");
        s_rtcp = PyUnicode_InternFromString("rtcp");
        s_rtp_rtcp = PyUnicode_InternFromString("rtp+rtcp");
        s_call_id = PyUnicode_InternFromString("call_id");
        s_expires = PyUnicode_InternFromString("expires_ns");
        s_append = PyUnicode_InternFromString("append");
        s_popitem = PyUnicode_InternFromString("popitem");
        if (!s_rtp || !s_rtcp || !s_rtp_rtcp || !s_call_id || !s_expires || !s_append ||
            !s_popitem)
            return -1;
    }
    if (t == m_type)
        return 0;
    m_direct = t->tp_base == &PyBaseObject_Type && t->tp_dictoffset == 0;
    PyObject *slots = m_direct ? PyObject_GetAttrString((PyObject *)t, "__slots__") : NULL;
    if (slots == NULL || PySequence_Size(slots) != M_N)
        m_direct = 0;
    Py_XDECREF(slots);
    PyErr_Clear();
    for (int k = 0; m_direct && k < M_N; k++)
        if ((m_off[k] = otus_sip_slot_offset(t, M_NAMES[k])) < 0)
            m_direct = 0;
    Py_INCREF(t);
    Py_XSETREF(m_type, t);
    return 0;
}

/* MediaFlow(ip, port, kind, call_id, media, codecs, expires_ns); v borrowed. */
static PyObject *new_flow(PyObject *const *v) {
    if (!m_direct)
        return PyObject_Vectorcall((PyObject *)m_type, v, M_N, NULL);
    PyObject *f = m_type->tp_alloc(m_type, 0);
    if (f == NULL)
        return NULL;
    for (int k = 0; k < M_N; k++)
        MSLOT(f, k) = Py_NewRef(v[k]);
    /* strs, ints and a codecs dict of strs (untracked by CPython itself: no container in it):
     * no reference cycle through the flow, so out of the cyclic GC, whose collections walked
     * every registered endpoint (up to max_flows of them in a long run) */
    int atomic = PyDict_CheckExact(v[M_CODECS]) && !PyObject_GC_IsTracked(v[M_CODECS]);
    for (int k = 0; atomic && k < M_N; k++)
        atomic = k == M_CODECS || PyUnicode_CheckExact(v[k]) || PyLong_CheckExact(v[k]);
    if (atomic)
        PyObject_GC_UnTrack(f);
    return f;
}

typedef struct {
    PyObject *flows, *by_call, *ended;
    Py_ssize_t max_flows;
    long long registered, evicted;
} mstate;

/* MediaFlowRegistry._unlink */
static int unlink_key(mstate *s, PyObject *call_id, PyObject *key) {
    PyObject *keys = PyDict_GetItemWithError(s->by_call, call_id);
    if (keys == NULL)
        return PyErr_Occurred() ? -1 : 0;
    if (!PySet_Check(keys)) {
        PyErr_SetString(PyExc_TypeError, "media_apply: _by_call holds a non-set");
        return -1;
    }
    if (PySet_Discard(keys, key) < 0)
        return -1;
    if (PySet_GET_SIZE(keys) == 0 && PyDict_DelItem(s->by_call, call_id) < 0)
        return -1;
    return 0;
}

/* An attribute of a flow (a new reference). */
static PyObject *flow_attr(PyObject *flow, int k, PyObject *name) {
    if (m_direct && Py_IS_TYPE(flow, m_type)) {
        PyObject *v = MSLOT(flow, k);
        if (v == NULL) {
            PyErr_SetObject(PyExc_AttributeError, name);
            return NULL;
        }
        return Py_NewRef(v);
    }
    return PyObject_GetAttr(flow, name);
}

/* 1 when a and b are the same str (by identity or value), 0 when not, -1 on error. */
static int same_str(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    if (a == NULL || !PyUnicode_CheckExact(a) || !PyUnicode_CheckExact(b))
        return 0;
    return PyUnicode_Compare(a, b) == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
}

/* The call announcing the same endpoint again with the same description (every SDP of a call
 * repeats its endpoints: offer, answer, re-INVITE, the retransmissions): the flow `old` there
 * is refreshed (its expiry, and moved to the end) instead of replaced by an equal new object,
 * as register() would. 1 when done, 0 when not that case, -1 on error. */
static int refresh(mstate *s, PyObject *key, PyObject *old, PyObject *const *v) {
    if (!m_direct || !Py_IS_TYPE(old, m_type))
        return 0;
    static const int strs[] = {M_KIND, M_CALL_ID, M_MEDIA};
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++) {
        int same = same_str(MSLOT(old, strs[k]), v[strs[k]]);
        if (same <= 0)
            return same;
    }
    PyObject *codecs = MSLOT(old, M_CODECS);
    if (codecs != v[M_CODECS]) {
        /* dicts of strs only (the SDP summary's): comparing them runs no Python code */
        if (codecs == NULL || !PyDict_CheckExact(codecs) || !PyDict_CheckExact(v[M_CODECS]) ||
            PyObject_GC_IsTracked(codecs) || PyObject_GC_IsTracked(v[M_CODECS]))
            return 0;
        int same = PyObject_RichCompareBool(codecs, v[M_CODECS], Py_EQ);
        if (same <= 0)
            return same;
    }
    /* to the end: out and in again */
    Py_INCREF(old);
    int rc = PyODict_DelItem(s->flows, key) < 0 || PyODict_SetItem(s->flows, key, old) < 0 ? -1 : 1;
    if (rc == 1) {
        Py_XSETREF(MSLOT(old, M_EXPIRES), Py_NewRef(v[M_EXPIRES]));
        s->registered++;
    }
    Py_DECREF(old);
    return rc;
}

/* The least recently registered flow out (OrderedDict.popitem(last=False): O(1)). */
static int evict_oldest(mstate *s) {
    PyObject *pair = PyObject_CallMethodObjArgs(s->flows, s_popitem, Py_False, NULL);
    if (pair == NULL)
        return -1;
    int rc = -1;
    if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2) {
        PyObject *victim_cid = flow_attr(PyTuple_GET_ITEM(pair, 1), M_CALL_ID, s_call_id);
        if (victim_cid != NULL && unlink_key(s, victim_cid, PyTuple_GET_ITEM(pair, 0)) == 0)
            rc = 0;
        Py_XDECREF(victim_cid);
    } else {
        PyErr_SetString(PyExc_TypeError, "media_apply: popitem() gave no pair");
    }
    Py_DECREF(pair);
    if (rc == 0)
        s->evicted++;
    return rc;
}

/* MediaFlowRegistry.register(MediaFlow(*v)) for the endpoint (ip, port) of call_id. */
static int reg(mstate *s, PyObject *const *v, PyObject *ip, PyObject *port, PyObject *call_id) {
    PyObject *key = PyTuple_Pack(2, ip, port);
    if (key == NULL)
        return -1;
    /* (str, int) holds no container: untracked now, as the GC's first pass would (each
     * collection until then walked every new endpoint's key) */
    if (PyUnicode_CheckExact(ip) && PyLong_CheckExact(port))
        PyObject_GC_UnTrack(key);
    int rc = -1;
    PyObject *flow = NULL;
    PyObject *old = PyDict_GetItemWithError(s->flows, key); /* borrowed */
    if (old == NULL && PyErr_Occurred())
        goto done;
    if (old != NULL) {
        int r = refresh(s, key, old, v);
        if (r != 0) {
            rc = r < 0 ? -1 : 0;
            goto done;
        }
        /* flows.pop(key): replaced below; the call that held it lets it go */
        Py_INCREF(old);
        PyObject *old_cid = flow_attr(old, M_CALL_ID, s_call_id);
        int same = old_cid == NULL ? -1 : PyObject_RichCompareBool(old_cid, call_id, Py_EQ);
        int bad = same < 0 || (!same && unlink_key(s, old_cid, key) < 0) ||
                  PyODict_DelItem(s->flows, key) < 0;
        Py_XDECREF(old_cid);
        Py_DECREF(old);
        if (bad)
            goto done;
    }
    if ((flow = new_flow(v)) == NULL || PyODict_SetItem(s->flows, key, flow) < 0)
        goto done;
    PyObject *keys = PyDict_GetItemWithError(s->by_call, call_id);
    if (keys == NULL) {
        if (PyErr_Occurred())
            goto done;
        PyObject *set = PySet_New(NULL);
        /* _by_call is the registry's own: its sets hold only (ip, port) keys, so no cycle */
        if (set != NULL)
            PyObject_GC_UnTrack(set);
        int bad = set == NULL || PySet_Add(set, key) < 0 ||
                  PyDict_SetItem(s->by_call, call_id, set) < 0;
        Py_XDECREF(set);
        if (bad)
            goto done;
    } else if (!PySet_Check(keys) || PySet_Add(keys, key) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "media_apply: _by_call holds a non-set");
        goto done;
    }
    s->registered++;
    while (PyDict_GET_SIZE(s->flows) > s->max_flows)
        if (evict_oldest(s) < 0)
            goto done;
    rc = 0;
done:
    Py_XDECREF(flow);
    Py_DECREF(key);
    return rc;
}

/* SipParser._register_media: media is a list of (addr, port, kind, mux, rtcp_addr,
 * rtcp_port, codecs) summaries. */
static int register_media(mstate *s, PyObject *media, PyObject *call_id, PyObject *expires) {
    PyObject *seq = PySequence_Fast(media, "media_apply: media is not a sequence");
    if (seq == NULL)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *m = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(m) || PyTuple_GET_SIZE(m) != 7) {
            PyErr_SetString(PyExc_TypeError, "media_apply: a media summary is not a 7-tuple");
            rc = -1;
            break;
        }
        Py_INCREF(m); /* held while Python code (a MediaFlow subclass, __eq__) may run */
        PyObject *addr = PyTuple_GET_ITEM(m, 0), *port = PyTuple_GET_ITEM(m, 1);
        PyObject *kind = PyTuple_GET_ITEM(m, 2), *codecs = PyTuple_GET_ITEM(m, 6);
        int mux = PyObject_IsTrue(PyTuple_GET_ITEM(m, 3));
        if (mux < 0) {
            rc = -1;
        } else {
            PyObject *v[M_N] = {addr, port, mux ? s_rtp_rtcp : s_rtp, call_id, kind, codecs,
                                expires};
            rc = reg(s, v, addr, port, call_id);
            if (rc == 0 && !mux) {
                PyObject *raddr = PyTuple_GET_ITEM(m, 4), *rport = PyTuple_GET_ITEM(m, 5);
                PyObject *w[M_N] = {raddr, rport, s_rtcp, call_id, kind, codecs, expires};
                rc = reg(s, w, raddr, rport, call_id);
            }
        }
        Py_DECREF(m);
    }
    Py_DECREF(seq);
    return rc;
}

/* MediaFlowRegistry.end_call(call_id, expires) */
static int end_call(mstate *s, PyObject *call_id, PyObject *expires) {
    PyObject *entry = PyTuple_Pack(2, expires, call_id);
    PyObject *r = entry == NULL ? NULL : PyObject_CallMethodOneArg(s->ended, s_append, entry);
    Py_XDECREF(entry);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    PyObject *keys = PyDict_GetItemWithError(s->by_call, call_id);
    if (keys == NULL)
        return PyErr_Occurred() ? -1 : 0;
    PyObject *list = PySequence_List(keys); /* a snapshot: Python code may run below */
    if (list == NULL)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(list); i++) {
        PyObject *flow = PyDict_GetItemWithError(s->flows, PyList_GET_ITEM(list, i));
        if (flow == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            continue;
        }
        Py_INCREF(flow);
        if (m_direct && Py_IS_TYPE(flow, m_type) && PyLong_CheckExact(expires) &&
            MSLOT(flow, M_EXPIRES) != NULL && PyLong_CheckExact(MSLOT(flow, M_EXPIRES))) {
            /* two ints: compared and stored without running any Python code */
            int less = PyObject_RichCompareBool(expires, MSLOT(flow, M_EXPIRES), Py_LT);
            if (less < 0)
                rc = -1;
            else if (less)
                Py_SETREF(MSLOT(flow, M_EXPIRES), Py_NewRef(expires));
        } else {
            PyObject *cur = flow_attr(flow, M_EXPIRES, s_expires);
            int less = cur == NULL ? -1 : PyObject_RichCompareBool(expires, cur, Py_LT);
            if (less < 0 || (less && PyObject_SetAttr(flow, s_expires, expires) < 0))
                rc = -1;
            Py_XDECREF(cur);
        }
        Py_DECREF(flow);
    }
    Py_DECREF(list);
    return rc;
}

PyObject *otus_sip_media_apply(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyList_Check(args[0]) || !PyTuple_Check(args[1]) ||
        PyTuple_GET_SIZE(args[1]) != 7 || !PyODict_CheckExact(PyTuple_GET_ITEM(args[1], 0)) ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(args[1], 1)) ||
        !PyType_Check(PyTuple_GET_ITEM(args[1], 3)) || PyList_GET_SIZE(args[0]) % 4 != 0) {
        PyErr_SetString(PyExc_TypeError, "media_apply(ops: list, cfg: tuple)");
        return NULL;
    }
    PyObject *cfg = args[1];
    mstate s = {PyTuple_GET_ITEM(cfg, 0), PyTuple_GET_ITEM(cfg, 1), PyTuple_GET_ITEM(cfg, 6),
                PyLong_AsSsize_t(PyTuple_GET_ITEM(cfg, 2)), 0, 0};
    PyObject *ttl = PyTuple_GET_ITEM(cfg, 4), *linger = PyTuple_GET_ITEM(cfg, 5);
    if (PyErr_Occurred() || setup((PyTypeObject *)PyTuple_GET_ITEM(cfg, 3)) < 0)
        return NULL;
    PyObject *ops = PyList_GetSlice(args[0], 0, PyList_GET_SIZE(args[0])); /* a snapshot */
    if (ops == NULL)
        return NULL;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i + 3 < PyList_GET_SIZE(ops); i += 4) {
        PyObject *dialog = PyList_GET_ITEM(ops, i + 1), *ts = PyList_GET_ITEM(ops, i + 2);
        int is_end = PyObject_IsTrue(PyList_GET_ITEM(ops, i));
        PyObject *cid = is_end < 0 ? NULL : PyObject_GetAttr(dialog, s_call_id);
        PyObject *at = cid == NULL ? NULL : PyNumber_Add(ts, is_end ? linger : ttl);
        if (at == NULL)
            rc = -1;
        else if (is_end)
            rc = end_call(&s, cid, at);
        else
            rc = register_media(&s, PyList_GET_ITEM(ops, i + 3), cid, at);
        Py_XDECREF(cid);
        Py_XDECREF(at);
    }
    Py_DECREF(ops);
    if (rc < 0)
        return NULL;
    return Py_BuildValue("(LL)", s.registered, s.evicted);
}
