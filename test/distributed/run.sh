#!/usr/bin/env bash
# npm run test:distributed: builds filebus, brings up the two GlusterFS
# mounts (setup.sh), runs the distributed suite (test/distributed/*.test.ts)
# against them, and tears everything down (teardown.sh) whether the tests
# pass or not. Needs root (glusterd, FUSE mounts); installs glusterfs with
# apt-get if missing.
#
# The suite runs once per mount configuration in FILEBUS_DISTRIBUTED_CONFIGS
# (default "nocache caching"), each on a fresh volume:
#   nocache  setup.sh's defaults, the recommended mounts:
#            attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable
#            and performance.{stat-prefetch,quick-read,open-behind}=off
#            Every file: the modes (gluster.test.ts), the lock strategies
#            and SIGKILLed lock holders (locks.test.ts), the A-to-B
#            throughput and latency figures (performance.test.ts).
#   caching  glusterfs's own defaults (1 s attribute and entry caches, all
#            performance translators), what a host mounted without care has.
#            The modes only (gluster.test.ts): locks and figures do not
#            depend on the caches, and the whole run stays under ~4 minutes.
#   nodirect (not in the default) the nocache mounts without direct-io-mode,
#            where a client never sees another's in-place rewrites: the
#            modes only (gluster.test.ts).
# Extra arguments go to vitest, e.g. `npm run test:distributed -- -t lossy`.
set -euo pipefail
cd "$(dirname "$0")/../.."

started=$SECONDS
npx --no -- tsc -p tsconfig.build.json
trap 'bash test/distributed/teardown.sh || echo "run: teardown reported problems" >&2' EXIT
status=0
for config in ${FILEBUS_DISTRIBUTED_CONFIGS:-nocache caching}; do
  case $config in
    nocache) mount=attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable
             volume='performance.stat-prefetch=off performance.quick-read=off performance.open-behind=off'
             files=() ;;
    caching) mount=defaults volume=none files=(test/distributed/gluster.test.ts) ;;
    nodirect) mount=attribute-timeout=0,entry-timeout=0,negative-timeout=0
              volume='performance.stat-prefetch=off performance.quick-read=off performance.open-behind=off'
              files=(test/distributed/gluster.test.ts) ;;
    *) echo "run: unknown configuration '$config' (nocache, caching or nodirect)" >&2; exit 2 ;;
  esac
  echo "run: === $config mounts ===" >&2
  bash test/distributed/teardown.sh >/dev/null 2>&1 || true
  eval "$(FILEBUS_GLUSTER_MOUNT_OPTIONS=$mount FILEBUS_GLUSTER_VOLUME_OPTIONS=$volume bash test/distributed/setup.sh)"
  npx --no -- vitest run --config test/distributed/vitest.config.ts ${files[@]+"${files[@]}"} "$@" || status=1
done
echo "run: finished in $((SECONDS - started)) s" >&2
exit "$status"
