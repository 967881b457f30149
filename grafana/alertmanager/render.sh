#!/bin/sh
# Usage: render.sh TEMPLATE OUTPUT COMMAND...
# Writes TEMPLATE to OUTPUT with each ${NAME} placeholder replaced by the environment variable NAME,
# or by the contents of the file named by NAME_FILE (Docker secrets), then runs COMMAND (Alertmanager).
# Alertmanager reads no environment, so this keeps secrets out of the routing file. POSIX sh and awk:
# it runs in the busybox-based prom/alertmanager image.
set -eu
template=$1
output=$2
shift 2
for name in $(grep -o '\${[A-Z_][A-Z0-9_]*}' "$template" | sort -u | tr -d '${}'); do
    file=$(eval "printf %s \"\${${name}_FILE:-}\"")
    if [ -n "$file" ]; then
        export "$name=$(cat "$file")"
    fi
    if [ -z "$(eval "printf %s \"\${${name}:-}\"")" ]; then
        echo "render.sh: $name is not set (nor ${name}_FILE): set it or remove its receiver from $template" >&2
        exit 2
    fi
done
# Literal replacement (no regex or & in values), left to right, never rescanning a value.
awk '{
    line = $0; out = ""
    while (match(line, /\$\{[A-Z_][A-Z0-9_]*\}/)) {
        out = out substr(line, 1, RSTART - 1) ENVIRON[substr(line, RSTART + 2, RLENGTH - 3)]
        line = substr(line, RSTART + RLENGTH)
    }
    print out line
}' "$template" > "$output"
exec "$@"
