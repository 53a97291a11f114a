#!/usr/bin/env bash
# A work queue: one producer hands out jobs, three workers share them, and
# every job is done exactly once. This is back-pressure mode: each chunk on
# the bus goes to exactly one consumer, and the producer waits until the
# previous chunk has been taken, so nothing piles up on disk.
#
#   FILEBUS=/path/to/filebus/bin/filebus examples/work-queue/run.sh [OUT_DIR]
#
# Each worker appends the jobs it did to OUT_DIR/worker-N.log (OUT_DIR is a
# temporary directory, removed at the end, unless you name one).
set -euo pipefail
FILEBUS=${FILEBUS:-filebus}
$FILEBUS --version > /dev/null || { echo "cannot run '$FILEBUS': put filebus on PATH or set FILEBUS=/path/to/filebus/bin/filebus" >&2; exit 2; }
JOBS=${JOBS:-60}

if [ $# -gt 0 ]; then
  out=$1
  mkdir -p "$out"
else
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
bus=$out/queue

# filebus cuts chunks by size, never at newlines, so a line could be split
# between two workers. Giving every job the same length (32 bytes) and
# --block-size that length makes each chunk exactly one job.
record=32
for i in $(seq 1 "$JOBS"); do
  printf "%-$((record - 1))s\n" "job $i"
done > "$out/jobs.txt"

# Three workers. A worker is a consumer piped into whatever does the work;
# here the work is a short sleep and a line in the worker's log.
workers=()
for n in 1 2 3; do
  : > "$out/worker-$n.log"
  $FILEBUS --verbose --filename "$bus" --back-pressure consumer 2> "$out/worker-$n.err" |
    while IFS= read -r job; do
      sleep 0.02
      echo "$job" >> "$out/worker-$n.log"
    done &
  workers+=($!)
done

# Node takes a moment to start. Wait until each worker has said (--verbose,
# on stderr) that its consumer is starting, or the first one up could take
# every job before the others are ready.
for _ in $(seq 100); do
  [ "$(cat "$out"/worker-*.err | grep -c 'consumer on')" -ge 3 ] && break
  sleep 0.1
done

# The jobs. The producer returns once a worker has taken the last job and
# the end marker is on the bus.
$FILEBUS --filename "$bus" --back-pressure --block-size "$record" producer < "$out/jobs.txt"

# Each producer ends with an end-of-stream marker, and the consumer that
# takes it exits. One marker has gone with the jobs; two more empty
# producers send one each to the other two workers.
for _ in 1 2; do
  $FILEBUS --filename "$bus" --back-pressure producer < /dev/null
done
for pid in "${workers[@]}"; do
  wait "$pid" || { cat "$out"/worker-*.err >&2; exit 1; }
done

for n in 1 2 3; do
  echo "worker $n did $(wc -l < "$out/worker-$n.log") jobs"
done
done_jobs=$(cat "$out"/worker-*.log | sort -u | wc -l)
echo "$done_jobs distinct jobs done, $(cat "$out"/worker-*.log | wc -l) in all, $JOBS sent"
