/* SIP header indexer (RFC 3261 7.3): the fast path of otus_parser_sip._message.
 *
 * Scans buf[0:hend] (the header block without the final CRLFCRLF) once. Writes, per header
 * line, the span of the name (trailing whitespace removed), the span of the value (surrounding
 * whitespace removed) and the id of the canonical name (index into SIP_NAMES of _scan.py,
 * compact forms folded; -1 when unknown). Returns the header count, or -1 whenever the block
 * needs the general Python path: a non-ASCII byte, a control character other than TAB, a
 * folded or colon-less or empty line, a line above max_line, or more than max_headers lines.
 * The Python path then gives the exact same result or the specific error.
 */
#include "sip_scan.h"

#include <string.h>

/* Must match SIP_NAMES in _scan.py (same order). */
static const char *const NAMES[] = {
    "via", "from", "to", "call-id", "cseq", "contact", "content-length", "content-type",
    "max-forwards", "user-agent", "server", "expires", "reason", "subject", "supported",
    "allow", "event", "route", "record-route", "p-asserted-identity", "date",
    "content-encoding", "allow-events", "refer-to", "referred-by", "session-expires",
    "identity", "accept-contact", "request-disposition", "reject-contact", "identity-info",
    "authorization", "www-authenticate", "proxy-authenticate", "proxy-authorization",
    "require", "proxy-require", "unsupported", "accept",
};
#define N_NAMES ((int)(sizeof(NAMES) / sizeof(NAMES[0])))

/* Compact forms (RFC 3261 7.3.3 and later registrations) as indexes into NAMES. */
static int compact_id(uint8_t c) {
    switch (c | 0x20) {
    case 'v': return 0;
    case 'f': return 1;
    case 't': return 2;
    case 'i': return 3;
    case 'm': return 5;
    case 'l': return 6;
    case 'c': return 7;
    case 's': return 13;
    case 'k': return 14;
    case 'o': return 16;
    case 'e': return 21;
    case 'u': return 22;
    case 'r': return 23;
    case 'b': return 24;
    case 'x': return 25;
    case 'y': return 26;
    case 'a': return 27;
    case 'd': return 28;
    case 'j': return 29;
    case 'n': return 30;
    default: return -1;
    }
}

static int name_id(const uint8_t *s, size_t n) {
    if (n == 1)
        return compact_id(s[0]);
    for (int k = 0; k < N_NAMES; k++) {
        const char *c = NAMES[k];
        size_t i = 0;
        for (; i < n; i++) {
            uint8_t b = s[i];
            if (b >= 'A' && b <= 'Z')
                b |= 0x20;
            if ((uint8_t)c[i] != b)
                break; /* also stops at the NUL of a shorter name */
        }
        if (i == n && c[n] == '\0')
            return k;
    }
    return -1;
}

static int is_ws(uint8_t c) { return c == ' ' || c == '\t'; }

int sip_scan(const uint8_t *buf, size_t hend, int32_t *out, int max_headers, int max_line) {
    /* Skip the start line (the caller parses it). */
    const uint8_t *first = memchr(buf, '\n', hend);
    size_t sl_end = first == NULL ? hend : (size_t)(first - buf);
    size_t pos;
    int count = 0, lines = 1;
    for (size_t i = 0; i < sl_end; i++)
        if (buf[i] >= 0x80)
            return -1; /* the start line must decode the same way too */
    if (first == NULL)
        return 0; /* start line only */
    pos = sl_end + 1;
    if (pos < 2 || buf[pos - 2] != '\r')
        return -1;
    while (pos <= hend) {
        size_t end = pos, colon = 0;
        int have_colon = 0;
        while (end < hend) {
            uint8_t c = buf[end];
            if (c == '\r') {
                if (end + 1 < hend && buf[end + 1] == '\n')
                    break;
                return -1;
            }
            if (c >= 0x80 || c == 0x7f || (c < 0x20 && c != '\t'))
                return -1;
            if (c == ':' && !have_colon) {
                have_colon = 1;
                colon = end;
            }
            end++;
        }
        if (++lines > max_headers + 1)
            return -1;
        if (end - pos > (size_t)max_line || end == pos || is_ws(buf[pos]) || !have_colon ||
            colon == pos)
            return -1;
        size_t ne = colon;
        while (ne > pos && is_ws(buf[ne - 1]))
            ne--;
        size_t vs = colon + 1, ve = end;
        while (vs < ve && is_ws(buf[vs]))
            vs++;
        while (ve > vs && is_ws(buf[ve - 1]))
            ve--;
        int32_t *o = out + (size_t)count * SIP_SCAN_FIELDS;
        o[0] = (int32_t)pos;
        o[1] = (int32_t)ne;
        o[2] = (int32_t)vs;
        o[3] = (int32_t)ve;
        o[4] = ne > pos ? name_id(buf + pos, ne - pos) : -1;
        count++;
        pos = end + 2;
    }
    return count;
}
