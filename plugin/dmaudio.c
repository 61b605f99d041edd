// dmaudio LV2 instrument — skeleton.
//
// MIDI in (an atom:Sequence on port 0), stereo audio out (ports 1 and 2). For now it walks
// the incoming events and renders silence; generation, the clip pool and the worker come
// later. run() never allocates, frees, locks, logs or touches files.

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/core/lv2_util.h>
#include <lv2/midi/midi.h>
#include <lv2/urid/urid.h>

#define DM_PLUGIN_URI "https://dmaudio.dev/plugins/dmaudio"

typedef enum {
    DM_PORT_CONTROL = 0, // atom:Sequence of midi:MidiEvent
    DM_PORT_OUT_L = 1,
    DM_PORT_OUT_R = 2,
} dm_plugin_port;

typedef struct {
    LV2_URID midi_event;
} dm_plugin_uris;

typedef struct {
    const LV2_URID_Map *map;
    dm_plugin_uris uris;

    // ports (connected by the host, may change between run() calls)
    const LV2_Atom_Sequence *control;
    float *out_l;
    float *out_r;

    double rate;
} dm_plugin;

// ---------------------------------------------------------------------------------------------
// lifecycle

static LV2_Handle instantiate(const LV2_Descriptor *descriptor, double rate,
                              const char *bundle_path, const LV2_Feature *const *features) {
    (void)descriptor;
    (void)bundle_path;

    const LV2_URID_Map *map = NULL;
    const char *missing = lv2_features_query(features, LV2_URID__map, &map, true, NULL);
    if (missing) {
        return NULL; // required feature absent: the host must not use this plugin
    }

    dm_plugin *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    self->map = map;
    self->uris.midi_event = map->map(map->handle, LV2_MIDI__MidiEvent);
    self->rate = rate;
    return (LV2_Handle)self;
}

static void connect_port(LV2_Handle instance, uint32_t port, void *data) {
    dm_plugin *self = (dm_plugin *)instance;
    switch ((dm_plugin_port)port) {
    case DM_PORT_CONTROL:
        self->control = (const LV2_Atom_Sequence *)data;
        break;
    case DM_PORT_OUT_L:
        self->out_l = (float *)data;
        break;
    case DM_PORT_OUT_R:
        self->out_r = (float *)data;
        break;
    }
}

static void activate(LV2_Handle instance) { (void)instance; }

// ---------------------------------------------------------------------------------------------
// audio thread

static void run(LV2_Handle instance, uint32_t n_samples) {
    dm_plugin *self = (dm_plugin *)instance;

    if (self->out_l) {
        memset(self->out_l, 0, n_samples * sizeof(float));
    }
    if (self->out_r) {
        memset(self->out_r, 0, n_samples * sizeof(float));
    }
    if (!self->control) {
        return;
    }

    LV2_ATOM_SEQUENCE_FOREACH (self->control, ev) {
        if (ev->body.type != self->uris.midi_event || ev->body.size == 0) {
            continue;
        }
        const uint8_t *msg = (const uint8_t *)LV2_ATOM_BODY_CONST(&ev->body);
        switch (lv2_midi_message_type(msg)) {
        case LV2_MIDI_MSG_NOTE_ON:
            // later: start a clip at ev->time.frames (pitch from the note, gain from velocity)
            break;
        default:
            break;
        }
    }
}

static void deactivate(LV2_Handle instance) { (void)instance; }

static void cleanup(LV2_Handle instance) { free(instance); }

static const void *extension_data(const char *uri) {
    (void)uri;
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// descriptor

static const LV2_Descriptor descriptor = {
    DM_PLUGIN_URI, instantiate, connect_port, activate, run, deactivate, cleanup, extension_data,
};

LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index) {
    return index == 0 ? &descriptor : NULL;
}
