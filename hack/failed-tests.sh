#!/usr/bin/env bash
# failed-tests.sh LOG [LINES]: from a `go test -v` log, print the output of
# each failed (sub)test, its last LINES lines (default 200), so a CI log
# shows why a long suite failed, not only its last lines.
set -euo pipefail
log=$1 lines=${2:-200}
awk -v max="$lines" '
  NR == FNR { if (match($0, /--- FAIL: [^ ]+/)) failed[substr($0, RSTART + 10, RLENGTH - 10)] = 1; next }
  /^=== (RUN|CONT|PAUSE|NAME) / { flush(); name = $3; n = 0; next }
  name in failed { buf[n++ % max] = $0 }
  END { flush() }
  function flush(   i, from) {
    if (!(name in failed) || n == 0) return
    print "----- output of the failed " name " (last " (n < max ? n : max) " lines) -----"
    from = n > max ? n - max : 0
    for (i = from; i < n; i++) print buf[i % max]
    n = 0
  }
' "$log" "$log"
