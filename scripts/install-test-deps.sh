#!/usr/bin/env bash
# System packages the test suite uses: Debian's Chromium (browser tests) and a PostgreSQL server
# (store and Ray tests). Tests that need one skip with a clear reason when it is missing, so a
# failed install here is reported but not fatal.
set -u
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing ${need[*]} (apt-get)…"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
      || echo "warning: could not install ${need[*]}; the tests that need them will be skipped"
  else
    echo "warning: not root, cannot apt-get install ${need[*]}; the tests that need them will be skipped"
  fi
fi
exit 0
