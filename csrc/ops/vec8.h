/* Eight-lane float vectors on GCC/Clang generic vector extensions: AVX2 with this build's
 * -march, plain scalar code (or the target's SIMD) elsewhere. Lane order is fixed, so results do
 * not depend on the compiler reassociating anything. */
#ifndef V2T_OPS_VEC8_H
#define V2T_OPS_VEC8_H

#include <stdint.h>
#include <string.h>

typedef float v2t_v8f __attribute__((vector_size(32)));
typedef int32_t v2t_v8i __attribute__((vector_size(32)));
typedef float v2t_v4f __attribute__((vector_size(16)));
typedef double v2t_v4d __attribute__((vector_size(32)));

static inline v2t_v8f v2t_load8(const float *p)
{
    v2t_v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline v2t_v8f v2t_splat8(float a) { return (v2t_v8f){a, a, a, a, a, a, a, a}; }

/* mask ? a : b per lane (mask lanes all ones or all zeros, as vector comparisons give). */
static inline v2t_v8f v2t_select8(v2t_v8i mask, v2t_v8f a, v2t_v8f b)
{
    return (v2t_v8f)(((v2t_v8i)a & mask) | ((v2t_v8i)b & ~mask));
}

/* Lanes 0-3 and 4-7 widened to double. */
static inline void v2t_widen8(v2t_v8f v, v2t_v4d *lo, v2t_v4d *hi)
{
    v2t_v4f a, b;
    memcpy(&a, &v, sizeof a);
    memcpy(&b, (const char *)&v + sizeof a, sizeof b);
    *lo = __builtin_convertvector(a, v2t_v4d);
    *hi = __builtin_convertvector(b, v2t_v4d);
}

static inline int v2t_any8(v2t_v8i mask)
{
    v2t_v8i z = {0};
    return memcmp(&mask, &z, sizeof mask) != 0;
}

#endif
