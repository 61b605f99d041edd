/* libFuzzer target: the recipe parser (cli/recipe.c), which reads the comment metadata of
 * every audio file `dmaudio info`, `sample --recipe` and `augment` are given. Each input is
 * parsed as a recipe line; one that parses must survive a round trip: formatted and parsed
 * again, it gives the same fields (the writer and the reader agree), else abort(). Any
 * crash, leak or sanitizer report is a bug. Seed corpus: tests/fuzz/corpus/recipe/ (recipes
 * the commands write, and broken ones). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The fields, compared as values (a repeated key leaves bytes after a string's end). */
static int same(const dm_recipe *a, const dm_recipe *b)
{
    return !strcmp(a->model, b->model) && a->crc == b->crc && a->seed == b->seed &&
           !strcmp(a->sampler, b->sampler) && a->steps == b->steps && !strcmp(a->cls, b->cls) &&
           !memcmp(&a->guidance, &b->guidance, sizeof a->guidance) &&
           !memcmp(&a->strength, &b->strength, sizeof a->strength) &&
           !memcmp(&a->eta, &b->eta, sizeof a->eta) && !strcmp(a->mode, b->mode) &&
           !strcmp(a->version, b->version);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size > 4096)
        return 0;
    char text[4097], why[128], again[2048];
    memcpy(text, data, size);
    text[size] = '\0';
    dm_recipe r, r2;
    if (dm_recipe_parse(text, &r, why, sizeof why) != 0) {
        if (!memchr(why, '\0', sizeof why) || !why[0])
            abort(); /* a failure always says why */
        return 0;
    }
    dm_recipe_format(&r, again, sizeof again);
    if (dm_recipe_parse(again, &r2, why, sizeof why) != 0 || !same(&r, &r2))
        abort();
    return 0;
}
