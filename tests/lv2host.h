/* A minimal LV2 host on lilv, for the plugin's test and benchmark: finds the bundle in the
 * build tree, instantiates the plugin with urid:map/unmap, log:log and a worker that runs
 * when the caller says (host_work: synchronously, between blocks, as a freewheeling host
 * would), and feeds MIDI and patch:Set events to run(). Nothing here allocates inside
 * host_run_block() except what the plugin itself does (the test checks that it does not).
 * Header-only (static functions): included by tests/test_plugin.c and bench/bench_plugin.c. */
#ifndef DMAUDIO_TESTS_LV2HOST_H
#define DMAUDIO_TESTS_LV2HOST_H

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/log/log.h>
#include <lv2/midi/midi.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#define HOST_PLUGIN_URI "https://dmaudio.dev/plugins/dmaudio"
#define HOST_MAX_PORTS 32
#define HOST_ATOM_BYTES 16384
#define HOST_QUEUE 256
#define HOST_MSG_BYTES 2048
#define HOST_MAX_EVENTS 64

/* ---- urid:map / unmap (a table of strings; used outside run() only) ---- */

typedef struct {
    char **uris;
    uint32_t n, cap;
} host_urids;

static host_urids host_urid_table;

static LV2_URID host_map(LV2_URID_Map_Handle handle, const char *uri)
{
    host_urids *t = handle;
    for (uint32_t i = 0; i < t->n; i++)
        if (!strcmp(t->uris[i], uri))
            return i + 1;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->uris = realloc(t->uris, t->cap * sizeof *t->uris);
    }
    t->uris[t->n++] = strdup(uri);
    return t->n;
}

static const char *host_unmap(LV2_URID_Unmap_Handle handle, LV2_URID urid)
{
    host_urids *t = handle;
    return urid >= 1 && urid <= t->n ? t->uris[urid - 1] : NULL;
}

static LV2_URID_Map host_map_feature = {&host_urid_table, host_map};
static LV2_URID_Unmap host_unmap_feature = {&host_urid_table, host_unmap};

static inline LV2_URID host_urid(const char *uri) { return host_map(&host_urid_table, uri); }

static inline void host_urids_free(void)
{
    for (uint32_t i = 0; i < host_urid_table.n; i++)
        free(host_urid_table.uris[i]);
    free(host_urid_table.uris);
    memset(&host_urid_table, 0, sizeof host_urid_table);
}

/* ---- the world ---- */

typedef struct {
    LilvWorld *world;
    const LilvPlugin *plugin;
} host_world;

/* Loads the LV2 bundles of LV2_PATH = BUILD_DIR/lv2 (and the system's specifications, so that
 * the plugin's classes are known). Returns 0 and fills w, or -1 with a message. */
static inline int host_open(host_world *w, const char *build_dir, char *msg, size_t n)
{
    char path[PATH_MAX + 32], abs[PATH_MAX];
    if (!realpath(build_dir, abs)) {
        snprintf(msg, n, "%s: no such build directory", build_dir);
        return -1;
    }
    snprintf(path, sizeof path, "%s/lv2:/usr/lib/lv2", abs);
    setenv("LV2_PATH", path, 1);
    w->world = lilv_world_new();
    lilv_world_load_all(w->world);
    LilvNode *uri = lilv_new_uri(w->world, HOST_PLUGIN_URI);
    w->plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(w->world), uri);
    lilv_node_free(uri);
    if (!w->plugin) {
        snprintf(msg, n, "no plugin %s in LV2_PATH=%.300s", HOST_PLUGIN_URI, path);
        return -1;
    }
    return 0;
}

static inline void host_close(host_world *w)
{
    lilv_world_free(w->world);
    w->world = NULL;
}

/* ---- an instance ---- */

typedef struct {
    uint32_t frame;
    uint32_t type; /* midi:MidiEvent, or 0 for a patch:Set of the model path */
    uint8_t midi[3];
    char path[1024];
} host_event;

typedef struct {
    uint32_t size;
    uint8_t data[HOST_MSG_BYTES];
} host_msg;

typedef struct {
    host_msg items[HOST_QUEUE];
    int n;
    int overflow;
} host_queue;

typedef struct host_inst {
    const LilvPlugin *plugin;
    LilvInstance *li;
    const LV2_Worker_Interface *worker;
    double rate;
    uint32_t max_block;
    int n_ports;
    float controls[HOST_MAX_PORTS];
    int audio_out[2];
    float *out[2];
    uint8_t *in_atom, *notify_atom;
    host_event events[HOST_MAX_EVENTS];
    int n_events;
    host_queue jobs, responses;
    int log_errors;
    char log_last[1024];
    int notified_model; /* patch:Set of the model seen on the notify port */
    char notified_path[1024];
    LV2_Worker_Schedule schedule;
    LV2_Log_Log log;
    LV2_Feature f_map, f_unmap, f_schedule, f_log;
    const LV2_Feature *features[5];
} host_inst;

/* Set by a test to watch run(): called with 1 just before it, 0 just after. */
static void (*host_run_guard)(int on);

static void host_push(host_queue *q, uint32_t size, const void *data)
{
    if (q->n == HOST_QUEUE || size > HOST_MSG_BYTES) {
        q->overflow = 1;
        return;
    }
    q->items[q->n].size = size;
    memcpy(q->items[q->n].data, data, size);
    q->n++;
}

static LV2_Worker_Status host_schedule_work(LV2_Worker_Schedule_Handle h, uint32_t size,
                                            const void *data)
{
    host_inst *in = h;
    if (in->jobs.n == HOST_QUEUE || size > HOST_MSG_BYTES)
        return LV2_WORKER_ERR_NO_SPACE;
    host_push(&in->jobs, size, data);
    return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status host_respond(LV2_Worker_Respond_Handle h, uint32_t size, const void *data)
{
    host_inst *in = h;
    if (in->responses.n == HOST_QUEUE || size > HOST_MSG_BYTES)
        return LV2_WORKER_ERR_NO_SPACE;
    host_push(&in->responses, size, data);
    return LV2_WORKER_SUCCESS;
}

static int host_vprintf(LV2_Log_Handle h, LV2_URID type, const char *fmt, va_list ap)
{
    host_inst *in = h;
    int n = vsnprintf(in->log_last, sizeof in->log_last, fmt, ap);
    if (type == host_urid(LV2_LOG__Error))
        in->log_errors++;
    if (getenv("HOST_VERBOSE"))
        fprintf(stderr, "# plugin log: %s", in->log_last);
    return n;
}

static int host_printf(LV2_Log_Handle h, LV2_URID type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = host_vprintf(h, type, fmt, ap);
    va_end(ap);
    return n;
}

static inline int host_port(const host_inst *in, const char *symbol)
{
    const LilvPlugin *p = in->plugin;
    for (uint32_t i = 0; i < lilv_plugin_get_num_ports(p); i++) {
        const LilvPort *port = lilv_plugin_get_port_by_index(p, i);
        if (!strcmp(lilv_node_as_string(lilv_port_get_symbol(p, port)), symbol))
            return (int)i;
    }
    return -1;
}

/* Sets the control port `symbol`; returns -1 if there is none. */
static inline int host_set(host_inst *in, const char *symbol, float value)
{
    int i = host_port(in, symbol);
    if (i < 0)
        return -1;
    in->controls[i] = value;
    return 0;
}

static inline float host_get(host_inst *in, const char *symbol)
{
    int i = host_port(in, symbol);
    return i < 0 ? NAN : in->controls[i];
}

/* A new instance at rate, running blocks of at most max_block frames; controls at their
 * defaults. NULL if instantiation fails. */
static inline host_inst *host_new(host_world *w, double rate, uint32_t max_block)
{
    host_inst *in = calloc(1, sizeof *in);
    in->plugin = w->plugin;
    in->rate = rate;
    in->max_block = max_block;
    in->schedule = (LV2_Worker_Schedule){in, host_schedule_work};
    in->log = (LV2_Log_Log){in, host_printf, host_vprintf};
    in->f_map = (LV2_Feature){LV2_URID__map, &host_map_feature};
    in->f_unmap = (LV2_Feature){LV2_URID__unmap, &host_unmap_feature};
    in->f_schedule = (LV2_Feature){LV2_WORKER__schedule, &in->schedule};
    in->f_log = (LV2_Feature){LV2_LOG__log, &in->log};
    in->features[0] = &in->f_map;
    in->features[1] = &in->f_unmap;
    in->features[2] = &in->f_schedule;
    in->features[3] = &in->f_log;
    in->features[4] = NULL;
    in->li = lilv_plugin_instantiate(w->plugin, rate, in->features);
    if (!in->li) {
        free(in);
        return NULL;
    }
    in->worker = lilv_instance_get_extension_data(in->li, LV2_WORKER__interface);
    in->n_ports = (int)lilv_plugin_get_num_ports(w->plugin);
    in->in_atom = calloc(1, HOST_ATOM_BYTES);
    in->notify_atom = calloc(1, HOST_ATOM_BYTES);
    for (int c = 0; c < 2; c++)
        in->out[c] = calloc(max_block, sizeof(float));

    LilvNode *audio = lilv_new_uri(w->world, LV2_CORE__AudioPort);
    LilvNode *control = lilv_new_uri(w->world, LV2_CORE__ControlPort);
    LilvNode *input = lilv_new_uri(w->world, LV2_CORE__InputPort);
    float mins[HOST_MAX_PORTS], maxs[HOST_MAX_PORTS];
    lilv_plugin_get_port_ranges_float(w->plugin, mins, maxs, in->controls);
    int n_audio = 0;
    for (int i = 0; i < in->n_ports && i < HOST_MAX_PORTS; i++) {
        const LilvPort *port = lilv_plugin_get_port_by_index(w->plugin, (uint32_t)i);
        if (lilv_port_is_a(w->plugin, port, audio)) {
            if (n_audio < 2)
                in->audio_out[n_audio] = i;
            lilv_instance_connect_port(in->li, (uint32_t)i, n_audio < 2 ? in->out[n_audio] : NULL);
            n_audio++;
        } else if (lilv_port_is_a(w->plugin, port, control)) {
            lilv_instance_connect_port(in->li, (uint32_t)i, &in->controls[i]);
        } else if (lilv_port_is_a(w->plugin, port, input)) {
            lilv_instance_connect_port(in->li, (uint32_t)i, in->in_atom);
        } else {
            lilv_instance_connect_port(in->li, (uint32_t)i, in->notify_atom);
        }
    }
    lilv_node_free(audio);
    lilv_node_free(control);
    lilv_node_free(input);
    lilv_instance_activate(in->li);
    return in;
}

static inline void host_free(host_inst *in)
{
    if (!in)
        return;
    lilv_instance_deactivate(in->li);
    lilv_instance_free(in->li);
    free(in->in_atom);
    free(in->notify_atom);
    free(in->out[0]);
    free(in->out[1]);
    free(in);
}

/* Events for the next host_run_block(), at frame offsets inside it. */
static inline void host_midi(host_inst *in, uint32_t frame, uint8_t status, uint8_t d1, uint8_t d2)
{
    if (in->n_events == HOST_MAX_EVENTS)
        return;
    host_event *e = &in->events[in->n_events++];
    e->frame = frame;
    e->type = host_urid(LV2_MIDI__MidiEvent);
    e->midi[0] = status, e->midi[1] = d1, e->midi[2] = d2;
}

static inline void host_set_model(host_inst *in, uint32_t frame, const char *path)
{
    if (in->n_events == HOST_MAX_EVENTS)
        return;
    host_event *e = &in->events[in->n_events++];
    e->frame = frame;
    e->type = 0;
    snprintf(e->path, sizeof e->path, "%.1000s", path);
}

/* Builds the input sequence from the queued events (in frame order, as queued). */
static void host_build_input(host_inst *in)
{
    LV2_Atom_Forge forge;
    LV2_Atom_Forge_Frame seq, obj;
    lv2_atom_forge_init(&forge, &host_map_feature);
    lv2_atom_forge_set_buffer(&forge, in->in_atom, HOST_ATOM_BYTES);
    lv2_atom_forge_sequence_head(&forge, &seq, 0);
    for (int i = 0; i < in->n_events; i++) {
        const host_event *e = &in->events[i];
        lv2_atom_forge_frame_time(&forge, e->frame);
        if (e->type) {
            lv2_atom_forge_atom(&forge, 3, e->type);
            lv2_atom_forge_write(&forge, e->midi, 3);
        } else {
            lv2_atom_forge_object(&forge, &obj, 0, host_urid(LV2_PATCH__Set));
            lv2_atom_forge_key(&forge, host_urid(LV2_PATCH__property));
            lv2_atom_forge_urid(&forge, host_urid(HOST_PLUGIN_URI "#model"));
            lv2_atom_forge_key(&forge, host_urid(LV2_PATCH__value));
            lv2_atom_forge_path(&forge, e->path, (uint32_t)strlen(e->path));
            lv2_atom_forge_pop(&forge, &obj);
        }
    }
    lv2_atom_forge_pop(&forge, &seq);
    in->n_events = 0;
}

/* Looks for a patch:Set of the model in what the plugin wrote on its notify port. */
static void host_read_notify(host_inst *in)
{
    const LV2_Atom_Sequence *seq = (const LV2_Atom_Sequence *)in->notify_atom;
    if (seq->atom.type != host_urid(LV2_ATOM__Sequence))
        return;
    LV2_ATOM_SEQUENCE_FOREACH (seq, ev) {
        const LV2_Atom_Object *obj = (const LV2_Atom_Object *)&ev->body;
        if (ev->body.type != host_urid(LV2_ATOM__Object) ||
            obj->body.otype != host_urid(LV2_PATCH__Set))
            continue;
        const LV2_Atom *value = NULL;
        lv2_atom_object_get(obj, host_urid(LV2_PATCH__value), &value, 0);
        if (value && value->type == host_urid(LV2_ATOM__Path)) {
            in->notified_model++;
            snprintf(in->notified_path, sizeof in->notified_path, "%s",
                     (const char *)LV2_ATOM_BODY_CONST(value));
        }
    }
}

/* Runs one block of n <= max_block frames with the queued events; returns the number of
 * worker jobs the plugin scheduled during it. */
static inline int host_run_block(host_inst *in, uint32_t n)
{
    host_build_input(in);
    LV2_Atom *notify = (LV2_Atom *)in->notify_atom;
    notify->size = HOST_ATOM_BYTES - sizeof(LV2_Atom);
    notify->type = 0;
    int before = in->jobs.n;
    if (host_run_guard)
        host_run_guard(1);
    lilv_instance_run(in->li, n);
    if (host_run_guard)
        host_run_guard(0);
    host_read_notify(in);
    return in->jobs.n - before;
}

/* Runs the queued worker jobs, then delivers their responses (as a host does between
 * blocks). Returns the number of jobs run. */
static inline int host_work(host_inst *in)
{
    int n = in->jobs.n;
    for (int i = 0; i < n; i++)
        in->worker->work(in->li->lv2_handle, host_respond, in, in->jobs.items[i].size,
                         in->jobs.items[i].data);
    in->jobs.n = 0;
    for (int i = 0; i < in->responses.n; i++)
        in->worker->work_response(in->li->lv2_handle, in->responses.items[i].size,
                                  in->responses.items[i].data);
    in->responses.n = 0;
    if (in->worker->end_run)
        in->worker->end_run(in->li->lv2_handle);
    return n;
}

/* Runs silent blocks and the worker until the plugin asks for nothing more (its clips are
 * ready). Returns the number of jobs run, or -1 if it never settles. */
static inline int host_idle(host_inst *in)
{
    int total = 0;
    for (int i = 0; i < 10000; i++) {
        int asked = host_run_block(in, in->max_block < 64 ? in->max_block : 64);
        if (asked == 0 && in->jobs.n == 0)
            return total;
        total += host_work(in);
    }
    return -1;
}

#endif
