// Preloaded (node --require) into node processes whose peak memory the
// benchmark measures: just before the process exits, append
// "PID VmHWM-in-kB" to the file named by FILEBUS_BENCH_HWM_FILE. VmHWM is the
// kernel's high-water mark of the resident set, read from /proc at the last
// moment it still exists. It does nothing else and loads nothing else.
'use strict';
const fs = require('node:fs');
const out = process.env.FILEBUS_BENCH_HWM_FILE;
if (out) {
  process.on('exit', () => {
    try {
      const status = fs.readFileSync('/proc/self/status', 'latin1');
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      if (match) fs.appendFileSync(out, `${process.pid} ${match[1]}\n`);
    } catch {
      // Measuring must never change how the process ends.
    }
  });
}
