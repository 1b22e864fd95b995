#!/bin/sh
# gcr's slow start: ./gcr (launch/gcr.S) runs this script, with its own
# arguments and GCR_SELF set, whenever it cannot just exec Deno on a fresh
# bundle: no bundle yet, a source edited since, GCR_NO_BUNDLE set, or no
# cache folder for Deno. All permissions: gcr calls libc through FFI.
#
# Start-up time is most of a container's start: loading ~30 modules costs
# Deno 6-9 ms more than one file, so gcr runs a bundle of itself
# (.cache/bundle, code-split so the image code loads only when used) when
# the bundle is newer than every source file, rebuilds it when it is not,
# and runs the sources directly when it cannot (e.g. a read-only checkout)
# or when GCR_NO_BUNDLE is set.
#
# Which files count is listed when the bundle is built, twice: in
# bundle/sources.sh (`set -- '/…/main.ts' …`, for this script) and in
# bundle/launch (for ./gcr: the command that runs the bundle, an empty
# field, the sources; NUL-terminated fields): every .ts file but the tests'
# and benchmarks', at any depth, deno.json and this script (which writes
# the command), so an edit anywhere is seen. A new file matters only once an existing one imports it: that edit
# is seen.
#
# The bundle runs with --no-config: it needs nothing of deno.json (whose
# imports are the tests'), and Deno looking for it and its lockfile cost
# every verb 1.3 ms. And with --v8-flags=--no-lazy: V8 compiles every
# function as its chunk loads, so Deno's code cache holds them all and a
# later run compiles none (gcr run 5 ms faster; the small verbs unchanged).
# And --min-semi-space-size=8 (MB): V8's young generation starts at 1 MB,
# which `gcr run` filled twice, and each scavenge cost it 1.2 ms and more
# (gcr run 3-5 ms faster; its peak RSS unchanged, 48 MB).
#
# launch/join_chunks.ts then rewrites esbuild's output: every dynamic
# import made opaque to Deno's walk at start-up (`import(String("./x.js"))`;
# Deno walked main.js's eleven as if static, 2.6 ms for every verb), and
# esbuild's many small shared chunks joined into fewer modules per verb
# (Deno pays for each module it loads).
here=$(cd "${0%/*}/.." && pwd -P) || exit 125
bundle=$here/.cache/bundle
# In a function: the list's `set --` replaces only the function's arguments.
bundle_is_fresh() {
  [ -f "$bundle/stamp" ] && [ -f "$bundle/sources.sh" ] && [ -f "$bundle/launch" ] || return 1
  . "$bundle/sources.sh"
  for source; do
    [ "$source" -nt "$bundle/stamp" ] && return 1
  done
  return 0
}
# How the bundle runs, here and in the launch file (split on spaces).
bundle_flags='-A --cached-only --quiet --no-config --v8-flags=--no-lazy,--min-semi-space-size=8'
# The command ./gcr execs, an empty field, the sources (NUL-terminated).
write_launch() {
  # $bundle_flags unquoted: split into its words (none has a glob character)
  { printf '%s\0' "$deno" run $bundle_flags "$bundle/main.js" "" && tr '\n' '\0' <"$1/sources.txt"; } \
    >"$1/launch.new" && mv -f "$1/launch.new" "$1/launch"
}
deno=$(command -v deno)
fresh=
bundle_is_fresh && fresh=1
# A fresh bundle whose launch names a deno that is gone or no longer the
# one on PATH (the bundle was built by a run with another PATH, e.g. a
# test's copy of deno) would send every ./gcr here, through this script's
# freshness loop, until a source changed: write its launch again.
if [ -n "$fresh" ] && [ -z "$GCR_NO_BUNDLE" ]; then
  case $deno in
  /*) [ "$(head -c 4096 "$bundle/launch" | tr '\0' '\n' | head -n 1)" = "$deno" ] ||
    write_launch "$(cd "$bundle" && pwd -P)" 2>/dev/null ;;
  esac
fi
if [ -n "$GCR_NO_BUNDLE" ]; then
  fresh=
elif [ -z "$fresh" ]; then
  # Build beside the old bundle, then swap a symlink (rename is atomic), so
  # a gcr starting meanwhile runs one whole bundle or the other. The stamp
  # is made before bundling, so a source saved meanwhile counts as newer.
  # ./gcr execs deno by the absolute path found here (no PATH search of
  # its own); a deno found elsewhere later fails that exec, and ./gcr
  # comes back here. The load check runs without Deno's code cache: it
  # loads the modules by their bundle.<pid> paths, which no later run
  # uses, and each build would add a few MB to the user's cache for good.
  building=$here/.cache/bundle.$$
  if mkdir -p "$building" 2>/dev/null && : >"$building/stamp" &&
    { find "$here" \( -path "$here/.*" -o -path "$here/tests" -o -path "$here/bench" -o -path "$here/rootfs" \) \
      -prune -o -name '*.ts' -print && echo "$here/deno.json" && echo "$here/launch/gcr.sh"; } >"$building/sources.txt" 2>/dev/null &&
    { printf 'set --' && sed "s/'/'\\\\''/g; s/^/ '/; s/\$/'/" "$building/sources.txt" | tr -d '\n' && echo; } \
      >"$building/sources.sh" &&
    case $deno in /*) ;; *) false ;; esac &&
    write_launch "$building" &&
    deno bundle --quiet --platform deno --code-splitting --outdir "$building" "$here/main.ts" >/dev/null 2>&1 &&
    deno run --quiet --no-config --allow-read="$building" --allow-write="$building" --allow-run="$(readlink -f "$deno")" \
      "$here/launch/join_chunks.ts" "$building" &&
    deno run -A --quiet --no-config --no-code-cache "$here/launch/join_chunks.ts" --check "$building" >/dev/null 2>&1 &&
    ln -sfn "bundle.$$" "$building.link" && { [ -L "$bundle" ] || rm -rf "$bundle"; } &&
    mv -T "$building.link" "$bundle"; then
    fresh=1
    for old in "$here"/.cache/bundle.*; do
      [ "$old" = "$building" ] || rm -rf "$old"
    done
  else
    rm -rf "$building" "$building.link" 2>/dev/null
  fi
fi
# How gcr starts itself again (a detached container's monitor): ./gcr,
# which set this already; when this script is run by hand, ./gcr too.
GCR_SELF=${GCR_SELF:-$here/gcr}
export GCR_SELF
# Rootless podman runs `start` and `delete` with no $HOME, as uid 0 of its
# user namespace: Deno would look for its cache in root's home, which is
# not the user's, and print three lines about it on a terminal (run -it).
# The user's runtime folder holds it instead.
if [ -z "$DENO_DIR" ] && [ -z "$HOME" ] && [ -z "$XDG_CACHE_HOME" ] && [ -n "$XDG_RUNTIME_DIR" ]; then
  DENO_DIR=$XDG_RUNTIME_DIR/gcr/.deno
  export DENO_DIR
fi
if [ -n "$fresh" ]; then
  # $bundle_flags unquoted: split into its words (none has a glob character)
  exec deno run $bundle_flags "$bundle/main.js" "$@"
fi
exec deno run -A --cached-only --quiet "$here/main.ts" "$@"
