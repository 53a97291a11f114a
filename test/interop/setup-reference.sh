#!/bin/sh
# Extracts the reference filebus (the Python package, version 0.3.5, with its
# bash twin) from a git mirror into a directory OUTSIDE this repository and
# writes an executable launcher there that behaves like `filebus`.
# Prints the launcher path on stdout; use it as FILEBUS_REFERENCE:
#
#   FILEBUS_REFERENCE=$(test/interop/setup-reference.sh) npx vitest run test/interop
#   FILEBUS_REFERENCE=$(test/interop/setup-reference.sh) npx tsx test/interop/measure.ts
#
# Usage: setup-reference.sh [MIRROR] [DEST]
#   MIRROR  a git repository of zmedico/filebus (bare or not), or a plain
#           directory holding lib/python/filebus/__init__.py
#           (default: /work/.mirror/zmedico+filebus/repo)
#   DEST    where to extract (default: $FILEBUS_REFERENCE_DIR, else
#           ${TMPDIR:-/tmp}/filebus-reference). Must not be inside this repo.
# Environment: PYTHON, an interpreter to use; otherwise the first of python3,
# /usr/bin/python3 that can import filelock (the reference's one dependency).
# No reference code is ever copied into this repository.
set -eu

MIRROR=${1:-/work/.mirror/zmedico+filebus/repo}
DEST=${2:-${FILEBUS_REFERENCE_DIR:-${TMPDIR:-/tmp}/filebus-reference}}

die() { echo "setup-reference: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd -P)
repo_root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd -P))

# Resolve DEST (symlinks included) before creating anything.
case "$DEST" in /*) ;; *) DEST="$(pwd -P)/$DEST" ;; esac
DEST=$(realpath -m "$DEST" 2>/dev/null || echo "$DEST")
case "$DEST/" in
  "$repo_root"/*) die "refusing to extract into $DEST: it is inside this repository ($repo_root)" ;;
esac
mkdir -p "$DEST"

# Pick an interpreter that has filelock (watchdog is optional for the reference).
python=
for candidate in ${PYTHON:-} python3 /usr/bin/python3; do
  [ -n "$candidate" ] || continue
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import filelock' >/dev/null 2>&1; then
    python=$(command -v "$candidate")
    break
  fi
done
[ -n "$python" ] || die "no python3 with the filelock module (install python3-filelock, or set PYTHON)"
"$python" -c 'import watchdog.observers' >/dev/null 2>&1 ||
  echo "setup-reference: note: $python has no watchdog; the reference consumer will poll" >&2

src="$DEST/src"
rm -rf "$src"
mkdir -p "$src"
if git -C "$MIRROR" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  git -C "$MIRROR" archive --format=tar HEAD | tar -x -C "$src"
  git -C "$MIRROR" rev-parse HEAD > "$DEST/COMMIT"
elif [ -f "$MIRROR/lib/python/filebus/__init__.py" ]; then
  cp -R "$MIRROR/." "$src"
else
  die "$MIRROR is neither a git repository nor a filebus source tree"
fi
[ -f "$src/lib/python/filebus/__init__.py" ] || die "no lib/python/filebus/__init__.py in $MIRROR"

launcher="$DEST/filebus"
cat > "$launcher" <<LAUNCHER
#!/bin/sh
# Runs the reference filebus extracted from $MIRROR (written by setup-reference.sh).
PYTHONPATH="$src/lib/python\${PYTHONPATH:+:\$PYTHONPATH}"
export PYTHONPATH
exec "$python" -c 'import sys; sys.argv[0] = "filebus"; from filebus import main; sys.exit(main())' "\$@"
LAUNCHER
chmod +x "$launcher"

"$launcher" --help >/dev/null 2>&1 || die "the launcher $launcher does not run"
echo "$launcher"
