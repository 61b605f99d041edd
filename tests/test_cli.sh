#!/usr/bin/env bash
# The dmaudio command's front door: --help, --version, exit statuses and
# messages for unknown subcommands and bad options. Prints TAP.
# Usage: DMAUDIO=build/dmaudio tests/test_cli.sh
. "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"
cli_tmpdir cli

check "--help lists the subcommands" 0 '^usage: dmaudio' '' -- "$DMAUDIO" --help
check "--help names every subcommand" 0 '^  arch ' '' -- "$DMAUDIO" --help
check "--help states the exit statuses" 0 '^Exit status: 0 success, 1 runtime error, 2 usage error' '' -- "$DMAUDIO" --help
check "--version prints the version" 0 '^dmaudio [0-9]+\.[0-9]+\.[0-9]+ \(libdmaudio [0-9.]+\)$' '' -- "$DMAUDIO" --version
check "version subcommand" 0 '^dmaudio [0-9]' '' -- "$DMAUDIO" version
check "no arguments is a usage error" 2 '' '^usage: dmaudio' -- "$DMAUDIO"
check "unknown subcommand" 2 '' "'frobnicate' is not a dmaudio subcommand" -- "$DMAUDIO" frobnicate
check "unknown global option" 2 '' "unknown option '--frob'" -- "$DMAUDIO" --frob
check "help SUBCOMMAND" 0 '^usage: dmaudio arch' '' -- "$DMAUDIO" help arch
check "help for an unknown subcommand" 2 '' "unknown subcommand 'nope'" -- "$DMAUDIO" help nope
check "arch --help" 0 '--channels LIST' '' -- "$DMAUDIO" arch --help
check "arch describes the default network" 0 '^parameters  [0-9]+' '' -- "$DMAUDIO" arch
check "arch --json" 0 '^\{"parameters": [0-9]+, "tensors": [0-9]+' '' -- "$DMAUDIO" arch --json
check "arch lists tensors" 0 '^  down0\.res0\.conv1\.w +32 x 32 x 5$' '' -- "$DMAUDIO" arch --tensors
check "arch rejects an even kernel" 2 '' 'kernel 4 must be odd' -- "$DMAUDIO" arch --kernel 4
check "arch rejects a non-number" 2 '' "--blocks: 'two' is not an integer" -- "$DMAUDIO" arch --blocks two
check "arch rejects a length that does not divide" 2 '' 'not a multiple of 16' -- "$DMAUDIO" arch --length 1000
check "arch rejects a missing value" 2 '' "needs a value" -- "$DMAUDIO" arch --length
check "arch rejects an unknown option" 2 '' "unknown option '--bogus'" -- "$DMAUDIO" arch --bogus
check "arch rejects factors for the wrong level count" 2 '' 'needs 2 values' -- "$DMAUDIO" arch --channels 8,16,32 --factors 2

# the parameter count printed equals the JSON one, and a class table adds (n+1)*E
p0=$("$DMAUDIO" arch --json | sed 's/.*"parameters": \([0-9]*\).*/\1/')
p3=$("$DMAUDIO" arch --json --classes 3 | sed 's/.*"parameters": \([0-9]*\).*/\1/')
n=$((n + 1))
if [ -n "$p0" ] && [ -n "$p3" ] && [ $((p3 - p0)) -eq $((4 * 128)) ]; then
    echo "ok $n - 3 classes add a (3+1) x 128 embedding table"
else
    echo "not ok $n - class table size: $p0 -> $p3"
    fails=$((fails + 1))
fi

cli_done
