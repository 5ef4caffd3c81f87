#!/usr/bin/env bash
# Build the libFuzzer targets of fuzz/ with ASan + UBSan: the C core (csrc/, without the
# Python bindings) compiled with clang, linked against the oneDNN of the active Python
# environment (pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0).
#   fuzz/build.sh [OUT_DIR]        (default: build/fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build/fuzz}
CC=${CC:-clang}
mkdir -p "$OUT/obj"
read -r INC LIB < <(python - <<'PY'
from importlib import metadata
from pathlib import Path
def find(names, suffix):
    for n in names:
        try:
            d = metadata.distribution(n)
        except metadata.PackageNotFoundError:
            continue
        for f in d.files or ():
            if ("/" + str(f)).endswith(suffix):
                return Path(d.locate_file(f)).resolve()
    raise SystemExit(f"fuzz/build.sh: {suffix} not found: pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0")
h = find(("onednn-devel-cpu-gomp", "onednn-devel"), "oneapi/dnnl/dnnl.h")
l = find(("onednn-cpu-gomp", "onednn"), "/libdnnl.so.3")
print(h.parents[2], l.parent)
PY
)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# serial: OpenMP pragmas are ignored, so a variable that only feeds an `if (par)` clause goes unused
CFLAGS="-std=c11 -O1 -g -march=x86-64-v3 $SAN -D_GNU_SOURCE -Icsrc -Ifuzz -Ifuzz/serial -I$INC -Wall -Wno-unknown-pragmas -Wno-unused-function -Wno-unused-variable"
objs=()
for src in $(find csrc -name '*.c' -not -path 'csrc/python/*' | sort); do
    obj="$OUT/obj/$(echo "${src%.c}" | tr / _).o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj" &
        while [ "$(jobs -r | wc -l)" -ge "${JOBS:-2}" ]; do wait -n; done
    fi
    objs+=("$obj")
done
wait
for target in fuzz/fuzz_*.c; do
    name=$(basename "${target%.c}")
    $CC $CFLAGS -fsanitize=fuzzer "$target" "${objs[@]}" -o "$OUT/$name" \
        -L"$LIB" -l:libdnnl.so.3 -Wl,-rpath,"$LIB" -lm -lpthread
    echo "built $OUT/$name"
done
