/* Shared declarations of the dmaudio command's subcommands. */
#ifndef DM_CLI_H
#define DM_CLI_H

#include "dmaudio.h"

#include <stdio.h>

#define DM_CLI_VERSION "0.1.0"

enum { DM_EXIT_OK = 0, DM_EXIT_FAILURE = 1, DM_EXIT_USAGE = 2 };

typedef struct dm_command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand's name */
} dm_command;

void dm_cli_print_command_help(const dm_command *cmd, FILE *out);

#define DM_ARCH_USAGE                                                                           \
    "usage: dmaudio arch [OPTIONS]\n"                                                           \
    "\n"                                                                                        \
    "options (defaults in brackets):\n"                                                         \
    "  --channels LIST   widths per level, comma-separated [32,64,128]\n"                      \
    "  --factors LIST    length ratio between levels, even [4,4]\n"                            \
    "  --attention LIST  levels with self-attention, comma-separated indices [2]\n"            \
    "  --blocks N        residual blocks per level [1]\n"                                       \
    "  --heads N         attention heads [4]\n"                                                 \
    "  --groups N        GroupNorm groups [4]\n"                                                \
    "  --kernel N        convolution kernel, odd [5]\n"                                         \
    "  --classes N       number of classes, 0 for unconditional [0]\n"                          \
    "  --in N, --out N   input and output channels [1, 1]\n"                                    \
    "  --length N        samples per clip, for FLOPs and memory [16384]\n"                      \
    "  --batch N         batch size, for FLOPs and memory [1]\n"                                \
    "  --tensors         also list every parameter tensor\n"                                    \
    "  --json            print JSON on stdout instead of text\n"                                \
    "  -h, --help        show this help"

int cmd_arch(int argc, char **argv);

/* Parses a whole decimal integer in [lo, hi]; prints a usage error naming the
 * option and returns -1 when it is not one. */
int dm_cli_int(const char *option, const char *text, long lo, long hi, int *out);

#endif
