/* The media flow registry as a C table (_sip_fast.MediaTable; media.MediaFlowRegistry is it).
 *
 * Flows live in one array of plain structs, not as Python objects: the address (UTF-8, inline
 * up to 47 bytes, else on the heap) and port, the expiry, the codecs as a packed list of
 * (payload type, encoding) byte strings, and references to three strs (kind, media, and the
 * Call-ID of the call's entry). An open-addressing hash on (address, port) finds a flow (its
 * slots hold the flow's index and 32 bits of its hash, so a probe touches no flow it does not
 * compare); the flows are chained in registration order (the least recently registered is
 * evicted at max_flows, expire() reads from the oldest) and per call (a second hash on the
 * Call-ID str finds the call's entry); the ended calls are a ring of (expiry, Call-ID) bounded
 * at max(1024, max_flows), as the deque of the pure-Python registry (media.PyMediaFlowRegistry,
 * which this mirrors operation for operation). MediaFlow objects are built on demand by
 * lookup/flows_of/flows (a new object each time).
 *
 * The batch path (sip_batch.c, sip_dialog.c) registers an SDP's endpoints straight from the
 * description it just parsed (otus_sip_mreg_sdp: no tuple, dict or str per endpoint but the
 * media's str) and ends calls with otus_sip_mreg_end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "structmember.h"

#include "sip_dialog.h"

#define NIL UINT32_MAX

/* An intrusive doubly linked list over the flows array: a flow's links and a list's ends. */
typedef struct {
    uint32_t prev, next;
} mlink;

typedef struct {
    uint32_t head, tail;
} mlist;

/* The table's memory through CPython's raw allocator (malloc underneath; tracemalloc sees it). */
#define malloc PyMem_RawMalloc
#define calloc PyMem_RawCalloc
#define realloc PyMem_RawRealloc
#define free PyMem_RawFree

/* Expiry times: capture times plus a timeout in ns, 128 bits wide so that any time the
 * pure-Python registry takes (past 64 bits too, up to 2**127) compares the same. */
typedef __int128 i128;
#define IP_INLINE 48
#define CODECS_INLINE 64

typedef struct {
    i128 expires;
    long long port;
    uint32_t h;            /* hash of (address, port) */
    mlink ord;             /* registration order (ord.next: the free list when unused) */
    mlink in_call;         /* the call's flows */
    uint32_t call;         /* the call's entry */
    uint32_t iplen, clen;  /* address bytes; packed codecs bytes */
    PyObject *kind, *media;
    char *ipheap, *cheap; /* used when past the inline room */
    char ipbuf[IP_INLINE];
    char cbuf[CODECS_INLINE];
} mflow;

typedef struct {
    PyObject *cid; /* an exact str; NULL when the entry is free */
    mlist flows; /* flows.head: the free list when the entry is free */
    uint32_t h, n;
} mcall;

typedef struct {
    i128 expires;
    PyObject *cid;
} mended;

typedef struct {
    PyObject_HEAD
    mflow *f;
    mlist ord; /* registration order, oldest first */
    uint32_t fcap, fcount, ffree;
    uint64_t *fslot; /* (hash << 32) | (index + 1); 0 empty */
    size_t fmask;
    mcall *c;
    uint32_t ccap, ccount, cfree;
    uint64_t *cslot;
    size_t cmask;
    mended *e;
    size_t ecap, emax, ehead, elen;
    Py_ssize_t max_flows;
    long long registered, evicted, expired;
    PyObject *flow_type;
} mreg;

static PyObject *s_rtp, *s_rtcp, *s_rtp_rtcp;

static inline const char *fip(const mflow *f) { return f->iplen <= IP_INLINE ? f->ipbuf : f->ipheap; }
static inline const char *fcodecs(const mflow *f) {
    return f->clen <= CODECS_INLINE ? f->cbuf : f->cheap;
}

static uint32_t key_hash(const char *p, size_t n, long long port) {
    uint64_t h = sv_hash_words(
        p, n, 0x9E3779B97F4A7C15ull ^ (uint64_t)n ^ ((uint64_t)port * 0xC2B2AE3D27D4EB4Full));
    h ^= h >> 32;
    h *= 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
    return (uint32_t)h;
}

/* An exact str equal to o's value (a new reference), or NULL with TypeError. */
static PyObject *exact_str(PyObject *o, const char *what) {
    if (PyUnicode_CheckExact(o))
        return Py_NewRef(o);
    if (PyUnicode_Check(o))
        return PyUnicode_FromObject(o);
    PyErr_Format(PyExc_TypeError, "MediaFlow.%s must be a str", what);
    return NULL;
}

static int str_same(PyObject *a, PyObject *b) {
    if (a == b)
        return 1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b) &&
           memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * PyUnicode_KIND(a)) == 0;
}

/* -- open addressing (linear probing, deletion by backward shift) ------------------------- */

static int slots_grow(uint64_t **slots, size_t *mask, uint32_t count) {
    size_t n = *slots == NULL ? 0 : *mask + 1;
    if (n != 0 && ((size_t)count + 1) * 2 <= n)
        return 0;
    size_t m = n == 0 ? 256 : n * 2;
    while (((size_t)count + 1) * 2 > m)
        m *= 2;
    uint64_t *s = calloc(m, sizeof *s);
    if (s == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t v = (*slots)[i];
        if (v == 0)
            continue;
        size_t j = (size_t)(v >> 32) & (m - 1);
        while (s[j])
            j = (j + 1) & (m - 1);
        s[j] = v;
    }
    free(*slots);
    *slots = s;
    *mask = m - 1;
    return 0;
}

/* The next index stored under hash h from probe position *j on (*j moved past it), NIL at the
 * first empty slot: the candidates a lookup compares, in probe order. */
static inline uint32_t slot_next(const uint64_t *slots, size_t mask, uint32_t h, size_t *j) {
    for (uint64_t v; (v = slots[*j]) != 0;) {
        *j = (*j + 1) & mask;
        if ((uint32_t)(v >> 32) == h)
            return (uint32_t)v - 1;
    }
    return NIL;
}

static void slot_put(uint64_t *slots, size_t mask, uint32_t h, uint32_t idx) {
    size_t j = h & mask;
    while (slots[j])
        j = (j + 1) & mask;
    slots[j] = ((uint64_t)h << 32) | ((uint64_t)idx + 1);
}

static void slot_del(uint64_t *slots, size_t mask, uint32_t h, uint32_t idx) {
    size_t i = h & mask;
    uint64_t want = ((uint64_t)h << 32) | ((uint64_t)idx + 1);
    while (slots[i] != want)
        i = (i + 1) & mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint64_t v = slots[j];
        if (v == 0)
            break;
        size_t home = (size_t)(v >> 32) & mask;
        /* v may fill the hole at i unless its home lies cyclically in (i, j] */
        int between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            slots[i] = v;
            i = j;
        }
    }
    slots[i] = 0;
}

/* -- calls -------------------------------------------------------------------------------- */

static uint32_t call_find(mreg *r, PyObject *cid, uint32_t h) {
    if (r->cslot == NULL)
        return NIL;
    size_t j = h & r->cmask;
    for (uint32_t k; (k = slot_next(r->cslot, r->cmask, h, &j)) != NIL;)
        if (str_same(r->c[k].cid, cid))
            return k;
    return NIL;
}

static uint32_t call_hash(PyObject *cid) {
    Py_hash_t h = PyObject_Hash(cid); /* an exact str: cannot fail */
    uint64_t x = (uint64_t)h * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32);
}

/* The entry of call cid (exact str), made when absent; NIL on error. */
/* The array p of *cap elements of sz bytes with an element on its free list *free (linked
 * through the uint32_t at next_off in each): p itself when the list has one, else p doubled
 * (256 at first), the new elements zeroed (NULL objects, empty lengths) and put on the list,
 * *cap updated. NULL (p kept) when out of memory. The caller takes *free off the list. */
static void *pool_ready(void *p, uint32_t *cap, size_t sz, size_t next_off, uint32_t *free) {
    if (*free != NIL)
        return p;
    if (*cap >= UINT32_MAX / 2) {
        PyErr_NoMemory();
        return NULL;
    }
    uint32_t old = *cap, n = old ? old * 2 : 256;
    char *q = realloc(p, (size_t)n * sz);
    if (q == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memset(q + (size_t)old * sz, 0, (size_t)(n - old) * sz);
    for (uint32_t i = old; i < n; i++) {
        uint32_t next = i + 1 < n ? i + 1 : NIL;
        memcpy(q + (size_t)i * sz + next_off, &next, sizeof next);
    }
    *cap = n;
    *free = old;
    return q;
}

static uint32_t call_get(mreg *r, PyObject *cid, uint32_t h) {
    uint32_t k = call_find(r, cid, h);
    if (k != NIL)
        return k;
    if (slots_grow(&r->cslot, &r->cmask, r->ccount) < 0)
        return NIL;
    mcall *c = pool_ready(r->c, &r->ccap, sizeof *c, offsetof(mcall, flows.head), &r->cfree);
    if (c == NULL)
        return NIL;
    r->c = c;
    k = r->cfree;
    mcall *e = &c[k];
    r->cfree = e->flows.head;
    e->cid = Py_NewRef(cid);
    e->h = h;
    e->flows.head = e->flows.tail = NIL;
    e->n = 0;
    slot_put(r->cslot, r->cmask, h, k);
    r->ccount++;
    return k;
}

static void call_drop(mreg *r, uint32_t k) {
    mcall *e = &r->c[k];
    slot_del(r->cslot, r->cmask, e->h, k);
    Py_CLEAR(e->cid);
    e->flows.head = r->cfree;
    r->cfree = k;
    r->ccount--;
}

/* The links of flow i at offset off (one of the mlink members of mflow). */
static inline mlink *link_at(mflow *f, uint32_t i, size_t off) {
    return (mlink *)((char *)&f[i] + off);
}

static void list_append(mflow *f, mlist *l, size_t off, uint32_t i) {
    mlink *k = link_at(f, i, off);
    k->next = NIL;
    k->prev = l->tail;
    if (l->tail != NIL)
        link_at(f, l->tail, off)->next = i;
    else
        l->head = i;
    l->tail = i;
}

static void list_unlink(mflow *f, mlist *l, size_t off, uint32_t i) {
    mlink *k = link_at(f, i, off);
    if (k->prev != NIL)
        link_at(f, k->prev, off)->next = k->next;
    else
        l->head = k->next;
    if (k->next != NIL)
        link_at(f, k->next, off)->prev = k->prev;
    else
        l->tail = k->prev;
}

static void call_link(mreg *r, uint32_t k, uint32_t i) {
    r->f[i].call = k;
    list_append(r->f, &r->c[k].flows, offsetof(mflow, in_call), i);
    r->c[k].n++;
}

/* Out of its call's chain; the call's entry goes with its last flow. */
static void call_unlink(mreg *r, uint32_t i) {
    uint32_t k = r->f[i].call;
    list_unlink(r->f, &r->c[k].flows, offsetof(mflow, in_call), i);
    if (--r->c[k].n == 0)
        call_drop(r, k);
}

/* -- flows -------------------------------------------------------------------------------- */

static void order_unlink(mreg *r, uint32_t i) {
    list_unlink(r->f, &r->ord, offsetof(mflow, ord), i);
}

static void order_append(mreg *r, uint32_t i) {
    list_append(r->f, &r->ord, offsetof(mflow, ord), i);
}

static uint32_t flow_find(const mreg *r, const char *ip, size_t n, long long port, uint32_t h) {
    if (r->fslot == NULL)
        return NIL;
    size_t j = h & r->fmask;
    for (uint32_t i; (i = slot_next(r->fslot, r->fmask, h, &j)) != NIL;) {
        const mflow *f = &r->f[i];
        if (f->port == port && f->iplen == n && memcmp(fip(f), ip, n) == 0)
            return i;
    }
    return NIL;
}

static int set_codecs(mflow *f, const char *blob, uint32_t n) {
    if (f->clen > CODECS_INLINE && n <= f->clen && n > CODECS_INLINE) {
        memcpy(f->cheap, blob, n); /* reuse the heap room */
        f->clen = n;
        return 0;
    }
    if (f->clen > CODECS_INLINE)
        free(f->cheap);
    f->cheap = NULL;
    f->clen = 0;
    if (n > CODECS_INLINE) {
        if ((f->cheap = malloc(n)) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(f->cheap, blob, n);
    } else if (n) {
        memcpy(f->cbuf, blob, n);
    }
    f->clen = n;
    return 0;
}

static void flow_remove(mreg *r, uint32_t i) {
    mflow *f = &r->f[i];
    slot_del(r->fslot, r->fmask, f->h, i);
    order_unlink(r, i);
    call_unlink(r, i);
    Py_CLEAR(f->kind);
    Py_CLEAR(f->media);
    if (f->iplen > IP_INLINE)
        free(f->ipheap);
    if (f->clen > CODECS_INLINE)
        free(f->cheap);
    f->iplen = f->clen = 0;
    f->ord.next = r->ffree;
    r->ffree = i;
    r->fcount--;
}

/* register(): kind, call_id and media exact strs (borrowed), codecs packed (see pack_*). */
static int reg_flow(mreg *r, const char *ip, size_t iplen, long long port, PyObject *kind,
                    PyObject *cid, uint32_t ch, PyObject *media, const char *codecs,
                    uint32_t clen, i128 expires) {
    if (iplen > UINT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "MediaFlow.ip too long");
        return -1;
    }
    uint32_t h = key_hash(ip, iplen, port);
    uint32_t i = flow_find(r, ip, iplen, port, h);
    if (i != NIL) {
        mflow *f = &r->f[i];
        if (set_codecs(f, codecs, clen) < 0)
            return -1;
        if (!str_same(r->c[f->call].cid, cid)) {
            uint32_t k = call_get(r, cid, ch); /* before the old call may go: no reuse clash */
            if (k == NIL)
                return -1;
            call_unlink(r, i);
            call_link(r, k, i);
        }
        Py_SETREF(f->kind, Py_NewRef(kind));
        Py_SETREF(f->media, Py_NewRef(media));
        f->expires = expires;
        order_unlink(r, i);
        order_append(r, i);
    } else {
        if (slots_grow(&r->fslot, &r->fmask, r->fcount) < 0)
            return -1;
        uint32_t k = call_get(r, cid, ch);
        if (k == NIL)
            return -1;
        mflow *nf = pool_ready(r->f, &r->fcap, sizeof *nf, offsetof(mflow, ord.next), &r->ffree);
        if (nf == NULL)
            goto unused_call;
        r->f = nf;
        i = r->ffree;
        mflow *f = &nf[i];
        if (iplen > IP_INLINE) {
            if ((f->ipheap = malloc(iplen)) == NULL) {
                PyErr_NoMemory();
                goto unused_call;
            }
            memcpy(f->ipheap, ip, iplen);
        } else {
            memcpy(f->ipbuf, ip, iplen);
        }
        f->iplen = (uint32_t)iplen;
        f->clen = 0;
        if (set_codecs(f, codecs, clen) < 0) {
            if (f->iplen > IP_INLINE)
                free(f->ipheap);
            f->iplen = 0;
            goto unused_call;
        }
        r->ffree = f->ord.next;
        f->port = port;
        f->expires = expires;
        f->h = h;
        f->kind = Py_NewRef(kind);
        f->media = Py_NewRef(media);
        slot_put(r->fslot, r->fmask, h, i);
        order_append(r, i);
        call_link(r, k, i);
        r->fcount++;
    }
    r->registered++;
    while ((Py_ssize_t)r->fcount > r->max_flows && r->ord.head != NIL) {
        flow_remove(r, r->ord.head); /* the least recently registered */
        r->evicted++;
    }
    return 0;
unused_call: {
    uint32_t k = call_find(r, cid, ch); /* made above for this flow: let it go again */
    if (k != NIL && r->c[k].n == 0)
        call_drop(r, k);
    return -1;
}
}

/* Packed codecs: per entry a uint32 key length, a uint32 value length, the key's and the
 * value's UTF-8 bytes. */
typedef struct {
    char *p;
    size_t n, cap;
    char stack[256];
} pack;

static int pack_put(pack *b, const char *k, size_t kn, const char *v, size_t vn) {
    if (kn > UINT32_MAX / 4 || vn > UINT32_MAX / 4) {
        PyErr_SetString(PyExc_ValueError, "MediaFlow.codecs entry too long");
        return -1;
    }
    size_t need = b->n + 8 + kn + vn;
    if (need > UINT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "MediaFlow.codecs too long");
        return -1;
    }
    if (need > b->cap) {
        size_t cap = need * 2;
        char *p = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
        if (p == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (b->p == b->stack)
            memcpy(p, b->stack, b->n);
        b->p = p;
        b->cap = cap;
    }
    uint32_t l[2] = {(uint32_t)kn, (uint32_t)vn};
    memcpy(b->p + b->n, l, 8);
    memcpy(b->p + b->n + 8, k, kn);
    memcpy(b->p + b->n + 8 + kn, v, vn);
    b->n = need;
    return 0;
}

static void pack_init(pack *b) {
    b->p = b->stack;
    b->n = 0;
    b->cap = sizeof b->stack;
}

static void pack_free(pack *b) {
    if (b->p != b->stack)
        free(b->p);
}

static PyObject *unpack_codecs(const char *p, uint32_t n) {
    PyObject *d = PyDict_New();
    for (uint32_t at = 0; d != NULL && at < n;) {
        uint32_t l[2];
        memcpy(l, p + at, 8);
        PyObject *k = PyUnicode_DecodeUTF8(p + at + 8, l[0], "surrogatepass");
        PyObject *v = k == NULL ? NULL : PyUnicode_DecodeUTF8(p + at + 8 + l[0], l[1], "surrogatepass");
        if (v == NULL || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
        at += 8 + l[0] + l[1];
    }
    return d;
}

/* An int of up to 128 bits (OverflowError beyond). */
static int as_i128(PyObject *o, i128 *v, const char *what) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "MediaFlow.%s must be an int", what);
        return -1;
    }
    int over;
    long long x = PyLong_AsLongLongAndOverflow(o, &over);
    if (!over) {
        *v = x;
        return x == -1 && PyErr_Occurred() ? -1 : 0;
    }
    PyObject *sh = PyLong_FromLong(64), *mask = PyLong_FromUnsignedLongLong(UINT64_MAX);
    PyObject *hi = sh == NULL ? NULL : PyNumber_Rshift(o, sh);
    PyObject *lo = mask == NULL ? NULL : PyNumber_And(o, mask);
    long long h = hi == NULL ? -1 : PyLong_AsLongLong(hi);
    unsigned long long l = lo == NULL ? 0 : PyLong_AsUnsignedLongLong(lo);
    Py_XDECREF(sh);
    Py_XDECREF(mask);
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    if (PyErr_Occurred())
        return -1;
    *v = (i128)(((unsigned __int128)(uint64_t)h << 64) | l);
    return 0;
}

static PyObject *from_i128(i128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX)
        return PyLong_FromLongLong((long long)v);
    PyObject *hi = PyLong_FromLongLong((long long)(v >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)(uint64_t)v);
    PyObject *sh = PyLong_FromLong(64);
    PyObject *t = hi && sh ? PyNumber_Lshift(hi, sh) : NULL;
    PyObject *out = t && lo ? PyNumber_Or(t, lo) : NULL;
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(sh);
    Py_XDECREF(t);
    return out;
}

/* A MediaFlow of flow i (a new object). */
static PyObject *flow_obj(mreg *r, uint32_t i) {
    if (r->flow_type == NULL) { /* cleared by the collector */
        PyErr_SetString(PyExc_RuntimeError, "MediaTable without its MediaFlow class");
        return NULL;
    }
    const mflow *f = &r->f[i];
    PyObject *v[7] = {PyUnicode_DecodeUTF8(fip(f), f->iplen, "surrogatepass"),
                      PyLong_FromLongLong(f->port),
                      Py_NewRef(f->kind),
                      Py_NewRef(r->c[f->call].cid),
                      Py_NewRef(f->media),
                      unpack_codecs(fcodecs(f), f->clen),
                      from_i128(f->expires)};
    PyObject *o = NULL;
    if (v[0] != NULL && v[1] != NULL && v[5] != NULL && v[6] != NULL)
        o = PyObject_Vectorcall(r->flow_type, v, 7, NULL);
    for (int k = 0; k < 7; k++)
        Py_XDECREF(v[k]);
    return o;
}

/* end_call(): the call's flows expire at `expires` at the latest; the call queued. */
static int end_call(mreg *r, PyObject *cid, i128 expires) {
    uint32_t k = call_find(r, cid, call_hash(cid));
    if (k != NIL)
        for (uint32_t i = r->c[k].flows.head; i != NIL; i = r->f[i].in_call.next)
            if (expires < r->f[i].expires)
                r->f[i].expires = expires;
    if (r->elen == r->emax) { /* deque(maxlen): the oldest drops out */
        Py_CLEAR(r->e[r->ehead].cid);
        r->ehead = (r->ehead + 1) % r->ecap;
        r->elen--;
    }
    if (r->elen == r->ecap) {
        size_t cap = r->ecap ? r->ecap * 2 : 64;
        if (cap > r->emax)
            cap = r->emax;
        mended *e = malloc(cap * sizeof *e);
        if (e == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t j = 0; j < r->elen; j++)
            e[j] = r->e[(r->ehead + j) % r->ecap];
        free(r->e);
        r->e = e;
        r->ecap = cap;
        r->ehead = 0;
    }
    mended *slot = &r->e[(r->ehead + r->elen) % r->ecap];
    slot->expires = expires;
    slot->cid = Py_NewRef(cid);
    r->elen++;
    return 0;
}

static Py_ssize_t expire(mreg *r, i128 now) {
    Py_ssize_t n = 0;
    while (r->elen && r->e[r->ehead].expires <= now) {
        PyObject *cid = r->e[r->ehead].cid;
        r->e[r->ehead].cid = NULL;
        r->ehead = (r->ehead + 1) % r->ecap;
        r->elen--;
        uint32_t k = call_find(r, cid, call_hash(cid));
        for (uint32_t i = k == NIL ? NIL : r->c[k].flows.head; i != NIL;) {
            uint32_t nx = r->f[i].in_call.next;
            int last = r->c[k].n == 1;
            if (r->f[i].expires <= now) {
                flow_remove(r, i); /* the call's entry goes with its last flow */
                n++;
                if (last)
                    break;
            }
            i = nx;
        }
        Py_DECREF(cid);
    }
    while (r->ord.head != NIL && r->f[r->ord.head].expires <= now) { /* oldest registration first */
        flow_remove(r, r->ord.head);
        n++;
    }
    r->expired += n;
    return n;
}

/* -- the batch path ----------------------------------------------------------------------- */

int otus_sip_mreg_sdp(PyObject *o, const sip_msums *ms, PyObject *call_id, long long expires) {
    mreg *r = (mreg *)o;
    PyObject *cid = exact_str(call_id, "call_id");
    if (cid == NULL)
        return -1;
    uint32_t ch = call_hash(cid);
    int rc = 0;
    pack b;
    pack_init(&b);
    for (int m = 0; rc == 0 && m < ms->n; m++) {
        const sip_msum *s = &ms->m[m];
        b.n = 0;
        for (int k = s->c0; rc == 0 && k < s->c0 + s->nc; k++)
            rc = pack_put(&b, ms->pt[k].p, (size_t)ms->pt[k].n, ms->enc[k].p,
                          (size_t)ms->enc[k].n);
        PyObject *media = rc == 0 ? otus_sip_small_str(s->media) : NULL;
        if (media == NULL) {
            rc = -1;
            break;
        }
        rc = reg_flow(r, s->addr.p, (size_t)s->addr.n, s->port, s->mux ? s_rtp_rtcp : s_rtp,
                      cid, ch, media, b.p, (uint32_t)b.n, expires);
        if (rc == 0 && !s->mux)
            rc = reg_flow(r, s->raddr.p, (size_t)s->raddr.n, s->rport, s_rtcp, cid, ch, media,
                          b.p, (uint32_t)b.n, expires);
        Py_DECREF(media);
    }
    pack_free(&b);
    Py_DECREF(cid);
    return rc;
}

int otus_sip_mreg_end(PyObject *o, PyObject *call_id, long long expires) {
    PyObject *cid = exact_str(call_id, "call_id");
    if (cid == NULL)
        return -1;
    int rc = end_call((mreg *)o, cid, expires);
    Py_DECREF(cid);
    return rc;
}

/* -- the Python type ---------------------------------------------------------------------- */

static PyTypeObject mreg_type;

/* 1 when the batch path may write o's table directly: a MediaTable whose register and
 * end_call are the table's own (a subclass overriding them gets its calls through Python). */
int otus_sip_mreg_check(PyObject *o) {
    if (!PyObject_TypeCheck(o, &mreg_type))
        return 0;
    if (Py_TYPE(o) == &mreg_type)
        return 1;
    static const char *const names[] = {"register", "end_call"};
    for (int k = 0; k < 2; k++) {
        PyObject *name = PyUnicode_InternFromString(names[k]);
        if (name == NULL) {
            PyErr_Clear();
            return 0;
        }
        PyObject *mine = _PyType_Lookup(Py_TYPE(o), name); /* borrowed; no exception */
        PyObject *base = _PyType_Lookup(&mreg_type, name);
        Py_DECREF(name);
        if (mine == NULL || mine != base)
            return 0;
    }
    return 1;
}

static int mreg_init(mreg *r, PyObject *args, PyObject *kw) {
    static char *names[] = {"max_flows", "flow_type", NULL};
    Py_ssize_t max_flows = 200000;
    PyObject *flow_type;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "nO:MediaTable", names, &max_flows, &flow_type))
        return -1;
    if (r->f != NULL || r->e != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "MediaTable initialised twice");
        return -1;
    }
    r->max_flows = max_flows;
    r->emax = max_flows > 1024 ? (size_t)max_flows : 1024;
    Py_XSETREF(r->flow_type, Py_NewRef(flow_type));
    return 0;
}

static PyObject *mreg_new(PyTypeObject *t, PyObject *args, PyObject *kw) {
    (void)args;
    (void)kw;
    mreg *r = (mreg *)t->tp_alloc(t, 0);
    if (r == NULL)
        return NULL;
    r->ffree = r->ord.head = r->ord.tail = r->cfree = NIL;
    r->emax = 1024;
    return (PyObject *)r;
}

static int mreg_traverse(mreg *r, visitproc visit, void *arg) {
    Py_VISIT(r->flow_type); /* a subclass's type is visited by CPython's subtype_traverse */
    return 0;
}

static int mreg_clear(mreg *r) {
    Py_CLEAR(r->flow_type);
    return 0;
}

static void mreg_dealloc(mreg *r) {
    PyObject_GC_UnTrack(r);
    for (uint32_t i = r->ord.head; i != NIL;) {
        uint32_t nx = r->f[i].ord.next;
        mflow *f = &r->f[i];
        Py_CLEAR(f->kind);
        Py_CLEAR(f->media);
        if (f->iplen > IP_INLINE)
            free(f->ipheap);
        if (f->clen > CODECS_INLINE)
            free(f->cheap);
        i = nx;
    }
    for (uint32_t k = 0; k < r->ccap; k++)
        Py_CLEAR(r->c[k].cid);
    for (size_t j = 0; j < r->elen; j++)
        Py_CLEAR(r->e[(r->ehead + j) % r->ecap].cid);
    free(r->f);
    free(r->fslot);
    free(r->c);
    free(r->cslot);
    free(r->e);
    Py_CLEAR(r->flow_type);
    Py_TYPE(r)->tp_free((PyObject *)r); /* a subclass's type: subtype_dealloc lets it go */
}

static PyObject *get_attr(PyObject *o, const char *name) { return PyObject_GetAttrString(o, name); }

static int as_ll(PyObject *o, long long *v, const char *what) {
    if (!PyLong_Check(o)) {
        PyErr_Format(PyExc_TypeError, "MediaFlow.%s must be an int", what);
        return -1;
    }
    *v = PyLong_AsLongLong(o);
    return *v == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *mreg_register(mreg *r, PyObject *flow) {
    static const char *const names[7] = {"ip", "port", "kind", "call_id", "media", "codecs",
                                         "expires_ns"};
    PyObject *v[7] = {NULL};
    PyObject *res = NULL;
    pack b;
    pack_init(&b);
    for (int k = 0; k < 7; k++)
        if ((v[k] = get_attr(flow, names[k])) == NULL)
            goto done;
    long long port;
    i128 expires;
    if (as_ll(v[1], &port, "port") < 0 || as_i128(v[6], &expires, "expires_ns") < 0)
        goto done;
    for (int k = 2; k < 5; k++)
        Py_SETREF(v[k], exact_str(v[k], names[k]));
    if (v[2] == NULL || v[3] == NULL || v[4] == NULL)
        goto done;
    if (!PyUnicode_Check(v[0]) || !PyDict_Check(v[5])) {
        PyErr_SetString(PyExc_TypeError, "MediaFlow.ip must be a str and codecs a dict");
        goto done;
    }
    Py_ssize_t iplen;
    const char *ip = PyUnicode_AsUTF8AndSize(v[0], &iplen);
    if (ip == NULL)
        goto done;
    Py_ssize_t pos = 0;
    PyObject *key, *val;
    while (PyDict_Next(v[5], &pos, &key, &val)) {
        Py_ssize_t kn, vn;
        const char *kp = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &kn) : NULL;
        const char *vp = PyUnicode_Check(val) ? PyUnicode_AsUTF8AndSize(val, &vn) : NULL;
        if (kp == NULL || vp == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "MediaFlow.codecs must map str to str");
            goto done;
        }
        if (pack_put(&b, kp, (size_t)kn, vp, (size_t)vn) < 0)
            goto done;
    }
    if (reg_flow(r, ip, (size_t)iplen, port, v[2], v[3], call_hash(v[3]), v[4], b.p,
                 (uint32_t)b.n, expires) == 0)
        res = Py_NewRef(Py_None);
done:
    pack_free(&b);
    for (int k = 0; k < 7; k++)
        Py_XDECREF(v[k]);
    return res;
}

static PyObject *mreg_lookup(mreg *r, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "lookup(ip, port)");
        return NULL;
    }
    if (!PyUnicode_Check(args[0]) || !PyLong_Check(args[1]))
        Py_RETURN_NONE;
    Py_ssize_t n;
    const char *ip = PyUnicode_AsUTF8AndSize(args[0], &n);
    int overflow;
    long long port = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (ip == NULL || overflow) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    uint32_t i = flow_find(r, ip, (size_t)n, port, key_hash(ip, (size_t)n, port));
    if (i == NIL)
        Py_RETURN_NONE;
    return flow_obj(r, i);
}

/* The call's entry for a call_id argument (NIL when none; *err on error). */
static uint32_t call_of(mreg *r, PyObject *call_id, int *err) {
    *err = 0;
    if (!PyUnicode_Check(call_id))
        return NIL;
    PyObject *cid = exact_str(call_id, "call_id");
    if (cid == NULL) {
        *err = 1;
        return NIL;
    }
    uint32_t k = call_find(r, cid, call_hash(cid));
    Py_DECREF(cid);
    return k;
}

static PyObject *mreg_flows_of(mreg *r, PyObject *call_id) {
    int err;
    uint32_t k = call_of(r, call_id, &err);
    if (err)
        return NULL;
    PyObject *out = PyList_New(0);
    for (uint32_t i = k == NIL ? NIL : r->c[k].flows.head; out != NULL && i != NIL; i = r->f[i].in_call.next) {
        PyObject *o = flow_obj(r, i);
        if (o == NULL || PyList_Append(out, o) < 0)
            Py_CLEAR(out);
        Py_XDECREF(o);
    }
    return out;
}

static PyObject *mreg_end_call(mreg *r, PyObject *const *args, Py_ssize_t nargs) {
    i128 expires;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "end_call(call_id, expires_ns)");
        return NULL;
    }
    if (as_i128(args[1], &expires, "expires_ns") < 0)
        return NULL;
    PyObject *cid = exact_str(args[0], "call_id");
    int rc = cid == NULL ? -1 : end_call(r, cid, expires);
    Py_XDECREF(cid);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *mreg_remove_call(mreg *r, PyObject *call_id) {
    int err;
    uint32_t k = call_of(r, call_id, &err);
    if (err)
        return NULL;
    while (k != NIL) {
        int last = r->c[k].n == 1;
        flow_remove(r, r->c[k].flows.head);
        r->expired++;
        if (last)
            break;
    }
    Py_RETURN_NONE;
}

static PyObject *mreg_expire(mreg *r, PyObject *now) {
    i128 t;
    if (as_i128(now, &t, "now_ns") < 0)
        return NULL;
    return PyLong_FromSsize_t(expire(r, t));
}

static PyObject *mreg_stats(mreg *r, PyObject *unused) {
    (void)unused;
    return Py_BuildValue("{s:I,s:L,s:L,s:L}", "media.active", r->fcount, "media.registered",
                         r->registered, "media.evicted", r->evicted, "media.expired", r->expired);
}

static PyObject *mreg_flows(mreg *r, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(0);
    for (uint32_t i = r->ord.head; out != NULL && i != NIL; i = r->f[i].ord.next) {
        PyObject *o = flow_obj(r, i);
        if (o == NULL || PyList_Append(out, o) < 0)
            Py_CLEAR(out);
        Py_XDECREF(o);
    }
    return out;
}

static PyObject *mreg_calls(mreg *r, PyObject *unused) {
    (void)unused;
    PyObject *out = PyDict_New();
    for (uint32_t k = 0; out != NULL && k < r->ccap; k++) {
        if (r->c[k].cid == NULL)
            continue;
        PyObject *keys = PyList_New(0);
        for (uint32_t i = r->c[k].flows.head; keys != NULL && i != NIL; i = r->f[i].in_call.next) {
            PyObject *key = Py_BuildValue("(NL)",
                                          PyUnicode_DecodeUTF8(fip(&r->f[i]), r->f[i].iplen,
                                                               "surrogatepass"),
                                          r->f[i].port);
            if (key == NULL || PyList_Append(keys, key) < 0)
                Py_CLEAR(keys);
            Py_XDECREF(key);
        }
        if (keys == NULL || PyDict_SetItem(out, r->c[k].cid, keys) < 0)
            Py_CLEAR(out);
        Py_XDECREF(keys);
    }
    return out;
}

static PyObject *mreg_ended(mreg *r, PyObject *unused) {
    (void)unused;
    PyObject *out = PyList_New(0);
    for (size_t j = 0; out != NULL && j < r->elen; j++) {
        const mended *e = &r->e[(r->ehead + j) % r->ecap];
        PyObject *t = Py_BuildValue("(NO)", from_i128(e->expires), e->cid);
        if (t == NULL || PyList_Append(out, t) < 0)
            Py_CLEAR(out);
        Py_XDECREF(t);
    }
    return out;
}

static Py_ssize_t mreg_len(mreg *r) { return (Py_ssize_t)r->fcount; }

static PyMethodDef mreg_methods[] = {
    {"register", (PyCFunction)mreg_register, METH_O, "register(flow) -> None"},
    {"lookup", (PyCFunction)(void (*)(void))mreg_lookup, METH_FASTCALL,
     "lookup(ip, port) -> MediaFlow | None"},
    {"flows_of", (PyCFunction)mreg_flows_of, METH_O, "flows_of(call_id) -> list[MediaFlow]"},
    {"end_call", (PyCFunction)(void (*)(void))mreg_end_call, METH_FASTCALL,
     "end_call(call_id, expires_ns) -> None"},
    {"remove_call", (PyCFunction)mreg_remove_call, METH_O, "remove_call(call_id) -> None"},
    {"expire", (PyCFunction)mreg_expire, METH_O, "expire(now_ns) -> int"},
    {"stats", (PyCFunction)mreg_stats, METH_NOARGS, "stats() -> dict[str, int]"},
    {"flows", (PyCFunction)mreg_flows, METH_NOARGS, "flows() -> list[MediaFlow], oldest first"},
    {"calls", (PyCFunction)mreg_calls, METH_NOARGS,
     "calls() -> dict[str, list[tuple[str, int]]]"},
    {"ended", (PyCFunction)mreg_ended, METH_NOARGS, "ended() -> list[tuple[int, str]]"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef mreg_members[] = {
    {"max_flows", T_PYSSIZET, offsetof(mreg, max_flows), 0, "flows kept at most"},
    {"registered", T_LONGLONG, offsetof(mreg, registered), 0, "registrations"},
    {"evicted", T_LONGLONG, offsetof(mreg, evicted), 0, "flows evicted at max_flows"},
    {"expired", T_LONGLONG, offsetof(mreg, expired), 0, "flows expired or removed"},
    {NULL, 0, 0, 0, NULL},
};

static PySequenceMethods mreg_seq = {.sq_length = (lenfunc)mreg_len};

static PyTypeObject mreg_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "otus_parser_sip._native._sip_fast.MediaTable",
    .tp_basicsize = sizeof(mreg),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "MediaTable(max_flows, flow_type): the media flow registry's C table.",
    .tp_new = mreg_new,
    .tp_init = (initproc)mreg_init,
    .tp_dealloc = (destructor)mreg_dealloc,
    .tp_traverse = (traverseproc)mreg_traverse,
    .tp_clear = (inquiry)mreg_clear,
    .tp_methods = mreg_methods,
    .tp_members = mreg_members,
    .tp_as_sequence = &mreg_seq,
};

int otus_sip_mreg_ready(PyObject *module) {
    if (s_rtp == NULL) {
        s_rtp = PyUnicode_InternFromString("rtp");
        s_rtcp = PyUnicode_InternFromString("rtcp");
        s_rtp_rtcp = PyUnicode_InternFromString("rtp+rtcp");
        if (!s_rtp || !s_rtcp || !s_rtp_rtcp)
            return -1;
    }
    if (PyType_Ready(&mreg_type) < 0)
        return -1;
    Py_INCREF(&mreg_type);
    if (PyModule_AddObject(module, "MediaTable", (PyObject *)&mreg_type) < 0) {
        Py_DECREF(&mreg_type);
        return -1;
    }
    return 0;
}
