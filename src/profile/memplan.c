#define _GNU_SOURCE /* qsort_r */
#include "profile/memplan.h"

#include <stdlib.h>

static size_t round_up(size_t v, size_t align)
{
    return (v + align - 1) & ~(align - 1);
}

typedef struct order_ctx {
    const et_membuf *bufs;
} order_ctx;

/* Larger first; ties by earlier start, then by index: a fixed order. */
static int by_size(const void *a, const void *b, void *ctx)
{
    const et_membuf *bufs = ((const order_ctx *)ctx)->bufs;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (bufs[i].size != bufs[j].size)
        return bufs[i].size > bufs[j].size ? -1 : 1;
    if (bufs[i].first != bufs[j].first)
        return bufs[i].first < bufs[j].first ? -1 : 1;
    return i < j ? -1 : (i > j);
}

static int by_offset(const void *a, const void *b, void *ctx)
{
    const et_membuf *bufs = ((const order_ctx *)ctx)->bufs;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (bufs[i].offset != bufs[j].offset)
        return bufs[i].offset < bufs[j].offset ? -1 : 1;
    return i < j ? -1 : (i > j);
}

et_status et_memplan(et_membuf *bufs, size_t n, size_t align, size_t *arena_size, et_error *err)
{
    if (align == 0 || (align & (align - 1)) != 0)
        return et_error_set(err, ET_EINVAL, "memory planner: alignment %zu is not a power of two",
                            align);
    for (size_t i = 0; i < n; i++)
        if (bufs[i].first > bufs[i].last)
            return et_error_set(err, ET_EINVAL, "memory planner: buffer %zu ends before it starts",
                                i);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    size_t *placed = malloc((n ? n : 1) * sizeof *placed);
    if (!order || !placed) {
        free(order);
        free(placed);
        return et_error_set(err, ET_ENOMEM, "out of memory");
    }
    order_ctx ctx = {bufs};
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, by_size, &ctx);
    size_t n_placed = 0, end = 0;
    for (size_t k = 0; k < n; k++) {
        et_membuf *b = &bufs[order[k]];
        size_t need = round_up(b->size, align), at = 0;
        if (need > 0) {
            /* Walk the placed buffers that share b's lifetime in offset
             * order; take the first gap that is big enough. */
            for (size_t j = 0; j < n_placed; j++) {
                const et_membuf *o = &bufs[placed[j]];
                if (o->last < b->first || o->first > b->last || o->size == 0)
                    continue;
                if (o->offset >= at + need)
                    break;
                size_t o_end = o->offset + round_up(o->size, align);
                if (o_end > at)
                    at = o_end;
            }
        }
        b->offset = at;
        if (at + need > end)
            end = at + need;
        placed[n_placed++] = order[k];
        qsort_r(placed, n_placed, sizeof *placed, by_offset, &ctx);
    }
    free(order);
    free(placed);
    *arena_size = end;
    return ET_OK;
}
