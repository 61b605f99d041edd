/* libFuzzer target: the model loader. Each input is parsed as a container
 * (dm_file_parse) and, when that succeeds, validated and loaded as a model
 * exactly as dm_model_load does (keys, architecture, tensor shapes, values).
 * To get past the container's CRC, the input is also tried with its trailer
 * recomputed, so mutations reach the model checks. Any crash, leak or
 * sanitizer report is a bug. Seed corpus: tests/fuzz/corpus/model/ (small
 * valid models written by tests/fuzz/make_model_corpus.c, and broken ones). */
#include "dmfile.h"
#include "model_internal.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void try_load(const unsigned char *data, size_t size)
{
    dm_file *f = NULL;
    dm_error err;
    if (dm_file_parse(data, size, &f, &err) != DM_OK)
        return;
    dm_model *m = NULL;
    if (dm_model_from_container(f, "fuzz.dmm", &m, &err) == DM_OK) {
        /* a loaded model must be usable: describe it and look up its classes */
        dm_model_info in = dm_model_get_info(m);
        for (int c = 0; c < in.n_classes; c++)
            if (dm_model_find_class(m, dm_model_class_name(m, c)) != c)
                abort();
        dm_model_free(m);
    }
    dm_file_free(f);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    try_load(data, size);
    /* the same bytes with a valid trailer: CRC-32 of everything before it + "DMAE" */
    if (size >= 8 && size < (1u << 24)) {
        unsigned char *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        uLong crc = crc32(0L, copy, (uInt)(size - 8));
        for (int i = 0; i < 4; i++)
            copy[size - 8 + i] = (unsigned char)(crc >> (8 * i));
        memcpy(copy + size - 4, "DMAE", 4);
        try_load(copy, size);
        free(copy);
    }
    return 0;
}
