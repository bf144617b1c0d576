/* Shared between the import phases. Internal.
 *
 * An import runs in phases:
 *   gather   (import_gather.c) turns the paths into an ordered list of items:
 *            one per image file, per CSV row, per image inside an IDX file;
 *            inputs that are wrong before decoding (no label, bad CSV row,
 *            bad IDX file) become items that already carry their problem;
 *   decode   (import.c) decodes and hashes every image in parallel;
 *   resolve  finds duplicates and label conflicts, splits training/testing;
 *   store    writes new files to samples/, then all rows in one transaction.
 */
#ifndef ET_DATA_IMPORT_INTERNAL_H
#define ET_DATA_IMPORT_INTERNAL_H

#include "edgetrain/data.h"

typedef struct import_idx_set {
    const char *images_path; /* absolute */
    const char *labels_path; /* absolute, or NULL when every image takes opt->label */
    et_idx images;
    et_idx labels;
    int width, height, channels;
} import_idx_set;

typedef enum { ITEM_PENDING, ITEM_NEW, ITEM_DUPLICATE, ITEM_PROBLEM } item_state;

typedef struct import_item {
    const char *path;    /* absolute path of the file holding the image */
    const char *file;    /* what messages name: path, path#N, or csv:LINE */
    const char *label;   /* NULL when unknown */
    et_category category;
    int set;             /* index into the IDX sets, -1 for an image file */
    int64_t member;      /* image index inside the IDX file, -1 otherwise */
    item_state state;
    const char *kind;    /* problem tag when state == ITEM_PROBLEM */
    char *message;       /* malloc'ed problem text */
    char pixel_hash[65];
    char blob[65];
    const char *format;
    int width, height, channels;
    int64_t bytes;
} import_item;

typedef struct import_job {
    const et_import_options *opt;
    et_arena arena;
    import_item *items;
    size_t n_items, cap_items;
    import_idx_set *sets;
    size_t n_sets, cap_sets;
} import_job;

/* Appends an item (zeroed apart from the given fields); NULL when out of memory. */
import_item *import_add(import_job *job, const char *path, const char *file, const char *label,
                        et_category category);
/* Marks an item as a problem with a printf-style message. */
void import_fail(import_item *it, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Gathers the items for one command-line path. Fails (nothing gathered
 * matters then) only when the path does not exist or memory runs out. */
et_status import_gather(import_job *job, const char *path, et_error *err);

#endif
