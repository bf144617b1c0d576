/*
 * edgetrain data: image decoding, IDX files, importing labelled images into
 * a project, and the data report (counts, sizes, problems).
 *
 *     et_import_options opt = et_import_defaults();
 *     opt.label = "shoe";
 *     et_import_result res;
 *     const char *paths[] = {"photos/shoes"};
 *     et_status rc = et_import(p, paths, 1, &opt, print_problem, NULL, &res, &err);
 *     // rc == ET_OK: everything imported; ET_EPROBLEMS: some files skipped, the
 *     // rest imported; other negative codes: nothing was imported.
 *
 * An import is one database transaction: interrupted (Ctrl-C) or killed,
 * the project holds all of it or none of it.
 */
#ifndef EDGETRAIN_DATA_H
#define EDGETRAIN_DATA_H

#include "edgetrain/core.h"
#include "edgetrain/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on what an import accepts (larger inputs are named as problems). */
#define ET_IMAGE_MAX_SIDE 16384
#define ET_IMAGE_MAX_PIXELS (64u * 1024u * 1024u)
#define ET_IMAGE_MAX_FILE_BYTES ((size_t)256 << 20)
#define ET_IDX_MAX_BYTES ((size_t)2 << 30)

/* ------------------------------------------------------------------------
 * Images. Pixels are 8-bit, interleaved (HWC), 1 (grey), 2 (grey+alpha),
 * 3 (RGB) or 4 (RGBA) channels, rows top to bottom.
 */
typedef struct et_image {
    int width, height, channels;
    uint8_t *pixels; /* owned; free with et_image_free */
} et_image;

void et_image_free(et_image *img);

/* Decodes an encoded image (PNG, JPEG, BMP, GIF (first frame), TGA, PNM P5/P6)
 * held in memory. name is used in messages. On failure *kind names the
 * problem ("empty", "unsupported", "truncated", "undecodable", "too-large")
 * and err says what is wrong; on success *format is "png", "jpeg", ... */
et_status et_image_decode(const uint8_t *bytes, size_t n, const char *name, et_image *out,
                          const char **format, const char **kind, et_error *err);

/* Writes img as a PNG file (temp file + rename). */
et_status et_image_write_png(const char *path, const et_image *img, et_error *err);

/* SHA-256 over width, height, channels and pixels: the identity of an image
 * for duplicate detection (the same picture saved twice has the same hash). */
void et_image_hash(const et_image *img, char out[65]);

/* ------------------------------------------------------------------------
 * IDX files (the MNIST format), plain or gzip-compressed. Only unsigned-byte
 * data (type 0x08) is accepted.
 */
typedef struct et_idx {
    int ndim;          /* 1..4 */
    uint32_t dims[4];  /* dims[0] is the item count */
    uint8_t *data;     /* dims[0] * ... bytes, owned */
    size_t bytes;
} et_idx;

et_status et_idx_read(const char *path, et_idx *out, et_error *err);
void et_idx_free(et_idx *idx);

/* ------------------------------------------------------------------------
 * Import.
 */
typedef struct et_import_options {
    const char *label;        /* label for every file; NULL = from class folders / CSV / IDX */
    et_category category;     /* ET_CATEGORY_NONE = from folder names / CSV, else split */
    double test_fraction;     /* share of testing samples when splitting (default 0.2) */
    bool strict;              /* any problem aborts the whole import */
    const char *const *label_names; /* names for IDX label values 0..n-1 (NULL = "0", "1", ...) */
    size_t n_label_names;
    const char *arguments;    /* the command line, recorded with the import (may be NULL) */
} et_import_options;

et_import_options et_import_defaults(void);

/* A problem with one input. file is the absolute path (for a CSV row
 * "/path/list.csv:LINE", for an image inside an IDX file "/path/file#N"), kind a short tag, message a sentence. Strings are only valid
 * during the callback / the lifetime of the report that holds them. */
typedef struct et_problem {
    const char *file;
    const char *label;   /* set for problems about a label (data report) */
    const char *kind;
    const char *message;
} et_problem;

typedef void (*et_problem_fn)(void *ctx, const et_problem *problem);

typedef struct et_import_result {
    int64_t files;       /* files and IDX images looked at */
    int64_t imported;    /* new samples */
    int64_t training;    /* ... of which training */
    int64_t testing;     /* ... of which testing */
    int64_t duplicates;  /* the same image with the same label was already there */
    int64_t skipped;     /* inputs with a problem (each reported to on_problem) */
    int64_t import_id;   /* 0 when nothing was written */
} et_import_result;

/* Imports every path (folder, image file, CSV or IDX file) into p. Problems
 * are reported through on_problem (may be NULL) as they are found. Returns
 * ET_OK, ET_EPROBLEMS (some inputs skipped; the rest imported, or nothing
 * when opt->strict), ET_EINTR (interrupted; nothing imported) or another
 * error (nothing imported). */
et_status et_import(et_project *p, const char *const *paths, size_t n_paths,
                    const et_import_options *opt, et_problem_fn on_problem, void *ctx,
                    et_import_result *result, et_error *err);

/* Loads a sample's pixels from the project store. */
et_status et_sample_load(et_project *p, const et_sample *s, et_image *out, et_error *err);

/* ------------------------------------------------------------------------
 * The data report.
 */
typedef struct et_label_count {
    const char *label;
    int64_t training, testing;
} et_label_count;

typedef struct et_size_count {
    int width, height;
    int64_t count;
} et_size_count;

typedef struct et_data_report {
    int64_t samples, training, testing;
    size_t n_labels;
    et_label_count *labels;     /* sorted by label */
    size_t n_sizes;
    et_size_count *sizes;       /* most common first */
    int64_t channels[5];        /* samples with 1..4 channels (index 0 unused) */
    double imbalance;           /* largest / smallest label count; 0 without samples */
    size_t n_problems;
    et_problem *problems;
    bool validated;             /* stored files were re-read and checked */
    et_arena arena;             /* owns everything above */
} et_data_report;

/* Thresholds of the data checks. */
#define ET_MIN_SAMPLES_PER_LABEL 10
#define ET_MAX_IMBALANCE 3.0

/* Builds the report. With validate, every stored file is read back and its
 * hash checked (a missing or altered file is a problem). */
et_status et_data_report_create(et_project *p, bool validate, et_data_report **out,
                                et_error *err);
void et_data_report_destroy(et_data_report *r);

/* Forgets the problems recorded by earlier imports. */
et_status et_data_forget_problems(et_project *p, et_error *err);

#ifdef __cplusplus
}
#endif
#endif
