/* Element-wise add, float32, with a clamp. Each element is read before it is
 * written, so y may be x1 or x2. */
#include "etrt_kernels.h"

#include <stddef.h>

void etrt_add_f32(const etrt_act_f32 *p, size_t n, const float *x1, const float *x2, float *y)
{
    for (size_t i = 0; i < n; i++) {
        float v = x1[i] + x2[i];
        v = v < p->act_min ? p->act_min : v;
        y[i] = v > p->act_max ? p->act_max : v;
    }
}
