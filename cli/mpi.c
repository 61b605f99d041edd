/* Data-parallel training over MPI for `dmaudio train` (built with `make MPI=1`, which defines
 * DM_MPI; without it every function below is the one-process version).
 *
 * Each process is a trainer of one group (dm_trainer_set_group): it computes the gradient of
 * its shards of every step, and dm_cli_group_reduce sums the group's gradients by recursive
 * doubling (at distance d = 1, 2, 4..., rank r exchanges its partial sum with rank r ^ d and
 * adds it), which is the fixed tree the library sums one process's shards along: the weights
 * are bitwise those of one process with the same batch, shards and seed. MPI_Allreduce would
 * give the same sum, but its grouping of the operands is Open MPI's choice (ring algorithms
 * for large messages add segments in different orders on different ranks) and not bitwise
 * reproducible; it is used only for a size that is not a power of two. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef DM_MPI
#include <mpi.h>

/* Launched by mpirun / mpiexec (Open MPI, MPICH) or srun (PMI, PMIx): not a singleton. */
static int launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK",
                                       "PMI_RANK", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static int started;

int dm_cli_group_start(int *argc, char ***argv, dm_cli_group *g)
{
    g->rank = 0, g->size = 1, g->local_size = 1;
    if (!launched_by_mpi())
        return 0;
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "dmaudio train: MPI_Init failed\n");
        return -1;
    }
    started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        MPI_Comm_size(local, &g->local_size);
        MPI_Comm_free(&local);
    }
    return 0;
}

void dm_cli_group_stop(void)
{
    if (started)
        MPI_Finalize();
    started = 0;
}

void dm_cli_group_abort(int status)
{
    if (started) {
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
}

int dm_cli_group_max(int value)
{
    int out = value;
    if (started)
        MPI_Allreduce(&value, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return out;
}

int dm_cli_group_same(uint32_t value)
{
    if (!started)
        return 1;
    unsigned lo, hi, v = value;
    MPI_Allreduce(&v, &lo, 1, MPI_UNSIGNED, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&v, &hi, 1, MPI_UNSIGNED, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

/* buf gets buf + the partner's buf, n floats, in messages of at most 2^30 floats. */
static int exchange_add(float *buf, float *tmp, size_t n, int partner)
{
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < n; at += chunk) {
        int c = (int)(n - at < chunk ? n - at : chunk);
        if (MPI_Sendrecv(buf + at, c, MPI_FLOAT, partner, 0, tmp, c, MPI_FLOAT, partner, 0,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
        for (int j = 0; j < c; j++)
            buf[at + j] += tmp[j];
    }
    return 0;
}

dm_status dm_cli_group_reduce(float *grads, size_t n, double *loss, void *user_data)
{
    dm_cli_group *g = user_data;
    if (g->size == 1)
        return DM_OK;
    if (g->size & (g->size - 1)) {
        if (MPI_Allreduce(MPI_IN_PLACE, grads, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD) !=
                MPI_SUCCESS ||
            MPI_Allreduce(MPI_IN_PLACE, loss, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) !=
                MPI_SUCCESS)
            return DM_ERR_IO;
        return DM_OK;
    }
    for (int d = 1; d < g->size; d *= 2) {
        const int partner = g->rank ^ d;
        double other;
        if (exchange_add(grads, g->scratch, n, partner) != 0 ||
            MPI_Sendrecv(loss, 1, MPI_DOUBLE, partner, 1, &other, 1, MPI_DOUBLE, partner, 1,
                         MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return DM_ERR_IO;
        *loss += other;
    }
    return DM_OK;
}

const char *dm_cli_group_library(void)
{
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    version[strcspn(version, ",\n")] = '\0'; /* "Open MPI v4.1.4" */
    return version;
}

#else /* one process */

int dm_cli_group_start(int *argc, char ***argv, dm_cli_group *g)
{
    (void)argc, (void)argv;
    g->rank = 0, g->size = 1, g->local_size = 1;
    return 0;
}

void dm_cli_group_stop(void) {}
void dm_cli_group_abort(int status) { (void)status; }
int dm_cli_group_max(int value) { return value; }
int dm_cli_group_same(uint32_t value) { (void)value; return 1; }

dm_status dm_cli_group_reduce(float *grads, size_t n, double *loss, void *user_data)
{
    (void)grads, (void)n, (void)loss, (void)user_data;
    return DM_OK;
}

const char *dm_cli_group_library(void) { return NULL; }

#endif
