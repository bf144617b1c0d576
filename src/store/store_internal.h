/* What the library's other modules need of the project store. Internal. */
#ifndef ET_STORE_INTERNAL_H
#define ET_STORE_INTERNAL_H

#include "edgetrain/store.h"

#include <sqlite3.h>

struct et_project {
    sqlite3 *db;
    char root[3072]; /* absolute; longer project paths are refused */
};

/* Formats a SQLite failure into err with a short context ("inserting sample"). */
et_status et_db_error(et_project *p, et_error *err, const char *what);

/* Runs SQL without results. */
et_status et_db_exec(et_project *p, const char *sql, et_error *err);

#endif
