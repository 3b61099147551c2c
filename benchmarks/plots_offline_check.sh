#!/usr/bin/env bash
# Visual check that `dvc plots show` output renders with no network.
#
#   benchmarks/plots_offline_check.sh OUT.png [CONTROL.png]
#
# Builds a throwaway git + DVC repository with this project's .dvc/config and
# .dvc/plots/offline/ (as tests/test_plots_offline.py does), writes a small CSV plot, runs
# `dvc plots show`, and screenshots dvc_plots/index.html (file:// URL) with headless Chromium
# cut off from the network: in an empty network namespace (`unshare -rn`) when the kernel
# allows it, and always with every host name resolving to nothing and a dead proxy.
# With CONTROL.png it also screenshots the page DVC writes with its default (CDN) template,
# under the same conditions: that one should be blank, which shows the network really was off.
# Also prints whether vega-embed drew anything (a <canvas> in the rendered DOM).
#
# Needs chromium (Debian: apt-get install chromium). DVC comes from .venv/bin/dvc, else PATH.
# Look at OUT.png: it should show a line chart titled "Offline check". Do not commit the PNGs.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 OUT.png [CONTROL.png]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "$1")
control=${2:+$(realpath -m "$2")}
dvc="$root/.venv/bin/dvc"
[[ -x $dvc ]] || dvc=$(command -v dvc)
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z $chrome ]]; then
    echo "no chromium found (Debian: apt-get install chromium)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/repo"
mkdir "$repo"
cd "$repo"
export DVC_NO_ANALYTICS=1
git init -q
"$dvc" init -q
cp "$root/.dvc/config" .dvc/config
mkdir -p .dvc/plots
cp -r "$root/.dvc/plots/offline" .dvc/plots/offline
{
    echo "step,loss,accuracy"
    for i in $(seq 0 19); do
        awk -v i="$i" 'BEGIN { printf "%d,%.4f,%.4f\n", i, 1.2*exp(-i/6)+0.1, 1-0.5*exp(-i/5) }'
    done
} > train.csv
cat > dvc.yaml <<'EOF'
plots:
  - Offline check:
      x: step
      y:
        train.csv: [loss, accuracy]
EOF

# Chromium cut off from the network. An empty network namespace is the real thing; the
# flags are a second line of defence where unprivileged namespaces are not allowed.
isolate=()
if unshare -rn true 2>/dev/null; then
    isolate=(unshare -rn)
else
    echo "note: unshare -rn not permitted here; relying on Chromium flags only" >&2
fi
chrome_run() {
    "${isolate[@]}" "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --no-first-run --disable-background-networking --disable-component-update \
        --host-resolver-rules="MAP * ~NOTFOUND" --proxy-server="http://127.0.0.1:9" \
        --proxy-bypass-list="<-loopback>" --user-data-dir="$work/profile" \
        --window-size=1100,700 --virtual-time-budget=5000 "$@" 2>/dev/null
}

shoot() {  # shoot PNG: screenshot ./dvc_plots/index.html and report what was drawn
    local page="file://$repo/dvc_plots/index.html" png=$1
    mkdir -p "$(dirname "$png")"
    chrome_run --screenshot="$png" "$page" >/dev/null
    local canvases
    canvases=$(chrome_run --dump-dom "$page" | grep -o '<canvas' | wc -l || true)
    echo "$png: $(wc -c < "$dvc_plots_html") byte page, $canvases <canvas> drawn"
}

dvc_plots_html="$repo/dvc_plots/index.html"
"$dvc" plots show -q
shoot "$out"
if [[ -n $control ]]; then
    "$dvc" config --unset plots.html_template
    "$dvc" plots show -q
    shoot "$control"
fi
