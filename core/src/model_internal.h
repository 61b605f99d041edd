/* What the trainer needs from the model module: the model's part of a
 * container file (keys and named tensors) under a tensor-name prefix. */
#ifndef DM_MODEL_INTERNAL_H
#define DM_MODEL_INTERNAL_H

#include "dmaudio.h"
#include "dmfile.h"

dm_status dm_model_write_keys(const dm_model *m, dm_file_writer *w, const char *kind);
/* Adds one tensor per U-Net parameter, named prefix + name, from weights
 * (dm_unet_n_params floats laid out like the network's buffer). */
dm_status dm_model_write_tensors(const dm_model *m, dm_file_writer *w, const char *prefix,
                                 const float *weights, int dtype);
/* Builds a model from a file's keys (weights not read). */
dm_status dm_model_from_keys(const dm_file *f, const char *path, dm_model **out, dm_error *err);
/* Reads prefix + name for every parameter into dst. */
dm_status dm_model_read_tensors(const dm_model *m, const dm_file *f, const char *path,
                                const char *prefix, float *dst, dm_error *err);
dm_model *dm_model_clone(const dm_model *m);
/* dm_model_load's checks on a container already parsed (path names it in
 * messages): what the model fuzzer drives. */
dm_status dm_model_from_container(const dm_file *f, const char *path, dm_model **out,
                                  dm_error *err);

#endif
