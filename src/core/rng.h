/* splitmix64 (Steele, Lea & Flood 2014): the small, well-mixed generator the
 * library uses for seeded shuffles, subsets, augmentation and random starts.
 * Internal. State is one uint64_t the caller seeds and owns. */
#ifndef ET_CORE_RNG_H
#define ET_CORE_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t et_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double et_rng_unit(uint64_t *s)
{
    return (double)(et_splitmix64(s) >> 11) * 0x1.0p-53;
}

/* Standard normal by Box-Muller; the uniforms are in (0, 1) so log() is finite. */
static inline double et_rng_gauss(uint64_t *s)
{
    double u1 = ((double)(et_splitmix64(s) >> 11) + 0.5) * 0x1p-53;
    double u2 = ((double)(et_splitmix64(s) >> 11) + 0.5) * 0x1p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
