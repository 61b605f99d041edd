/* dmaudio — the command-line tool. A dispatch table of subcommands; usage and
 * messages on stderr, data on stdout. Exit status: 0 success, 1 runtime error,
 * 2 usage error. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const dm_command commands[] = {
    {"help", "show help for dmaudio or for one subcommand", "usage: dmaudio help [SUBCOMMAND]",
     cmd_help},
    {"version", "print the version of dmaudio and of its library", "usage: dmaudio version", cmd_version},
    {"arch", "describe a U-Net configuration: parameters, FLOPs, memory", DM_ARCH_USAGE, cmd_arch},
    {"sample", "generate clips with a model (the bundled one by default)", dm_sample_usage,
     cmd_sample},
    {"info", "describe a model, or an audio file and the recipe it carries", dm_info_usage,
     cmd_info},
    {"train", "train a model on a folder of sounds (sub-folders are classes)", dm_train_usage,
     cmd_train},
    {"synth", "write the synthetic tone/noise/click dataset", dm_synth_usage, cmd_synth},
    {"augment", "write variations of every sound in a folder (resumable, shardable)",
     dm_augment_usage, cmd_augment},
    {"play", "play audio files through the sound card (PortAudio)", dm_play_usage, cmd_play},
    {"devices", "list the audio output devices 'play --device' accepts", dm_devices_usage,
     cmd_devices},
    {"variation", "write variations of a sound (SDEdit at a strength)", dm_variation_usage,
     cmd_variation},
    {"interpolate", "morph between two seeds (slerp of their initial noise)",
     dm_interpolate_usage, cmd_interpolate},
    {"inpaint", "regenerate a part of a sound, keeping the rest", dm_inpaint_usage, cmd_inpaint},
    {"eval", "Frechet distance, KID and memorisation; or a model's ELBO in bits", dm_eval_usage,
     cmd_eval},
    {"spectrogram", "draw a sound's spectrogram as a PNG", dm_spectrogram_usage,
     cmd_spectrogram},
};

static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static const dm_command *find_command(const char *name)
{
    for (int i = 0; i < n_commands; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: dmaudio [--help] [--version] SUBCOMMAND [OPTIONS]\n"
            "\n"
            "Diffusion models for audio: train, sample and edit sounds on a CPU.\n"
            "\n"
            "subcommands:\n");
    for (int i = 0; i < n_commands; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'dmaudio help SUBCOMMAND' or 'dmaudio SUBCOMMAND --help' for its options.\n"
                 "Exit status: 0 success, 1 runtime error, 2 usage error; 130 or 143 when\n"
                 "stopped by Ctrl-C or SIGTERM (what was finished is kept, complete).\n"
                 "Environment: DMAUDIO_MODEL (the model when -m is absent), DMAUDIO_DEVICE\n"
                 "(the output device of play and sample --play).\n");
}

void dm_cli_print_command_help(const dm_command *cmd, FILE *out)
{
    fprintf(out, "%s\n\n%s\n", cmd->usage, cmd->summary);
}

static int is_help_option(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stdout);
        return DM_EXIT_OK;
    }
    if (argc > 2) {
        fprintf(stderr, "dmaudio help: one subcommand at a time (usage: dmaudio help "
                        "[SUBCOMMAND])\n");
        return DM_EXIT_USAGE;
    }
    if (is_help_option(argv[1])) {
        dm_cli_print_command_help(find_command("help"), stdout);
        return DM_EXIT_OK;
    }
    const dm_command *cmd = find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "dmaudio: help: unknown subcommand '%s' (see 'dmaudio --help')\n", argv[1]);
        return DM_EXIT_USAGE;
    }
    if (cmd->run == cmd_help || cmd->run == cmd_version) {
        dm_cli_print_command_help(cmd, stdout);
        return DM_EXIT_OK;
    }
    char *args[] = {argv[1], "--help", NULL};
    return cmd->run(2, args);
}

static int cmd_version(int argc, char **argv)
{
    if (argc == 2 && is_help_option(argv[1])) {
        dm_cli_print_command_help(find_command("version"), stdout);
        return DM_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "dmaudio: version takes no arguments\n");
        return DM_EXIT_USAGE;
    }
    printf("dmaudio %s (libdmaudio %s)\n", DM_CLI_VERSION, dm_version());
    if (dm_cli_group_library()) /* built with MPI=1 */
        printf("data-parallel training: %s\n", dm_cli_group_library());
    return DM_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return DM_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (is_help_option(name)) {
        print_usage(stdout);
        return DM_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        return cmd_version(1, argv + 1);
    if (name[0] == '-') {
        fprintf(stderr, "dmaudio: unknown option '%s' (see 'dmaudio --help')\n", name);
        return DM_EXIT_USAGE;
    }
    const dm_command *cmd = find_command(name);
    if (!cmd) {
        fprintf(stderr, "dmaudio: '%s' is not a dmaudio subcommand (see 'dmaudio --help')\n", name);
        return DM_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
