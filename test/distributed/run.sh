#!/usr/bin/env bash
# npm run test:distributed: builds filebus, brings up the two GlusterFS
# mounts (setup.sh), runs the distributed suite (gluster.test.ts) against
# them, and tears everything down (teardown.sh) whether the tests pass or not.
# Needs root (glusterd, FUSE mounts); installs glusterfs with apt-get if missing.
#
# The suite runs once per mount configuration in FILEBUS_DISTRIBUTED_CONFIGS
# (default "nocache caching"), each on a fresh volume:
#   nocache  setup.sh's defaults, the recommended mounts:
#            attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable
#            and performance.{stat-prefetch,quick-read,open-behind}=off
#   caching  glusterfs's own defaults (1 s attribute and entry caches, all
#            performance translators), what a host mounted without care has
# Extra arguments go to vitest, e.g. `npm run test:distributed -- -t lossy`.
set -euo pipefail
cd "$(dirname "$0")/../.."

npx --no -- tsc -p tsconfig.build.json
trap 'bash test/distributed/teardown.sh || echo "run: teardown reported problems" >&2' EXIT
status=0
for config in ${FILEBUS_DISTRIBUTED_CONFIGS:-nocache caching}; do
  case $config in
    nocache) mount=attribute-timeout=0,entry-timeout=0,negative-timeout=0,direct-io-mode=enable
             volume='performance.stat-prefetch=off performance.quick-read=off performance.open-behind=off' ;;
    caching) mount=defaults volume=none ;;
    *) echo "run: unknown configuration '$config' (nocache or caching)" >&2; exit 2 ;;
  esac
  echo "run: === $config mounts ===" >&2
  bash test/distributed/teardown.sh >/dev/null 2>&1 || true
  eval "$(FILEBUS_GLUSTER_MOUNT_OPTIONS=$mount FILEBUS_GLUSTER_VOLUME_OPTIONS=$volume bash test/distributed/setup.sh)"
  npx --no -- vitest run --config test/distributed/vitest.config.ts "$@" || status=1
done
exit "$status"
