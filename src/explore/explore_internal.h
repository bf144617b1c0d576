/* Shared by the explorer's PCA and t-SNE. Internal. */
#ifndef ET_EXPLORE_INTERNAL_H
#define ET_EXPLORE_INTERNAL_H

#include <stddef.h>

/* The first row of the n x d matrix x holding a NaN or infinity, or n when
 * none; *col receives that value's column. */
size_t et_explore_first_nonfinite(const float *x, size_t n, size_t d, size_t *col);

#endif
