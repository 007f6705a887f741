/* Record.label on serialised labels (records.py, _label_in): one label's value found in the
 * compact JSON object of strings without decoding the others.
 *
 * key is the member name as JSON writes it plus ':' ("sip.method":). A match is a member only
 * right after '{' or ',': in valid JSON an escaped quote inside a string is preceded by a
 * backslash, and a string ending at ',' or '{' is followed by ',', ':' or '}', never by the
 * rest of a key. The value must be a string without escapes; anything else is left to the
 * caller (NotImplemented: decode them all), as is a value that is not valid UTF-8.
 */
#include "pyapi.h"

#include <string.h>

/* label_in(labels_json: bytes, key: bytes) -> str | None | NotImplemented */
PyObject *otus_label_in(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyBytes_CheckExact(args[0]) || !PyBytes_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "label_in(labels_json: bytes, key: bytes)");
        return NULL;
    }
    const char *j = PyBytes_AS_STRING(args[0]), *key = PyBytes_AS_STRING(args[1]);
    size_t n = (size_t)PyBytes_GET_SIZE(args[0]), klen = (size_t)PyBytes_GET_SIZE(args[1]);
    if (klen == 0)
        Py_RETURN_NOTIMPLEMENTED;
    const char *at = NULL;
    for (const char *p = j, *end = j + n; p < end;) {
        const char *hit = memmem(p, (size_t)(end - p), key, klen);
        if (hit == NULL)
            break;
        if (hit > j && (hit[-1] == '{' || hit[-1] == ',')) {
            at = hit;
            break;
        }
        p = hit + 1;
    }
    if (at == NULL)
        Py_RETURN_NONE;
    const char *start = at + klen + 1, *end = j + n;
    if (start > end || start[-1] != '"')
        Py_RETURN_NOTIMPLEMENTED;
    const char *close = memchr(start, '"', (size_t)(end - start));
    if (close == NULL || memchr(start, '\\', (size_t)(close - start)) != NULL)
        Py_RETURN_NOTIMPLEMENTED;
    PyObject *out = PyUnicode_DecodeUTF8(start, close - start, "strict");
    if (out == NULL && PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        Py_RETURN_NOTIMPLEMENTED;
    }
    return out;
}
