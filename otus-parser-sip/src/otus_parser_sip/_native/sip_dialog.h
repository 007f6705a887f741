/* The dialog table as plain structs and its update for the batch path (sip_dialog.c;
 * _dialogs.DialogTable.update). */
#ifndef OTUS_SIP_DIALOG_H
#define OTUS_SIP_DIALOG_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "sip_sv.h"

struct jb;

/* One run's view of the table: store (a DialogStore), by_outcome, the media operations handed
 * back ([is_end, call_id, ts_ns, media] per operation) and the counters Python adds afterwards.
 * With creg (the registry is the C table, MediaTable) the media work is done on it right
 * away instead (SDP endpoints expire ttl_ns after the message, ended calls' flows linger_ns
 * after it). */
typedef struct {
    PyObject *store, *by_outcome, *ops, *creg;
    long long ttl_ns, linger_ns;
    Py_ssize_t max_dialogs, ops_mark;
    int labels_on, media_on;
    long long created, evicted, setup_count, setup_sum_ms, setup_buckets[8];
} sip_dstate;

/* Offset of the object slot `name` of type t (a writable T_OBJECT_EX member), or -1 when it
 * is not a plain object slot (sip_batch.c: Record). */
Py_ssize_t otus_sip_slot_offset(PyTypeObject *t, const char *name);
/* DialogStore and DialogRef added to the module; 0, or -1 (exception set). */
int otus_sip_dialog_ready(PyObject *module);
/* 1 when o is a DialogStore. */
int otus_sip_dialog_is_store(PyObject *o);
/* 1: update can run for the message (lv) at ts, *slot its call or -1; 0: leave the datagram
 * to Python; -1: exception set. Changes nothing but a call's box moved back into its slot. */
int otus_sip_dialog_check(sip_dstate *st, const sip_lview *lv, PyObject *ts, int32_t *slot);
/* DialogTable.update + what SipParser._follow does with its result; 0, or -1. The message's
 * dialog labels (when on) are appended to lab, the labels JSON otus_sip_json_core wrote. */
int otus_sip_dialog_update(sip_dstate *st, const sip_lview *lv, struct jb *lab, long status,
                           PyObject *ts, PyObject *media, const sip_msums *ms, int32_t slot);
#endif
