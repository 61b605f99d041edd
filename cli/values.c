/* Option values and output helpers shared by sample, info, train and synth:
 * whole 64-bit numbers (seeds), real numbers in a range, and JSON strings. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int dm_cli_u64(const char *option, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || text[0] == '+' || text[0] == ' ') {
        fprintf(stderr, "dmaudio: %s: '%s' is not a whole number in 0..18446744073709551615\n",
                option, text);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

int dm_cli_double(const char *option, const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "dmaudio: %s: '%s' is not a number in %g..%g\n", option, text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

void dm_cli_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}
