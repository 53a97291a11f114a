#!/bin/bash
# Back-pressure with many consumers (issue 13, point 10): wall time for CHUNKS
# chunks of 4 KiB from one producer to N consumers started first.
# Usage: bench/bp-consumers.sh N [CHUNKS] [BIN]
set -eu
n=$1; chunks=${2:-2000}; bin=${3:-$(dirname "$0")/../bin/filebus}
d=$(mktemp -d /tmp/bp-consumers.XXXXXX); bus=$d/bus
head -c $((chunks * 4096)) /dev/zero > $d/input
pids=()
for i in $(seq $n); do node "$bin" --filename $bus --back-pressure --block-size 4096 consumer > $d/out.$i & pids+=($!); done
# every consumer is waiting before the producer starts: it has an inotify
# watch (the consumer whose turn it is to take FILE) or the turn file open
for p in "${pids[@]}"; do until ls -l /proc/$p/fd 2>/dev/null | grep -q -e inotify -e '\.bus\.taker'; do sleep 0.05; done; done
start=$(date +%s.%N)
node "$bin" --filename $bus --back-pressure --block-size 4096 producer < $d/input
# the end marker ends one consumer; the stream is over when every byte is out
until [ "$(cat $d/out.* | wc -c)" -ge $((chunks * 4096)) ]; do sleep 0.01; done
end=$(date +%s.%N)
kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
echo "consumers=$n chunks=$chunks seconds=$(echo "$end - $start" | bc)"
rm -rf $d
