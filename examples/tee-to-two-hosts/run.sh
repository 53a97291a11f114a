#!/usr/bin/env bash
# One tar stream to two hosts at once, where losing one host does not stop
# the other: the job filebus exists for.
#
# With real hosts, the bus lives on the sending machine and each receiver is
# an ssh session reading from its own consumer:
#
#   tar -C /data -cf - . | filebus --filename /var/tmp/bus --multicast producer
#   filebus --filename /var/tmp/bus --multicast consumer | ssh host-a 'tar -C /restore -xf -'
#   filebus --filename /var/tmp/bus --multicast consumer | ssh host-b 'tar -C /restore -xf -'
#
# Here a local `tar -x` into a directory stands in for each `ssh host tar -x`,
# so it all runs on one machine:
#
#   FILEBUS=/path/to/filebus/bin/filebus examples/tee-to-two-hosts/run.sh [OUT_DIR]
#
# OUT_DIR (a temporary directory, removed at the end, unless you name one)
# ends up holding source/, host-a/ and host-b/.
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

# Something to send: 8 directories of 8 files of random bytes, 4 MiB in all.
for d in 1 2 3 4 5 6 7 8; do
  mkdir -p "$out/source/dir-$d"
  for f in 1 2 3 4 5 6 7 8; do
    head -c 65536 /dev/urandom > "$out/source/dir-$d/file-$f"
  done
done
files=$(find "$out/source" -type f | wc -l)
mkdir -p "$out/host-a" "$out/host-b"

# The two receivers, started before the producer. $! is the pid of tar, the
# last command of each pipeline: the stand-in for ssh.
$FILEBUS --filename "$bus" --multicast consumer | tar -C "$out/host-a" -xf - &
host_a=$!
$FILEBUS --filename "$bus" --multicast consumer | tar -C "$out/host-b" -xf - &
host_b=$!
# Each consumer registers a cursor file in bus.consumers/; from then on the
# bus keeps every chunk until that consumer has it.
until [ "$(ls "$bus.consumers" 2> /dev/null | wc -l)" -ge 2 ]; do
  kill -0 "$host_a" "$host_b" 2> /dev/null || { echo "a receiver failed to start" >&2; exit 1; }
  sleep 0.1
done

# host-b hangs, as an ssh session to a host that went silent does until TCP
# gives up. Lossless multicast never skips a live consumer, so the producer
# stops when it is --window ahead of host-b (1 MiB here; 256 chunks by
# default): the stream stalls with most of it unsent.
kill -STOP "$host_b"

tar -C "$out/source" -cf - . | $FILEBUS --filename "$bus" --multicast --window 1MiB producer &
producer=$!

# Let the stream start and run into the stall.
until [ -n "$(ls -A "$out/host-a")" ]; do
  kill -0 "$producer" 2> /dev/null || { echo "the producer failed" >&2; exit 1; }
  sleep 0.1
done
sleep 1

# Then host-b dies. Its consumer's output is gone, so the consumer exits and
# the bus stops waiting for it: the rest of the stream flows to host-a.
echo "host-b dies with host-a holding $(find "$out/host-a" -type f | wc -l) of $files files; producer still running: $(kill -0 "$producer" 2> /dev/null && echo yes || echo no)"
kill -KILL "$host_b"
status=0
{ wait "$host_b"; } 2> /dev/null || status=$?  # (quiet: bash would report the kill)
echo "host-b receiver exit status $status (137: killed by SIGKILL)"

status=0
wait "$producer" || status=$?
echo "producer exit status $status"
[ "$status" -eq 0 ]
wait "$host_a"

diff -r "$out/source" "$out/host-a"  # exits non-zero, failing the script, on any difference
echo "host-a holds all $files files, identical to the source; host-b holds $(find "$out/host-b" -type f | wc -l)"
