/* Status codes and error messages. */
#include "edgetrain/core.h"

#include <stdarg.h>
#include <stdio.h>

const char *et_status_str(et_status code)
{
    switch (code) {
    case ET_OK: return "ok";
    case ET_ENOMEM: return "out of memory";
    case ET_EIO: return "I/O error";
    case ET_EINVAL: return "bad input";
    case ET_ENOTFOUND: return "not found";
    case ET_ECORRUPT: return "corrupt data";
    case ET_EDB: return "database error";
    case ET_EINTR: return "interrupted";
    case ET_EEXIST: return "already exists";
    case ET_EPROBLEMS: return "some inputs were skipped";
    case ET_EVERSION: return "made by a newer edgetrain";
    case ET_EREFUSED: return "refused";
    default: return "unknown error";
    }
}

et_status et_error_set(et_error *err, et_status code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
