/*
 * The memory planner: places buffers with known lifetimes in one arena so
 * that buffers alive at the same time never overlap, reusing memory between
 * the others. Used for the runtime's arena (activations and kernel scratch),
 * and so for the peak RAM that `edgetrain profile` reports.
 *
 * Greedy by size, as TFLite Micro's GreedyMemoryPlanner: the largest buffer
 * first, each at the lowest offset where it overlaps no already placed
 * buffer whose lifetime it shares. Not optimal in general, but within a few
 * percent on the chain-like graphs of CNNs, deterministic and fast.
 */
#ifndef ET_PROFILE_MEMPLAN_H
#define ET_PROFILE_MEMPLAN_H

#include "edgetrain/core.h"

#include <stddef.h>

typedef struct et_membuf {
    size_t size;   /* bytes; 0 is placed at offset 0 and takes no room */
    int first;     /* first op (0-based) at which the buffer is alive */
    int last;      /* last op at which it is alive, >= first */
    size_t offset; /* out: where the planner put it, a multiple of align */
} et_membuf;

/* Plans n buffers; align (a power of two) rounds every size and offset.
 * Writes each offset and *arena_size (the end of the highest buffer).
 * ET_EINVAL for first > last or a bad align; ET_ENOMEM. */
et_status et_memplan(et_membuf *bufs, size_t n, size_t align, size_t *arena_size, et_error *err);

#endif
