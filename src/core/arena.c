/* A bump allocator over a list of malloc'ed blocks. */
#include "edgetrain/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct et_arena_block {
    et_arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void et_arena_init(et_arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->used_bytes = 0;
}

void *et_arena_alloc(et_arena *a, size_t size)
{
    size_t need = (size + 15) & ~(size_t)15;
    if (need < size)
        return NULL;
    et_arena_block *b = a->head;
    if (!b || b->size - b->used < need) {
        size_t cap = need > a->block_size ? need : a->block_size;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->size = cap;
        b->used = 0;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used_bytes += need;
    return p;
}

void *et_arena_calloc(et_arena *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = et_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *et_arena_strdup(et_arena *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *p = et_arena_alloc(a, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

char *et_arena_printf(et_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = et_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void et_arena_reset(et_arena *a)
{
    if (!a->head)
        return;
    /* Keep the oldest block (the first one allocated) for reuse. */
    et_arena_block *b = a->head;
    while (b->next) {
        et_arena_block *next = b->next;
        free(b);
        b = next;
    }
    b->used = 0;
    a->head = b;
    a->used_bytes = 0;
}

void et_arena_free(et_arena *a)
{
    if (!a)
        return;
    et_arena_block *b = a->head;
    while (b) {
        et_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}
