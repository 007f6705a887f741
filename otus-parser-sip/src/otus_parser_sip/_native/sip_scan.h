/* One-pass index of a SIP header block: start line end, header name/value spans, known ids. */
#ifndef OTUS_SIP_SCAN_H
#define OTUS_SIP_SCAN_H
#include <stddef.h>
#include <stdint.h>

/* Entries per header in the output array: name start, name end, value start, value end, id. */
#define SIP_SCAN_FIELDS 5

int sip_scan(const uint8_t *buf, size_t hend, int32_t *out, int max_headers, int max_line);

#endif
