/* CSV parsing for `import labels.csv`. Hand-written: no Debian C library
 * reads CSV with line numbers for errors, and the format is small. */
#include "data/csv.h"

#include <string.h>

typedef struct growbuf {
    char *p;
    size_t n, cap;
} growbuf;

static bool gb_push(et_arena *a, growbuf *g, char c)
{
    if (g->n + 1 >= g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        char *np = et_arena_alloc(a, cap);
        if (!np)
            return false;
        if (g->n)
            memcpy(np, g->p, g->n);
        g->p = np;
        g->cap = cap;
    }
    g->p[g->n++] = c;
    g->p[g->n] = '\0';
    return true;
}

et_status et_csv_parse(const char *text, size_t n, const char *name, et_arena *a,
                       et_csv_row **rows_out, size_t *n_rows_out, et_error *err)
{
    size_t i = 0;
    if (n >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3))
        i = 3;
    et_csv_row *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    int line = 1;
    while (i < n) {
        /* One row. */
        int row_line = line;
        char **fields = NULL;
        int n_fields = 0, cap_fields = 0;
        bool row_done = false;
        bool blank = true;
        while (!row_done) {
            growbuf f = {0};
            if (!gb_push(a, &f, 'x'))
                return et_error_set(err, ET_ENOMEM, "%s: out of memory", name);
            f.n = 0;
            f.p[0] = '\0';
            if (i < n && text[i] == '"') {
                int quote_line = line;
                blank = false;
                i++;
                for (;;) {
                    if (i >= n)
                        return et_error_set(err, ET_EINVAL,
                                            "%s:%d: quoted field is never closed", name,
                                            quote_line);
                    char c = text[i++];
                    if (c == '"') {
                        if (i < n && text[i] == '"') {
                            i++;
                        } else {
                            break;
                        }
                    }
                    if (c == '\n')
                        line++;
                    if (!gb_push(a, &f, c))
                        return et_error_set(err, ET_ENOMEM, "%s: out of memory", name);
                }
                if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
                    return et_error_set(err, ET_EINVAL,
                                        "%s:%d: unexpected character after a closing quote",
                                        name, line);
            } else {
                while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
                    if (!gb_push(a, &f, text[i++]))
                        return et_error_set(err, ET_ENOMEM, "%s: out of memory", name);
                }
                if (f.n)
                    blank = false;
            }
            if (n_fields == cap_fields) {
                int cap = cap_fields ? cap_fields * 2 : 4;
                char **nf = et_arena_alloc(a, sizeof *nf * (size_t)cap);
                if (!nf)
                    return et_error_set(err, ET_ENOMEM, "%s: out of memory", name);
                if (n_fields)
                    memcpy(nf, fields, sizeof *nf * (size_t)n_fields);
                fields = nf;
                cap_fields = cap;
            }
            fields[n_fields++] = f.p;
            if (i < n && text[i] == ',') {
                i++;
                blank = false;
                continue;
            }
            if (i < n && text[i] == '\r')
                i++;
            if (i < n && text[i] == '\n')
                i++;
            line++;
            row_done = true;
        }
        if (blank)
            continue;
        if (n_rows == cap_rows) {
            size_t cap = cap_rows ? cap_rows * 2 : 64;
            et_csv_row *nr = et_arena_alloc(a, sizeof *nr * cap);
            if (!nr)
                return et_error_set(err, ET_ENOMEM, "%s: out of memory", name);
            if (n_rows)
                memcpy(nr, rows, sizeof *nr * n_rows);
            rows = nr;
            cap_rows = cap;
        }
        rows[n_rows++] = (et_csv_row){.line = row_line, .n_fields = n_fields, .fields = fields};
    }
    *rows_out = rows;
    *n_rows_out = n_rows;
    return ET_OK;
}
