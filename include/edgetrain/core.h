/*
 * edgetrain core: status codes, errors, the arena allocator, logging,
 * progress bars and interruption (Ctrl-C).
 *
 * Every fallible library call returns an et_status (0 on success, a negative
 * ET_E* code on failure) and, when the caller passes an et_error, writes a
 * message that names the file, line or sample the failure is about:
 *
 *     et_error err = {0};
 *     if (et_project_open("shoes", &p, &err) < 0)
 *         fprintf(stderr, "edgetrain: %s\n", err.msg);
 *
 * The library never exits or aborts on bad input.
 */
#ifndef EDGETRAIN_CORE_H
#define EDGETRAIN_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 0 is success; every error is negative. */
typedef int et_status;

enum {
    ET_OK = 0,
    ET_ENOMEM = -1,       /* out of memory */
    ET_EIO = -2,          /* a file could not be read or written */
    ET_EINVAL = -3,       /* bad input: a value, a file's contents, a usage error */
    ET_ENOTFOUND = -4,    /* no such file, project, sample or label */
    ET_ECORRUPT = -5,     /* stored data does not match what was recorded */
    ET_EDB = -6,          /* the project database failed */
    ET_EINTR = -7,        /* interrupted by the user (SIGINT/SIGTERM); nothing was changed */
    ET_EEXIST = -8,       /* the thing to be created already exists */
    ET_EPROBLEMS = -9,    /* the job ran, but some inputs were skipped (see its problems) */
    ET_EVERSION = -10,    /* made by a newer edgetrain */
    ET_EREFUSED = -11,    /* the job was refused before it started (e.g. over a time limit) */
};

/* Human-readable name of a status code ("bad input", "I/O error", ...). */
const char *et_status_str(et_status code);

/* An error report filled in by a failing call. Caller-owned; zero-initialise. */
typedef struct et_error {
    et_status code;
    char msg[1024];
} et_error;

/* Records code and a printf-style message in err (err may be NULL) and returns
 * code, so that `return et_error_set(err, ET_EINVAL, "...")` reads naturally. */
et_status et_error_set(et_error *err, et_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------
 * Arena: many small allocations released together. Blocks are malloc'ed on
 * demand (at least block_size bytes each); nothing is freed until
 * et_arena_reset or et_arena_free. Allocations are 16-byte aligned.
 */
typedef struct et_arena_block et_arena_block;
typedef struct et_arena {
    et_arena_block *head;  /* newest block */
    size_t block_size;     /* default size of a new block */
    size_t used_bytes;     /* bytes handed out since the last reset */
} et_arena;

/* Prepares an empty arena; block_size 0 picks 64 KiB. Allocates nothing. */
void et_arena_init(et_arena *a, size_t block_size);
/* size bytes, uninitialised; NULL when out of memory. */
void *et_arena_alloc(et_arena *a, size_t size);
/* size bytes set to zero; NULL when out of memory. */
void *et_arena_calloc(et_arena *a, size_t count, size_t size);
/* A copy of s (NUL-terminated) in the arena; NULL when out of memory or s is NULL. */
char *et_arena_strdup(et_arena *a, const char *s);
/* printf into the arena; NULL when out of memory. */
char *et_arena_printf(et_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Forgets every allocation but keeps the first block for reuse. */
void et_arena_reset(et_arena *a);
/* Releases every block; the arena may be initialised again. NULL is a no-op. */
void et_arena_free(et_arena *a);

/* ------------------------------------------------------------------------
 * Logging to stderr. Levels below the current level are dropped.
 */
typedef enum { ET_LOG_DEBUG = 0, ET_LOG_INFO = 1, ET_LOG_WARN = 2, ET_LOG_ERROR = 3, ET_LOG_QUIET = 4 } et_log_level;

void et_log_set_level(et_log_level level);
et_log_level et_log_get_level(void);
void et_log(et_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define et_log_debug(...) et_log(ET_LOG_DEBUG, __VA_ARGS__)
#define et_log_info(...) et_log(ET_LOG_INFO, __VA_ARGS__)
#define et_log_warn(...) et_log(ET_LOG_WARN, __VA_ARGS__)
#define et_log_error(...) et_log(ET_LOG_ERROR, __VA_ARGS__)

/* ------------------------------------------------------------------------
 * Progress bar on stderr for long work. Drawn only when stderr is a TTY and
 * progress is enabled (the CLI disables it under --json). Redraws at most
 * ten times a second. Safe to call et_progress_update from one thread only.
 */
typedef struct et_progress {
    const char *label;  /* borrowed; must outlive the bar */
    uint64_t total;     /* 0 = unknown */
    uint64_t done;
    double start_s;
    double last_draw_s;
    bool active;
} et_progress;

void et_progress_set_enabled(bool enabled);
void et_progress_begin(et_progress *p, const char *label, uint64_t total);
void et_progress_update(et_progress *p, uint64_t done);
/* Clears the bar's line. */
void et_progress_end(et_progress *p);

/* ------------------------------------------------------------------------
 * Interruption. et_interrupt_install() routes SIGINT and SIGTERM to a flag;
 * long jobs poll et_interrupted() between units of work and then roll back
 * or stop cleanly, returning ET_EINTR.
 */
void et_interrupt_install(void);
bool et_interrupted(void);
/* Sets the flag as a signal would (for tests). */
void et_interrupt_raise(void);
void et_interrupt_clear(void);

/* Writes n bytes to path atomically: a temporary file in the same folder,
 * fsync, rename over path. A crash leaves the old file or the new one. */
et_status et_write_file_atomic(const char *path, const void *data, size_t n, et_error *err);

/* Creates a folder and its missing parents (mkdir -p). */
et_status et_mkdir_p(const char *path, et_error *err);

/* Monotonic seconds. */
double et_now_s(void);

#ifdef __cplusplus
}
#endif
#endif
