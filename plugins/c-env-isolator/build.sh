#!/usr/bin/env bash
# Compiles env_isolator.c into a WebAssembly core module with Debian's
# clang-14 and wasi-libc:  build.sh OUT.wasm
# Exits 3, saying what to install, when the toolchain is missing.
set -euo pipefail
out=${1:?usage: build.sh OUT.wasm}
here=$(cd "$(dirname "$0")" && pwd)
missing() {
  echo "build.sh: $1 is missing (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)" >&2
  exit 3
}
command -v clang-14 >/dev/null || missing clang-14
command -v wasm-ld-14 >/dev/null || missing wasm-ld-14
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing wasi-libc
compgen -G "/usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a" >/dev/null \
  || missing libclang-rt-14-dev-wasm32
# No entry point and no start files: the host calls the exports. Nothing
# the plugin calls needs WASI, so the module imports nothing.
exec clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra -Werror \
  -nostartfiles -Wl,--no-entry -Wl,--strip-all -o "$out" "$here/env_isolator.c"
