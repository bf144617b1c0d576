/* Logging, progress bars, interruption and the clock. */
#include "edgetrain/core.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static et_log_level g_level = ET_LOG_INFO;
static bool g_progress_enabled = true;
static volatile sig_atomic_t g_interrupted = 0;

void et_log_set_level(et_log_level level) { g_level = level; }
et_log_level et_log_get_level(void) { return g_level; }

void et_log(et_log_level level, const char *fmt, ...)
{
    if (level < g_level)
        return;
    static const char *const prefix[] = {"debug: ", "", "warning: ", "error: "};
    va_list ap;
    va_start(ap, fmt);
    fputs(prefix[level <= ET_LOG_ERROR ? level : ET_LOG_ERROR], stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

double et_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void et_progress_set_enabled(bool enabled) { g_progress_enabled = enabled; }

static void progress_draw(et_progress *p)
{
    double elapsed = et_now_s() - p->start_s;
    if (p->total) {
        int width = 30;
        int fill = (int)((double)p->done / (double)p->total * width);
        if (fill > width)
            fill = width;
        fprintf(stderr, "\r%s [%.*s%*s] %llu/%llu %.1fs", p->label, fill,
                "##############################", width - fill, "",
                (unsigned long long)p->done, (unsigned long long)p->total, elapsed);
    } else {
        fprintf(stderr, "\r%s %llu %.1fs", p->label, (unsigned long long)p->done, elapsed);
    }
    fflush(stderr);
    p->last_draw_s = et_now_s();
}

void et_progress_begin(et_progress *p, const char *label, uint64_t total)
{
    p->label = label;
    p->total = total;
    p->done = 0;
    p->start_s = et_now_s();
    p->last_draw_s = 0;
    p->active = g_progress_enabled && g_level <= ET_LOG_INFO && isatty(STDERR_FILENO);
    if (p->active)
        progress_draw(p);
}

void et_progress_update(et_progress *p, uint64_t done)
{
    p->done = done;
    if (p->active && et_now_s() - p->last_draw_s >= 0.1)
        progress_draw(p);
}

void et_progress_end(et_progress *p)
{
    if (p->active)
        fputs("\r\033[K", stderr);
    p->active = false;
}

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

void et_interrupt_install(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool et_interrupted(void) { return g_interrupted != 0; }
void et_interrupt_raise(void) { g_interrupted = 1; }
void et_interrupt_clear(void) { g_interrupted = 0; }
