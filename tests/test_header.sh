#!/usr/bin/env bash
# The public headers compile on their own as strict C99, C11 and C++, with
# every warning an error: users embed them in all three. Prints TAP.
set -u
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
fails=0
check() {
    local name=$1
    shift
    n=$((n + 1))
    if "$@" >"$tmp/log" 2>&1; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        sed 's/^/#   /' "$tmp/log" | head -10
        fails=$((fails + 1))
    fi
}
for h in core/include/*.h; do
    printf '#include "%s"\nint main(void) { return 0; }\n' "$(basename "$h")" > "$tmp/t.c"
    check "$(basename "$h") as C99" "$cc" -std=c99 -pedantic -Wall -Wextra -Werror -Icore/include -c "$tmp/t.c" -o "$tmp/t.o"
    check "$(basename "$h") as C11" "$cc" -std=c11 -pedantic -Wall -Wextra -Werror -Icore/include -c "$tmp/t.c" -o "$tmp/t.o"
    if command -v g++ >/dev/null; then
        check "$(basename "$h") as C++" g++ -x c++ -std=c++11 -pedantic -Wall -Wextra -Werror -Icore/include -c "$tmp/t.c" -o "$tmp/t.o"
    fi
done
echo "1..$n"
[ "$fails" -eq 0 ]
