/* JSON text in both directions, as orjson does it: label names and values escaped into a
 * record's JSON value (the length pass and the writer), and the parser of serialised labels
 * (Record.serialized_labels(): a compact JSON object of strings) into the per-record label
 * table the body encoder writes the value and the headers from.
 */
#ifndef OTUS_KAFKA_JSON_H
#define OTUS_KAFKA_JSON_H

#include "kafka_common.h"

/* -- JSON strings as orjson writes them -------------------------------------------------- */

/* Bytes written for each input byte: 1, 2 (\" \\ \b \t \n \f \r) or 6 (\u00XX). */
extern OTUS_KAFKA_HIDDEN unsigned char otus_kafka_esc_len[256];

/* Fill otus_kafka_esc_len (module init). */
OTUS_KAFKA_HIDDEN void otus_kafka_json_init(void);

/* Eight bytes at a time: does any need escaping (below 0x20, '"' or '\\')? Exact (the
 * classic has-less / has-zero-byte tests; bytes >= 0x80 never match). */
static inline int word_needs_escape(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t below = (w - ones * 0x20) & ~w & highs;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t quote = (q - ones) & ~q & highs, backslash = (b - ones) & ~b & highs;
    return (below | quote | backslash) != 0;
}

static inline Py_ssize_t json_str_len(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t len = n + 2, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_needs_escape(w))
            for (int k = 0; k < 8; k++) len += otus_kafka_esc_len[s[i + k]] - 1;
    }
    for (; i < n; i++) len += otus_kafka_esc_len[s[i]] - 1;
    return len;
}

/* The JSON string of the n bytes at s (valid UTF-8), quotes included, at p; past its end. */
OTUS_KAFKA_HIDDEN char *otus_kafka_json_str_put(char *p, const unsigned char *s, Py_ssize_t n);

/* otus_kafka_json_str_put() when the escaped length is known: text without escapes is one copy. */
static inline char *json_str_put_known(char *p, const unsigned char *s, Py_ssize_t n,
                                       Py_ssize_t json_len) {
    if (json_len != n + 2) return otus_kafka_json_str_put(p, s, n);
    *p++ = '"';
    memcpy(p, s, (size_t)n);
    p += n;
    *p++ = '"';
    return p;
}

/* -- per-record scratch: the labels' UTF-8 ------------------------------------------------ */

typedef struct {
    const unsigned char *name, *value;
    Py_ssize_t name_len, value_len;
    Py_ssize_t name_json, value_json; /* their lengths as JSON strings, quotes included */
    uint64_t print;                   /* serialised labels: the name's fingerprint */
} label_t;

/* The labels of the record being encoded (otus_kafka_labels_reserve() first). */
extern OTUS_KAFKA_HIDDEN label_t *otus_kafka_labels;

/* Room for n labels in otus_kafka_labels: 0, or -1 out of memory (no error set). */
OTUS_KAFKA_HIDDEN int otus_kafka_labels_reserve(Py_ssize_t n);

/* More serialised labels than this go to the Python path (the duplicate check is quadratic). */
#define LABELS_MAX 256

/* The labels of serialised labels ``{"name":"value",...}`` (compact: no whitespace; string
 * values only; no name twice, since the Python path's dict keeps one; at most LABELS_MAX) into
 * otus_kafka_labels, and the bytes of their headers into *headers: their count; -1 when the
 * JSON is anything else (no error set: the record goes to the Python path); -2 out of memory
 * (error set). */
OTUS_KAFKA_HIDDEN Py_ssize_t otus_kafka_labels_parse(const unsigned char *s, Py_ssize_t n,
                                                     Py_ssize_t *headers);

#endif
