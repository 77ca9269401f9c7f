#!/usr/bin/env bash
# The README's pictures of the Gwyddion plug-in, taken in Gwyddion 2.62 itself under Xvfb:
#   screenshot.png  Data Process > Plug-Ins > afm-sr open, a 64 px crop of a real Asylum scan (top right) and the
#                   channel Enhance x4 added (bottom right)
#   messages.png    Info > Program Messages after a run that failed (an options-file typo)
# Needs Debian's gwyddion xvfb xdotool imagemagick, and afm-sr importable by $PYTHON (default python3).
# Run from the repository root: bash experiments/gwyddion/screenshot.sh   (about a minute on a CPU)
# Menu positions are those of this layout (1280x800 screen, no window manager, Gwyddion's default font).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
SCAN=${SCAN:-../shared/afm-samples/nanoscopeAFM__AR_20211011.ibw}
OUT=experiments/gwyddion
WORK=$(mktemp -d)
export HOME=$WORK/home DISPLAY=:${SCREENSHOT_DISPLAY:-57} OMP_NUM_THREADS=1
mkdir -p "$HOME"
cleanup() {
  [ -z "${GWY_PID:-}" ] || kill "$GWY_PID" 2>/dev/null || true
  [ -z "${XVFB_PID:-}" ] || kill "$XVFB_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

"$PYTHON" -m afm_sr.cli gwyddion install
printf '# afm-sr in Gwyddion: see README.md\nadapt = no\n' > "$HOME/.gwyddion/afm-sr.conf"
"$PYTHON" - "$SCAN" "$WORK/scan.gwy" <<'EOF'
import sys
from afm_sr.io import read, write
hm = read(sys.argv[1])
write(hm.with_data(hm.data[:64, :64]), sys.argv[2])
EOF

Xvfb "$DISPLAY" -screen 0 1280x800x24 -nolisten tcp >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
sleep 2
gwyddion --no-splash "$WORK/scan.gwy" >"$WORK/gwyddion.log" 2>&1 &
GWY_PID=$!

window() {  # the id of the window whose title contains $1, waiting for it to appear
  timeout 120 xdotool search --sync --name "$1" | head -1
}
place() {  # move window $1 to x=$2 y=$3, size 420x390
  xdotool windowmove "$1" "$2" "$3" windowsize "$1" 420 390
  sleep 0.5
}
afm_sr_menu() {  # open Data Process > Plug-Ins > afm-sr with the scan's window current
  xdotool windowfocus "$SCAN_WINDOW"
  sleep 0.5
  xdotool mousemove 53 57 click 1 sleep 1 mousemove 53 334 sleep 0.8 mousemove 160 334 sleep 0.5 \
    mousemove 340 334 sleep 0.3 mousemove 365 334 sleep 1
}
SCAN_WINDOW=$(window "scan.gwy \[HeightRetrace\]")
xdotool windowunmap "$(window "Data Browser")"
place "$SCAN_WINDOW" 730 0

afm_sr_menu
xdotool mousemove 470 376 sleep 0.3 mousemove 521 376 click 1  # Enhance x4
place "$(window "Unknown channel 2")" 730 400
afm_sr_menu
xdotool mousemove 470 376 sleep 1
import -window root "$WORK/full.png"
convert "$WORK/full.png" -crop 1152x800+0+0 +repage -fill white -pointsize 15 \
  -annotate +190+470 "Gwyddion 2.62. Top right: a 64 x 64 px, 2 µm crop of an Asylum" \
  -annotate +190+495 "scan (.ibw). Bottom right: the channel that Enhance x4 added" \
  -annotate +190+520 "beside it: 256 x 256 px, the same 2 µm, heights in nm." \
  -colors 64 "$OUT/screenshot.png"

xdotool key Escape Escape Escape Escape
printf 'adapt = maybe\n' > "$HOME/.gwyddion/afm-sr.conf"
afm_sr_menu
xdotool mousemove 470 355 sleep 0.3 mousemove 521 355 click 1  # Enhance x2, refused for the typo
timeout 120 sh -c "until grep -q failed '$HOME/.gwyddion/afm-sr.log' 2>/dev/null; do sleep 0.5; done"
sleep 1
xdotool mousemove 21 172 click 1 sleep 1 mousemove 95 239 click 1  # Info > Program Messages
MESSAGES=$(window "Program Messages")
xdotool windowmove "$MESSAGES" 0 0 windowsize "$MESSAGES" 1100 80
sleep 1
import -window "$MESSAGES" "$WORK/messages.png"
convert "$WORK/messages.png" -colors 32 "$OUT/messages.png"
ls -l "$OUT/screenshot.png" "$OUT/messages.png"
