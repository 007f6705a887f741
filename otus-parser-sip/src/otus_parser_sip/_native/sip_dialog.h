/* The dialog table's update for the batch path (sip_dialog.c; _dialogs.DialogTable.update). */
#ifndef OTUS_SIP_DIALOG_H
#define OTUS_SIP_DIALOG_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sip_sv.h"

struct jb;

/* One run's view of the table: od (DialogTable._d), by_outcome, the media operations handed
 * back ([is_end, dialog, ts_ns, media] per operation) and the counters Python adds afterwards.
 * With creg (the registry is the C table, MediaTable) the media work is done on it right
 * away instead (SDP endpoints expire ttl_ns after the message, ended calls' flows linger_ns
 * after it) and ops only holds a message's ended calls until its SDP is registered. */
typedef struct {
    PyObject *od, *by_outcome, *ops, *creg;
    long long ttl_ns, linger_ns;
    PyObject *move_to_end; /* OrderedDict.move_to_end when od is a plain OrderedDict, or NULL */
    Py_ssize_t max_dialogs, ops_mark;
    int labels_on, media_on;
    long long created, evicted, setup_count, setup_sum_ms, setup_buckets[8];
} sip_dstate;

/* Offset of the object slot `name` of type t (a writable T_OBJECT_EX member), or -1 when it
 * is not a plain object slot (sip_batch.c: Record, sip_dialog.c: Dialog). */
Py_ssize_t otus_sip_slot_offset(PyTypeObject *t, const char *name);
/* Once per call: the Dialog class (its slots are written here); 0, or -1 (exception set). */
int otus_sip_dialog_setup(PyTypeObject *dialog_type);
/* 1: update can run for a message of Call-ID cid at ts; 0: leave the datagram to Python;
 * -1: exception set. Changes nothing. */
int otus_sip_dialog_check(PyObject *od, PyObject *cid, PyObject *ts, PyObject **found);
/* OrderedDict.move_to_end (borrowed) when od is exactly an OrderedDict, else NULL (by name).
 * Call after otus_sip_dialog_setup. */
PyObject *otus_sip_odict_move_to_end(PyObject *od);
/* DialogTable.update + what SipParser._follow does with its result; 0, or -1. */
/* The message's labels are read from lv; its dialog labels (when on) are appended to lab, the
 * labels JSON otus_sip_json_core wrote. */
int otus_sip_dialog_update(sip_dstate *st, const sip_lview *lv, struct jb *lab, PyObject *cid,
                           long status, PyObject *ts, PyObject *media, const sip_msums *ms,
                           PyObject *found);
#endif
