/* libFuzzer target: the LV2 plugin's state restore (what a host does when it opens a session
 * or a preset). The plugin is instantiated as a host would (URID map, worker schedule, path
 * mapping), and its LV2_State_Interface restore() is given a state built from the input: a
 * list of records
 *     [type][key length][key bytes][value length][value bytes] ...
 * where the key is matched against the end of the URI the plugin asks for ("model",
 * "clip-0-fixed", "recipe-3-pool1", "freshSeed"...), type picks atom:Path, atom:Long,
 * atom:String or atom:Int (type % 4) and the value is given as it is (no terminating 0, wrong
 * sizes...). Paths resolve inside a private folder holding a few clips the plugin could have
 * saved (right rate, wrong rate, stereo, a hostile "scale 2^k" title, not audio); the name
 * is reduced to [A-Za-z0-9._-] so that no input reaches outside it. Then the instance is
 * cleaned up. Any crash, leak or sanitizer report is a bug.
 * Until the plugin has a state interface, the target does nothing (the restore call is all
 * it tests). Seed corpus: tests/fuzz/corpus/plugin_state/. */
#include "dmaudio.h"

#include <lv2/atom/atom.h>
#include <lv2/core/lv2.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE 48000

/* ---- the host: a URID map, a worker that drops jobs, path mapping into dir ---- */

static char *uris[4096];
static int n_uris;
static char dir[256];

static LV2_URID map_uri(LV2_URID_Map_Handle h, const char *uri)
{
    (void)h;
    for (int i = 0; i < n_uris; i++)
        if (!strcmp(uris[i], uri))
            return (LV2_URID)(i + 1);
    if (n_uris == (int)(sizeof uris / sizeof uris[0]))
        return 0;
    uris[n_uris] = strdup(uri);
    return uris[n_uris] ? (LV2_URID)++n_uris : 0;
}

static const char *unmap(LV2_URID id) { return id >= 1 && (int)id <= n_uris ? uris[id - 1] : ""; }

static LV2_Worker_Status schedule(LV2_Worker_Schedule_Handle h, uint32_t size, const void *data)
{
    (void)h, (void)size, (void)data;
    return LV2_WORKER_SUCCESS;
}

static char *abstract_path(LV2_State_Map_Path_Handle h, const char *absolute)
{
    (void)h;
    const char *slash = strrchr(absolute, '/');
    return strdup(slash ? slash + 1 : absolute);
}

static char *absolute_path(LV2_State_Map_Path_Handle h, const char *abstract)
{
    (void)h;
    char name[64];
    size_t n = 0;
    for (const char *p = abstract; *p && n + 1 < sizeof name; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || (c == '.' && n > 0);
        name[n++] = ok ? c : '_';
    }
    name[n] = '\0';
    char *out = malloc(strlen(dir) + n + 2);
    if (out)
        sprintf(out, "%s/%s", dir, name);
    return out;
}

static void free_path(LV2_State_Free_Path_Handle h, char *path)
{
    (void)h;
    free(path);
}

static void write_clip(const char *name, int rate, int channels, const char *title)
{
    float data[2 * 64];
    for (int i = 0; i < 2 * 64; i++)
        data[i] = (float)((i % 17) - 8) / 16.0f;
    dm_audio a = {.data = data, .channels = channels, .frames = 64, .rate = rate};
    dm_audio_write_params wp = dm_audio_write_default_params();
    wp.format = DM_SAMPLE_FLOAT;
    wp.title = title;
    char path[320];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (dm_audio_write(path, &a, &wp, NULL) != DM_OK)
        abort();
}

static void remove_dir(void)
{
    const char *names[] = {"clip.wav", "rate.wav", "stereo.wav", "scale.wav", "text.wav"};
    char path[320];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void setup(void)
{
    unsetenv("DMAUDIO_MODEL"); /* no default model: nothing to load */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/dmaudio-fuzz-state.XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    write_clip("clip.wav", RATE, 1, "dmaudio plugin clip, scale 2^3");
    write_clip("rate.wav", 22050, 1, "dmaudio plugin clip, scale 2^0");
    write_clip("stereo.wav", RATE, 2, "dmaudio plugin clip, scale 2^1");
    write_clip("scale.wav", RATE, 1, "dmaudio plugin clip, scale 2^-2147483648");
    char path[320];
    snprintf(path, sizeof path, "%s/text.wav", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs("not a sound\n", f) < 0 || fclose(f) != 0)
        abort();
    atexit(remove_dir);
}

/* ---- the state the input describes ---- */

/* Each value handed out is a copy of exactly its size in its own allocation, as a host keeps
 * it (aligned, and a read past its end is caught); all are freed after restore(). */
typedef struct input {
    const unsigned char *data;
    size_t size;
    LV2_URID types[4];
    void *copies[1024];
    int n_copies;
} input;

static const void *retrieve(LV2_State_Handle handle, uint32_t key, size_t *size, uint32_t *type,
                            uint32_t *flags)
{
    input *in = handle;
    const char *uri = unmap(key);
    size_t ulen = strlen(uri);
    for (size_t at = 0; at + 3 <= in->size;) {
        const unsigned char *r = in->data + at;
        size_t klen = r[1];
        if (at + 3 + klen > in->size)
            break;
        size_t vlen = r[2 + klen];
        if (at + 3 + klen + vlen > in->size)
            break;
        if (klen && klen <= ulen && !memcmp(uri + ulen - klen, r + 2, klen)) {
            void *copy = malloc(vlen ? vlen : 1);
            if (!copy || in->n_copies == (int)(sizeof in->copies / sizeof in->copies[0])) {
                free(copy);
                return NULL;
            }
            memcpy(copy, r + 3 + klen, vlen);
            in->copies[in->n_copies++] = copy;
            *size = vlen;
            *type = in->types[r[0] % 4];
            *flags = LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE;
            return copy;
        }
        at += 3 + klen + vlen;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (!dir[0])
        setup();
    LV2_URID_Map map = {NULL, map_uri};
    LV2_Worker_Schedule sched = {NULL, schedule};
    LV2_State_Map_Path mp = {NULL, abstract_path, absolute_path};
    LV2_State_Free_Path fp = {NULL, free_path};
    const LV2_Feature f_map = {LV2_URID__map, &map}, f_sched = {LV2_WORKER__schedule, &sched},
                      f_mp = {LV2_STATE__mapPath, &mp}, f_fp = {LV2_STATE__freePath, &fp};
    const LV2_Feature *features[] = {&f_map, &f_sched, &f_mp, &f_fp, NULL};

    const LV2_Descriptor *d = lv2_descriptor(0);
    if (!d)
        abort();
    const LV2_State_Interface *state = d->extension_data(LV2_STATE__interface);
    if (!state)
        return 0; /* a plugin without state: nothing to test */
    LV2_Handle h = d->instantiate(d, RATE, "/nonexistent-bundle/", features);
    if (!h)
        abort();
    static input in; /* large: not on the stack */
    in.data = data, in.size = size, in.n_copies = 0;
    in.types[0] = map_uri(NULL, LV2_ATOM__Path), in.types[1] = map_uri(NULL, LV2_ATOM__Long);
    in.types[2] = map_uri(NULL, LV2_ATOM__String), in.types[3] = map_uri(NULL, LV2_ATOM__Int);
    state->restore(h, retrieve, &in, 0, features);
    for (int i = 0; i < in.n_copies; i++)
        free(in.copies[i]);
    d->cleanup(h);
    return 0;
}
