/* A small RFC 4180 CSV reader (quoted fields, "" escapes, CRLF, UTF-8 BOM).
 * Internal. */
#ifndef ET_DATA_CSV_H
#define ET_DATA_CSV_H

#include "edgetrain/core.h"

typedef struct et_csv_row {
    int line;        /* 1-based line where the row starts */
    int n_fields;
    char **fields;   /* in the arena */
} et_csv_row;

/* Splits text (n bytes) into rows; blank lines are skipped. Everything is
 * allocated in a. Fails with ET_EINVAL naming name:LINE for an unterminated
 * quote or a stray character after a closing quote. */
et_status et_csv_parse(const char *text, size_t n, const char *name, et_arena *a,
                       et_csv_row **rows, size_t *n_rows, et_error *err);

#endif
