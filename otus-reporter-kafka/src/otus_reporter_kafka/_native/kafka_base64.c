/* Base64 of raw payloads for the JSON value (declared in kafka_base64.h). */
#include "kafka_base64.h"

static const char b64_tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static char b64_pairs[4096][2]; /* 12 bits -> their two characters */

void otus_kafka_b64_init(void) {
    for (int v = 0; v < 4096; v++) {
        b64_pairs[v][0] = b64_tab[v >> 6];
        b64_pairs[v][1] = b64_tab[v & 63];
    }
}

char *otus_kafka_b64_put(char *p, const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        memcpy(p, b64_pairs[v >> 12], 2);
        memcpy(p + 2, b64_pairs[v & 0xFFF], 2);
        p += 4;
    }
    if (i < n) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        *p++ = b64_tab[v >> 18];
        *p++ = b64_tab[(v >> 12) & 63];
        *p++ = i + 1 < n ? b64_tab[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    return p;
}
