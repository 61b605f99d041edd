/* dmaudio arch: builds a U-Net from options and describes it — parameter
 * count, forward FLOPs and the memory of an inference and a training pass. A
 * quick way to size a network for a machine before training it. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int dm_cli_int(const char *option, const char *text, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) {
        fprintf(stderr, "dmaudio: %s: '%s' is not an integer in %ld..%ld\n", option, text, lo, hi);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* "32,64,128" -> values; returns the count or -1 after a usage message. */
int dm_cli_int_list(const char *option, const char *text, int *values, int max, long lo,
                    long hi)
{
    char buf[256];
    if (strlen(text) >= sizeof buf) {
        fprintf(stderr, "dmaudio: %s: list too long\n", option);
        return -1;
    }
    strcpy(buf, text);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max) {
            fprintf(stderr, "dmaudio: %s: at most %d values\n", option, max);
            return -1;
        }
        if (dm_cli_int(option, tok, lo, hi, &values[n]) < 0)
            return -1;
        n++;
    }
    if (n == 0 && strcmp(option, "--attention") != 0) {
        fprintf(stderr, "dmaudio: %s: empty list\n", option);
        return -1;
    }
    return n;
}

int cmd_arch(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"channels", required_argument, 0, 'c'}, {"factors", required_argument, 0, 'f'},
        {"attention", required_argument, 0, 'a'}, {"blocks", required_argument, 0, 'b'},
        {"heads", required_argument, 0, 'H'},    {"groups", required_argument, 0, 'g'},
        {"kernel", required_argument, 0, 'k'},   {"classes", required_argument, 0, 'C'},
        {"in", required_argument, 0, 'i'},       {"out", required_argument, 0, 'o'},
        {"positions", required_argument, 0, 'P'},
        {"length", required_argument, 0, 'L'},   {"batch", required_argument, 0, 'B'},
        {"tensors", no_argument, 0, 't'},        {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0},
    };
    dm_unet_config cfg = dm_unet_default_config();
    int length = 16384, batch = 1, tensors = 0, json = 0, n_factors = -1, n_channels = -1;
    int attn[DM_MAX_LEVELS], n_attn = -1;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        int r = 0;
        switch (opt) {
        case 'c':
            r = n_channels =
                dm_cli_int_list("--channels", optarg, cfg.channels, DM_MAX_LEVELS, 1, 8192);
            break;
        case 'f':
            r = n_factors =
                dm_cli_int_list("--factors", optarg, cfg.factors, DM_MAX_LEVELS - 1, 2, 64);
            break;
        case 'a':
            r = n_attn =
                dm_cli_int_list("--attention", optarg, attn, DM_MAX_LEVELS, 0, DM_MAX_LEVELS - 1);
            break;
        case 'b': r = dm_cli_int("--blocks", optarg, 1, 16, &cfg.blocks); break;
        case 'H': r = dm_cli_int("--heads", optarg, 1, 1024, &cfg.heads); break;
        case 'g': r = dm_cli_int("--groups", optarg, 1, 1024, &cfg.groups); break;
        case 'k': r = dm_cli_int("--kernel", optarg, 1, 63, &cfg.kernel); break;
        case 'C': r = dm_cli_int("--classes", optarg, 0, 65535, &cfg.n_classes); break;
        case 'P': r = dm_cli_int("--positions", optarg, 0, 256, &cfg.positions); break;
        case 'i': r = dm_cli_int("--in", optarg, 1, 4096, &cfg.in_channels); break;
        case 'o': r = dm_cli_int("--out", optarg, 1, 4096, &cfg.out_channels); break;
        case 'L': r = dm_cli_int("--length", optarg, 1, 1 << 24, &length); break;
        case 'B': r = dm_cli_int("--batch", optarg, 1, 4096, &batch); break;
        case 't': tensors = 1; break;
        case 'j': json = 1; break;
        case 'h': puts(DM_ARCH_USAGE); return DM_EXIT_OK;
        case ':':
            fprintf(stderr, "dmaudio arch: option '%s' needs a value\n", argv[optind - 1]);
            return DM_EXIT_USAGE;
        default:
            fprintf(stderr, "dmaudio arch: unknown option '%s' (see 'dmaudio arch --help')\n",
                    argv[optind - 1]);
            return DM_EXIT_USAGE;
        }
        if (r < 0)
            return DM_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "dmaudio arch: unexpected argument '%s'\n", argv[optind]);
        return DM_EXIT_USAGE;
    }
    if (n_channels > 0) {
        cfg.n_levels = n_channels;
        if (n_factors < 0) /* default: factor 4 between every level */
            for (int l = 0; l < DM_MAX_LEVELS; l++)
                cfg.factors[l] = 4;
        if (n_attn < 0) { /* default: attention at the coarsest level only */
            memset(cfg.attention, 0, sizeof cfg.attention);
            cfg.attention[cfg.n_levels - 1] = 1;
        }
    }
    if (n_factors >= 0 && n_factors != cfg.n_levels - 1) {
        fprintf(stderr, "dmaudio arch: --factors needs %d values for %d levels, got %d\n",
                cfg.n_levels - 1, cfg.n_levels, n_factors);
        return DM_EXIT_USAGE;
    }
    if (n_attn >= 0) {
        memset(cfg.attention, 0, sizeof cfg.attention);
        for (int i = 0; i < n_attn; i++) {
            if (attn[i] >= cfg.n_levels) {
                fprintf(stderr, "dmaudio arch: --attention: level %d does not exist (0..%d)\n",
                        attn[i], cfg.n_levels - 1);
                return DM_EXIT_USAGE;
            }
            cfg.attention[attn[i]] = 1;
        }
    }
    dm_error err;
    if (dm_unet_config_check(&cfg, &err) != DM_OK) {
        fprintf(stderr, "dmaudio arch: %s\n", err.message);
        return DM_EXIT_USAGE;
    }
    int mult = dm_unet_length_multiple(&cfg);
    if (length % mult) {
        fprintf(stderr, "dmaudio arch: --length %d is not a multiple of %d (the product of the factors)\n",
                length, mult);
        return DM_EXIT_USAGE;
    }
    dm_unet *net;
    if (dm_unet_create(&cfg, 0, &net, &err) != DM_OK) {
        fprintf(stderr, "dmaudio arch: %s\n", err.message);
        return DM_EXIT_FAILURE;
    }
    size_t mem[2] = {0, 0};
    for (int train = 0; train < 2; train++) {
        dm_unet_state_params sp = dm_unet_state_default_params();
        sp.max_batch = batch, sp.length = length, sp.train = train;
        dm_unet_state *st;
        if (dm_unet_state_create(net, &sp, &st, &err) != DM_OK) {
            fprintf(stderr, "dmaudio arch: %s\n", err.message);
            dm_unet_free(net);
            return DM_EXIT_FAILURE;
        }
        mem[train] = dm_unet_state_bytes(st);
        dm_unet_state_free(st);
    }
    size_t np = dm_unet_n_params(net);
    double flops = dm_unet_forward_flops(net, batch, length);
    if (json) {
        printf("{\"parameters\": %zu, \"tensors\": %d, \"forward_flops\": %.0f, "
               "\"length\": %d, \"batch\": %d, \"state_bytes\": %zu, \"train_state_bytes\": %zu}\n",
               np, dm_unet_n_tensors(net), flops, length, batch, mem[0], mem[1]);
    } else {
        printf("levels      %d (widths", cfg.n_levels);
        for (int l = 0; l < cfg.n_levels; l++)
            printf(" %d%s", cfg.channels[l], cfg.attention[l] ? "+attn" : "");
        printf(")\nparameters  %zu (%.2f MB as float32)\n", np, np * 4.0 / 1e6);
        printf("forward     %.3f GFLOP for batch %d x %d samples\n", flops / 1e9, batch, length);
        printf("memory      %.1f MB inference, %.1f MB training\n", mem[0] / 1e6, mem[1] / 1e6);
        if (tensors) {
            for (int i = 0; i < dm_unet_n_tensors(net); i++) {
                dm_tensor_info ti;
                dm_unet_tensor(net, i, &ti);
                printf("  %-28s", ti.name);
                for (int d = 0; d < ti.ndim; d++)
                    printf("%s%d", d ? " x " : " ", ti.dims[d]);
                printf("\n");
            }
        }
    }
    dm_unet_free(net);
    return DM_EXIT_OK;
}
