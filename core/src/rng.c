/* Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC 2011). The key is the seed, the counter is
 * (block index, stream): every number is a pure function of its position. */
#include "internal.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void dm_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

static void block(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4])
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    dm_philox4x32(ctr, key, out);
}

/* (0, 1], never 0 so that log() is finite. */
static double open_unit(uint32_t u)
{
    return ((double)u + 1.0) * (1.0 / 4294967296.0);
}

/* Block b gives normals 4b..4b+3 by Box-Muller on its two pairs of words. */
void dm_rng_normal(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n)
{
    const double two_pi = 6.283185307179586476925286766559;
    uint64_t first = offset / 4, last = (offset + n + 3) / 4;
#pragma omp parallel for schedule(static) if (dm_par(32.0 * n))
    for (uint64_t b = first; b < last; b++) {
        uint32_t u[4];
        block(seed, stream, b, u);
        double z[4];
        for (int p = 0; p < 2; p++) {
            double r = sqrt(-2.0 * log(open_unit(u[2 * p])));
            double a = two_pi * (u[2 * p + 1] * (1.0 / 4294967296.0));
            z[2 * p] = r * cos(a);
            z[2 * p + 1] = r * sin(a);
        }
        for (int lane = 0; lane < 4; lane++) {
            uint64_t j = 4 * b + (uint64_t)lane;
            if (j >= offset && j - offset < n)
                out[j - offset] = (float)z[lane];
        }
    }
}

void dm_rng_uniform(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n)
{
    uint64_t first = offset / 4, last = (offset + n + 3) / 4;
#pragma omp parallel for schedule(static) if (dm_par(32.0 * n))
    for (uint64_t b = first; b < last; b++) {
        uint32_t u[4];
        block(seed, stream, b, u);
        for (int lane = 0; lane < 4; lane++) {
            uint64_t j = 4 * b + (uint64_t)lane;
            if (j >= offset && j - offset < n)
                out[j - offset] = (float)(u[lane] >> 8) * (1.0f / 16777216.0f);
        }
    }
}
