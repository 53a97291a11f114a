#!/usr/bin/env bash
# One multicast bus, used two ways at once: as a live stream, and, with
# --retain all, as an archive. Every chunk stays in FILE.segments/ under a
# fixed-width, numbered name, so `cat FILE.segments/*` is the stream again,
# byte for byte, and a consumer that comes late can replay it from the start.
#
#   FILEBUS=/path/to/filebus/bin/filebus examples/archive-and-replay/run.sh [OUT_DIR]
#
# OUT_DIR (a temporary directory, removed at the end, unless you name one)
# ends up holding the input, the bus, and the three copies compared below.
set -euo pipefail
FILEBUS=${FILEBUS:-filebus}
$FILEBUS --version > /dev/null || { echo "cannot run '$FILEBUS': put filebus on PATH or set FILEBUS=/path/to/filebus/bin/filebus" >&2; exit 2; }

if [ $# -gt 0 ]; then
  out=$1
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
bus=$out/bus

# The stream: 5 MB of random bytes, so any lost, repeated or reordered byte
# shows in the checksum. Any program's output would do.
head -c 5000000 /dev/urandom > "$out/input"

# A live consumer, started first. Its cursor file in bus.consumers/ is how
# the bus knows it is there; wait for it so it sees the stream from the start.
$FILEBUS --filename "$bus" --multicast consumer > "$out/live" &
live=$!
until [ -n "$(ls -A "$bus.consumers" 2> /dev/null)" ]; do
  kill -0 "$live" 2> /dev/null || { echo "the live consumer failed to start" >&2; exit 1; }
  sleep 0.1
done

# The producer. --retain all keeps every segment: nothing is deleted however
# far ahead of the consumers it gets.
$FILEBUS --filename "$bus" --multicast --retain all producer < "$out/input"
wait "$live"  # the live consumer exits 0 at the end of the stream

# The archive: segments sort by number, and the end-of-stream marker is an
# empty file, so cat puts the stream back together.
cat "$bus.segments"/* > "$out/archive"

# A late consumer, after the producer is long gone, replays from the first
# segment.
$FILEBUS --filename "$bus" --multicast consumer --from earliest > "$out/replay"

sha256sum "$out/input" "$out/live" "$out/archive" "$out/replay" | sed "s|$out/||"
for copy in live archive replay; do
  cmp "$out/input" "$out/$copy"  # exits non-zero, failing the script, on any difference
done
echo "live, archive and replay are all identical to the input ($(ls "$bus.segments" | wc -l) segments on disk)"
