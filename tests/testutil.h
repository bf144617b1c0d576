/* Helpers shared by the tests: scratch folders, generated image and IDX
 * fixtures, and running the edgetrain binary. */
#ifndef ET_TESTUTIL_H
#define ET_TESTUTIL_H

#include "edgetrain/edgetrain.h"

#include <stdio.h>

/* A fresh empty folder for this test (under $ET_TEST_TMP or /tmp). Returns
 * a static buffer valid until the next call. */
const char *tu_tmpdir(void);

/* path = dir + "/" + rel, creating parent folders. Returns a static rotating buffer. */
const char *tu_path(const char *dir, const char *rel);

/* Writes bytes to a file (parents created). */
void tu_write(const char *path, const void *data, size_t n);
/* Reads a file whole; caller frees. */
unsigned char *tu_read(const char *path, size_t *n);
/* Copies a file. */
void tu_copy(const char *from, const char *to);
/* Truncates a file to n bytes. */
void tu_truncate(const char *path, size_t n);
size_t tu_file_size(const char *path);

/* A deterministic w x h x c test picture; seed changes its content. */
unsigned char *tu_pixels(int w, int h, int c, unsigned seed);

/* Writes an image of format "png", "jpg", "bmp", "tga", "pgm"/"ppm" (PNM P5/P6)
 * or "gif" (grey or RGB, palette of 256) holding tu_pixels(w, h, c, seed). */
void tu_image(const char *path, const char *format, int w, int h, int c, unsigned seed);

/* Writes an MNIST-style pair: images (n x h x w) and labels (n), gzip-compressed
 * when gz. labels[i] = i % classes; image i = tu_pixels(w, h, 1, seed + i). */
void tu_idx_pair(const char *images_path, const char *labels_path, int n, int h, int w,
                 int classes, unsigned seed, int gz);

/* Runs the edgetrain CLI ($ET_CLI) with a NULL-terminated argument list.
 * stdout and stderr are captured (caller frees) when the pointers are given.
 * Returns the exit status (128 + signal when killed). */
int tu_run(char **out, char **err, const char *arg, ...);

/* The first column of the first row of a query on the project's database. */
long tu_db_int(const char *proj, const char *sql);

/* Runs SQL on the project's database directly (to simulate damage or old versions). */
void tu_db_exec(const char *proj, const char *sql);

/* Opens the project at dir or fails the test. */
et_project *tu_open(const char *dir);

/* Number of samples matching the filter (label may be NULL, cat NONE). */
long tu_count(et_project *p, const char *label, et_category cat);

#endif
