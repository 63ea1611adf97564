#!/usr/bin/env bash
# Build (once) and install llama-cpp-python into the given Python, for any x86-64 CPU.
#   bash scripts/build-llama.sh .venv/bin/python
# Why not a plain `pip install llama-cpp-python`: that compiles with -march=native, so a wheel carries the
# build CPU's instructions. On an Intel Xeon with AMX that build died at the first embedding (SIGILL/SIGSEGV
# in llama.cpp's AMX kernel); a wheel with AVX-512 dies on a CPU without it (a venv or wheel cache shared
# between machines, a CI image built on one host and run on another). So the flags are chosen here
# (SEMCODE_LLAMA_CPU):
# - "dispatch", the default on x86-64: ggml's CPU backend compiled once per instruction-set level
#   (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS), as llama_cpp/lib/libggml-cpu-<variant>.so; the engine loads
#   the best one this CPU runs before the first model (engine/models/backend.py), so the same wheel runs
#   AVX-512 code on an AVX-512 CPU and AVX2 or baseline code elsewhere. Only the variants in
#   SEMCODE_LLAMA_VARIANTS are compiled (default below: ggml's list of 14 minus the rare levels, each one
#   compile of ggml-cpu); sapphirerapids, ggml's one AMX variant, is never built, so an AMX Xeon gets zen4
#   (AVX-512 with VBMI/VNNI/BF16). ggml's CMake has no option to choose variants: the vendored
#   ggml/src/CMakeLists.txt is patched in the unpacked sdist (the variants left out are commented out);
# - "portable": the x86-64-v3 set (AVX, AVX2, FMA, F16C, BMI2), AVX-512 and AMX off, one CPU backend
#   linked in, which every x86-64 CPU sold since ~2015 runs;
# - "avx512", only on a CPU that has avx512f/cd/vl/dq/bw: + AVX-512 and VBMI/VNNI/BF16 where the CPU
#   has them. Such a build runs on this CPU family only.
# The engine checks the marker written below against the CPU before loading llama.cpp and says so
# instead of dying of SIGILL. AMX is always off. Set CMAKE_ARGS yourself to choose another set (no
# variants are patched out then). The wheel cache is keyed by the flags and the variants, so a machine
# never reuses a wheel built with others.
#   bash scripts/build-llama.sh --print-cmake-args    # the flags, for a plain `pip install` (README)
#   bash scripts/build-llama.sh --print-requires      # the /proc/cpuinfo flags a build with them needs
#   bash scripts/build-llama.sh --print-variants      # the dispatch variants built and their cpuinfo flags
#   bash scripts/build-llama.sh --cache-key PYTHON     # the wheel cache key (scripts/install-test.sh)
# SEMCODE_CPUINFO=FILE reads that file instead of /proc/cpuinfo (tests).
set -euo pipefail
mode=install
case "${1:-}" in
  --print-cmake-args) mode=print ;;
  --print-requires) mode=requires ;;
  --print-variants) mode=variants ;;
  --cache-key) mode=key; shift ;;
esac
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
# (`|| true`: no cpuinfo, or no flags line, means the portable set, not an exit under `set -e -o pipefail`)
cpu_flags=" $({ grep -m1 -E '^flags[[:space:]]*:' "${SEMCODE_CPUINFO:-/proc/cpuinfo}" 2>/dev/null || true; } | cut -d: -f2) "
has() { for f in "$@"; do [[ $cpu_flags == *" $f "* ]] || return 1; done; }
on_off() { if has "$1"; then echo ON; else echo OFF; fi; }
# ggml's x86 CPU variants (llama.cpp vendored by llama-cpp-python 0.3.36, ggml/src/CMakeLists.txt) and the
# /proc/cpuinfo flags each one's code needs, lowest first; engine/models/cpu_variants.py holds the same
# table (tests/unit/test_cpu_build.py keeps them equal) and picks among the built ones at load.
haswell_flags="sse4_2 avx f16c fma avx2 bmi2"
skx_flags="$haswell_flags avx512f avx512cd avx512vl avx512dq avx512bw"
declare -A variant_flags=(
  [x64]="" [sse42]="sse4_2" [sandybridge]="sse4_2 avx" [ivybridge]="sse4_2 avx f16c"
  [piledriver]="sse4_2 avx f16c fma" [haswell]="$haswell_flags" [alderlake]="$haswell_flags avx_vnni"
  [skylakex]="$skx_flags" [cannonlake]="$skx_flags avx512vbmi" [cascadelake]="$skx_flags avx512_vnni"
  [icelake]="$skx_flags avx512vbmi avx512_vnni" [cooperlake]="$skx_flags avx512_vnni avx512_bf16"
  [zen4]="$skx_flags avx512vbmi avx512_vnni avx512_bf16"
  [sapphirerapids]="$skx_flags avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8"
)
variant_order="x64 sse42 sandybridge ivybridge piledriver haswell alderlake skylakex cannonlake cascadelake icelake cooperlake zen4 sapphirerapids"
requires=""  # the cpuinfo flags the chosen build runs on (the marker the engine checks)
variants=""  # a dispatch build: the CPU variants compiled
if [[ -z "${CMAKE_ARGS:-}" ]]; then
  case "$(uname -m)" in
    x86_64|amd64)
      target="${SEMCODE_LLAMA_CPU:-dispatch}"
      avx512=(avx512f avx512cd avx512vl avx512dq avx512bw)
      if [[ $target == avx512 ]] && ! has avx avx2 fma f16c bmi2 "${avx512[@]}"; then
        echo "build-llama.sh: SEMCODE_LLAMA_CPU=avx512 needs a CPU with ${avx512[*]}; this one lacks some" >&2
        exit 2
      fi
      CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
      requires="pni ssse3 avx avx2 fma f16c bmi2"
      case "$target" in
        dispatch)
          requires=""
          # The variants set their own flags; the modules go beside libllama (not site-packages/bin).
          CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DCMAKE_INSTALL_BINDIR=llama_cpp/lib"
          wanted=" ${SEMCODE_LLAMA_VARIANTS:-x64 haswell skylakex cascadelake icelake zen4 alderlake} "
          for v in $wanted; do
            if [[ -z ${variant_flags[$v]+set} ]]; then
              echo "build-llama.sh: unknown CPU variant '$v' in SEMCODE_LLAMA_VARIANTS (ggml's: $variant_order)" >&2
              exit 2
            fi
            if [[ ${variant_flags[$v]} == *amx* ]]; then
              echo "build-llama.sh: '$v' uses AMX, whose llama.cpp kernel crashed on an Intel Xeon: never built" >&2
              exit 2
            fi
          done
          for v in $variant_order; do [[ $wanted == *" $v "* ]] && variants+="${variants:+ }$v"; done
          [[ -n $variants ]] || { echo "build-llama.sh: SEMCODE_LLAMA_VARIANTS is empty" >&2; exit 2; }
          # the flags every built variant needs (for the default, none: x64 runs on any x86-64 CPU)
          for f in ${variant_flags[${variants%% *}]}; do
            all=1
            for v in $variants; do [[ " ${variant_flags[$v]} " == *" $f "* ]] || all=0; done
            [[ $all == 1 ]] && requires+="${requires:+ }$f"
          done
          ;;
        avx512)
          vbmi=$(on_off avx512vbmi) vnni=$(on_off avx512_vnni) bf16=$(on_off avx512_bf16)
          CMAKE_ARGS+=" -DGGML_AVX512=ON -DGGML_AVX512_VBMI=$vbmi -DGGML_AVX512_VNNI=$vnni -DGGML_AVX512_BF16=$bf16"
          requires+=" ${avx512[*]}"
          [[ $vbmi == ON ]] && requires+=" avx512vbmi"
          [[ $vnni == ON ]] && requires+=" avx512_vnni"
          [[ $bf16 == ON ]] && requires+=" avx512_bf16"
          ;;
        portable)
          CMAKE_ARGS+=" -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF"
          ;;
        *) echo "build-llama.sh: SEMCODE_LLAMA_CPU must be dispatch, portable or avx512, not '$target'" >&2; exit 2 ;;
      esac
      # AMX always off: llama.cpp's AMX kernel crashed on an Intel Xeon (see the top of this file).
      [[ $target == dispatch ]] || CMAKE_ARGS+=" -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
      ;;
    *) CMAKE_ARGS="-DGGML_NATIVE=OFF" ;;  # aarch64 etc.: the compiler's baseline for the architecture
  esac
fi
if [[ $mode == variants ]]; then
  for v in $variants; do printf '%s:%s\n' "$v" "${variant_flags[$v]:+ ${variant_flags[$v]}}"; done
  exit 0
fi
if [[ $mode == print ]]; then
  printf '%s\n' "$CMAKE_ARGS"
  exit 0
fi
if [[ $mode == requires ]]; then
  printf '%s\n' "$requires"
  exit 0
fi
PY="${1:?usage: build-llama.sh PYTHON}"
export CMAKE_ARGS
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
# (the variants join the key only when there are some: the portable and avx512 keys stay what they were)
key="$(printf '%s|%s|%s%s' "$VERSION" "$CMAKE_ARGS" "$("$PY" -c 'import sys; print(sys.implementation.cache_tag)')" \
  "${variants:+|variants=$variants}" | sha1sum | cut -c1-12)"
if [[ $mode == key ]]; then
  printf '%s\n' "$key"
  exit 0
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/semcode/wheels/llama-$key"
marker="$("$PY" -c 'import sys; print(sys.prefix)')/semcode-llama-build.txt"

if [[ -f "$marker" && "$(cat "$marker")" == "$key" ]] && "$PY" -c "import llama_cpp" 2>/dev/null; then
  exit 0
fi
if ! compgen -G "$cache/llama_cpp_python-*.whl" >/dev/null; then
  echo "setup: building llama-cpp-python $VERSION (about 7 minutes on 2 cores, once; the dispatch" \
    "build ~30% more: one ggml-cpu compile per variant); CMAKE_ARGS=$CMAKE_ARGS${variants:+; CPU variants: $variants}" >&2
  tmp="$cache.tmp.$$"
  rm -rf "$tmp"
  if [[ -z $variants ]]; then
    "$PY" -m pip wheel --quiet --no-cache-dir --no-deps --no-binary llama-cpp-python \
      "llama-cpp-python==$VERSION" -w "$tmp"
  else
    # The sdist, unpacked, with the variants not wanted commented out of ggml's list, then built.
    "$PY" -m pip download --quiet --no-cache-dir --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$tmp/sdist"
    tar -C "$tmp/sdist" -xzf "$tmp"/sdist/llama_cpp_python-*.tar.gz
    src="$(echo "$tmp"/sdist/llama_cpp_python-*/)"
    list="$src/vendor/llama.cpp/ggml/src/CMakeLists.txt"
    for v in $variant_order; do
      [[ " $variants " == *" $v "* ]] && continue
      sed -i -E "s/^([[:space:]]*)(ggml_add_cpu_backend_variant\($v([[:space:]]|\)))/\1# semcode: not built: \2/" "$list"
    done
    # every variant wanted is still there, and nothing else of the x86 list (the sdist is the one we know)
    left="$(grep -oE "^[[:space:]]*ggml_add_cpu_backend_variant\(($(tr ' ' '|' <<<"$variant_order"))[[:space:])]" "$list" \
      | sed -E 's/.*\(([a-z0-9]+).*/\1/' | sort | tr '\n' ' ')"
    if [[ "$left" != "$(tr ' ' '\n' <<<"$variants" | sort | tr '\n' ' ')" ]]; then
      echo "build-llama.sh: ggml's CPU variant list is not the expected one (left: '$left', wanted: '$variants')" >&2
      rm -rf "$tmp"
      exit 1
    fi
    "$PY" -m pip wheel --quiet --no-cache-dir --no-deps "$src" -w "$tmp"
  fi
  mkdir -p "$cache"
  mv "$tmp"/llama_cpp_python-*.whl "$cache"/
  rm -rf "$tmp"
  printf '%s\n' "$CMAKE_ARGS${variants:+ (variants: $variants)}" >"$cache/CMAKE_ARGS"
fi
"$PY" -m pip install --quiet --force-reinstall --no-deps "$cache"/llama_cpp_python-*.whl
"$PY" -m pip install --quiet "llama-cpp-python==$VERSION" --no-index --find-links "$cache" 2>/dev/null \
  || "$PY" -m pip install --quiet "numpy>=1.26" "typing-extensions>=4.5" "diskcache>=5.6" "jinja2>=2.11.3"
printf '%s\n' "$key" >"$marker"
# What this build needs from a CPU, beside the library it describes (its size tells a marker left behind
# by a later plain `pip install` from a current one): engine/models/cpu_build.py reads it before llama.cpp
# is loaded. A custom CMAKE_ARGS records no requirement (we cannot tell what it enables).
# A dispatch build describes its lowest variant's file and lists the variants it built.
"$PY" - "$requires" "$CMAKE_ARGS" "$variants" <<'PYEOF'
import importlib.util, json, pathlib, sys
spec = importlib.util.find_spec("llama_cpp")
variants = sys.argv[3].split()
name = f"libggml-cpu-{variants[0]}.so" if variants else "libggml-cpu.so"
lib = pathlib.Path(list(spec.submodule_search_locations)[0]) / "lib" / name
marker = {"requires": sys.argv[1].split(), "cmake_args": sys.argv[2], "lib": str(lib),
          "lib_size": lib.stat().st_size if lib.exists() else -1, "variants": variants}
(pathlib.Path(sys.prefix) / "semcode-llama-cpu.json").write_text(json.dumps(marker) + "\n")
PYEOF
