/* The recipe every generated file carries in its metadata (see dm_recipe in cli.h): formatting
 * and parsing. Self-contained (no model, no file), so that the fuzz target
 * tests/fuzz/fuzz_recipe.c builds it alone. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


/* An empty mode or version (a recipe parsed from a writer that had none) is left out: the
 * parser refuses an empty value, and what this writes must parse. */
void dm_recipe_format(const dm_recipe *r, char *out, size_t n)
{
    snprintf(out, n,
             "dmaudio-recipe/1 model=%s crc=%08" PRIx32 " seed=%" PRIu64 " sampler=%s steps=%d "
             "class=%s guidance=%.17g strength=%.17g eta=%.17g%s%s%s%s",
             r->model, r->crc, r->seed, r->sampler, r->steps, r->cls[0] ? r->cls : "-",
             r->guidance, r->strength, r->eta, r->mode[0] ? " mode=" : "", r->mode,
             r->version[0] ? " version=" : "", r->version);
    size_t len = strlen(out);
    if (r->rate > 0 && len < n)
        len += (size_t)snprintf(out + len, n - len, " rate=%d", r->rate);
    if (r->frames > 0 && len < n)
        len += (size_t)snprintf(out + len, n - len, " frames=%" PRId64, r->frames);
    if (r->format[0] && len < n)
        snprintf(out + len, n - len, " format=%s", r->format);
}

static int copy_token(char *dst, size_t n, const char *v, size_t len)
{
    if (len == 0 || len >= n)
        return -1;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
}

int dm_recipe_parse(const char *text, dm_recipe *r, char *why, size_t why_n)
{
    memset(r, 0, sizeof *r);
    snprintf(r->cls, sizeof r->cls, "-");
    snprintf(r->mode, sizeof r->mode, "sample");
    r->guidance = 1.0, r->strength = 1.0;
    const char *magic = "dmaudio-recipe/1";
    if (!text || strncmp(text, magic, strlen(magic)) != 0) {
        snprintf(why, why_n, "not a dmaudio recipe");
        return -1;
    }
    int have_model = 0, have_seed = 0, have_sampler = 0, have_steps = 0;
    const char *p = text + strlen(magic);
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ' ')
            end++;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq) {
            snprintf(why, why_n, "malformed field '%.*s'", (int)(end - p > 40 ? 40 : end - p), p);
            return -1;
        }
        size_t klen = (size_t)(eq - p), vlen = (size_t)(end - eq - 1);
        const char *v = eq + 1;
        char val[128];
        if (vlen >= sizeof val) {
            snprintf(why, why_n, "field '%.*s' is too long", (int)(klen > 40 ? 40 : klen), p);
            return -1;
        }
        memcpy(val, v, vlen);
        val[vlen] = '\0';
        char *e = NULL;
        int bad = 0;
#define KEY(name) (klen == strlen(name) && strncmp(p, name, klen) == 0)
        errno = 0;
        if (KEY("model")) {
            bad = copy_token(r->model, sizeof r->model, v, vlen), have_model = !bad;
        } else if (KEY("crc")) {
            unsigned long c = strtoul(val, &e, 16);
            bad = vlen != 8 || *e || c > 0xffffffffUL;
            r->crc = (uint32_t)c;
        } else if (KEY("seed")) {
            unsigned long long s = strtoull(val, &e, 10);
            bad = !vlen || *e || errno || val[0] == '-';
            r->seed = s, have_seed = !bad;
        } else if (KEY("sampler")) {
            bad = copy_token(r->sampler, sizeof r->sampler, v, vlen), have_sampler = !bad;
        } else if (KEY("steps")) {
            long s = strtol(val, &e, 10);
            bad = !vlen || *e || errno || s < 1 || s > DM_MAX_TIMESTEPS;
            r->steps = (int)s, have_steps = !bad;
        } else if (KEY("class")) {
            bad = copy_token(r->cls, sizeof r->cls, v, vlen);
        } else if (KEY("guidance") || KEY("strength") || KEY("eta")) {
            double d = strtod(val, &e);
            bad = !vlen || *e || errno || !(d >= 0.0 && d <= 100.0);
            if (KEY("guidance"))
                r->guidance = d;
            else if (KEY("strength"))
                r->strength = d;
            else
                r->eta = d;
        } else if (KEY("mode")) {
            bad = copy_token(r->mode, sizeof r->mode, v, vlen);
        } else if (KEY("version")) {
            bad = copy_token(r->version, sizeof r->version, v, vlen);
        } else if (KEY("rate")) {
            long h = strtol(val, &e, 10);
            bad = !vlen || *e || errno || h < 1 || h > DM_AUDIO_MAX_RATE;
            r->rate = (int)h;
        } else if (KEY("frames")) {
            long long f = strtoll(val, &e, 10);
            bad = !vlen || *e || errno || f < 1 || f > DM_AUDIO_MAX_FRAMES;
            r->frames = f;
        } else if (KEY("format")) {
            bad = copy_token(r->format, sizeof r->format, v, vlen);
        } /* unknown keys: ignored (newer writers) */
#undef KEY
        if (bad) {
            snprintf(why, why_n, "bad value in '%.*s'", (int)(end - p > 60 ? 60 : end - p), p);
            return -1;
        }
        p = end;
    }
    if (!have_model || !have_seed || !have_sampler || !have_steps) {
        snprintf(why, why_n, "incomplete recipe (model, seed, sampler and steps are required)");
        return -1;
    }
    return 0;
}
