#!/usr/bin/env bash
# Runs the frozen desktop build (dist/TransPoseStudio, `make package`) headless, beside the
# source checkout (.venv/bin/python main.py) on the same inputs:
#
#   --version, models             same version; the models table lists the shipped files
#   annotate CLIP                 the CSV byte-identical to the source checkout's; the
#                                 overlay video written (PyAV's encoder) and readable
#   predict IMAGE --attention     keypoints (JSON) identical, the attention drawing written
#   eval, train                   the same evaluation table; a 1-epoch micro training run
#   gui --screenshot (offscreen)  a picture of the window after 5 processed frames
#   bad input                     the same `error:` line as the source checkout (a missing
#                                 file, a truncated video, a missing image, an unknown model)
#
# then prints the bundle's size and the start-up time (median of RUNS runs) of the frozen
# program and of the source checkout. Exit status 0 only when every check passed.
#
#   packaging/smoke_test.sh                      # after `make package`
#   APP=path/to/TransPoseStudio CLIP=video.mp4 OUT=out/smoke RUNS=5 packaging/smoke_test.sh
#
# The pose model: $MODEL when given, else `auto` when resources/models holds our TransPose
# (.pth), else `mediapipe` (printed). predict needs TransPose weights: the shipped .pth, else
# $SMOKE_WEIGHTS, else a randomly initialised tp-r-a3 written here (attention of random
# weights: a plumbing check).
# Each side gets its own empty model cache (TRANSPOSE_STUDIO_CACHE), offline: `auto` never
# picks up official weights a user downloaded, and each side exports the ONNX stem itself.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
APP="${APP:-$ROOT/dist/TransPoseStudio/TransPoseStudio}"
PY="${PY:-$ROOT/.venv/bin/python}"
CLIP="${CLIP:-$ROOT/tests/data/clip_person.mp4}"
IMAGE="${IMAGE:-$ROOT/tests/data/reference/astronaut.png}"
# the astronaut's box (tests/test_cli_predict.py): one person, whatever the weights
BOX="${BOX-"--box 18 9.5 350 502"}"
OUT="${OUT:-$ROOT/out/smoke}"
RUNS="${RUNS:-5}"
export TRANSPOSE_STUDIO_OFFLINE=1
unset DISPLAY WAYLAND_DISPLAY

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS  $*"; }
bad() { failed=$((failed + 1)); echo "FAIL  $*"; }
frozen() { TRANSPOSE_STUDIO_CACHE="$OUT/cache-frozen" "$APP" "$@"; }
source_() { TRANSPOSE_STUDIO_CACHE="$OUT/cache-source" "$PY" "$ROOT/main.py" "$@"; }
ms_now() { date +%s%N | cut -c1-13; }
# the error/warning lines a run printed, its progress bars (carriage returns) left out
messages() { tr '\r' '\n' < "$1" | grep -E '^(error|warning):' || true; }

if [ ! -x "$APP" ]; then
    echo "error: $APP: not found; build it first with: make package" >&2
    exit 2
fi
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ] && [ ! -e "$OUT/.smoke-test" ]; then
    echo "error: $OUT exists and is not a smoke-test folder; choose another OUT=" >&2
    exit 2
fi
rm -rf "$OUT"
mkdir -p "$OUT"
touch "$OUT/.smoke-test"
start_all=$(ms_now)
echo "frozen app:      $APP"
echo "source checkout: $PY main.py"

# ---------------------------------------------------------------- --version and models
v_frozen=$(frozen --version 2>&1)
v_source=$(source_ --version 2>&1)
if [ "$v_frozen" = "$v_source" ] && [ -n "$v_frozen" ]; then ok "--version: $v_frozen"
else bad "--version: frozen '$v_frozen', source '$v_source'"; fi

if frozen models > "$OUT/models.txt" 2> "$OUT/models.err"; then
    missing=""
    grep -Eq '^yolox-nano +.* shipped$' "$OUT/models.txt" || missing="$missing yolox-nano"
    grep -Eq '^mediapipe +.*installed' "$OUT/models.txt" || missing="$missing mediapipe"
    for f in resources/models/*.pth; do
        [ -e "$f" ] || continue
        grep -q "$(basename "$f")" "$OUT/models.txt" || missing="$missing $(basename "$f")"
    done
    if [ -z "$missing" ]; then ok "models: $(grep -c . "$OUT/models.txt") lines, shipped files listed"
    else bad "models: not available offline in the bundle:$missing"; cat "$OUT/models.txt"; fi
else bad "models: exit status $?"; cat "$OUT/models.err"; fi

# ---------------------------------------------------------------- annotate
if [ -n "${MODEL:-}" ]; then why="MODEL= given"
elif compgen -G "resources/models/*.pth" > /dev/null; then MODEL=auto; why="shipped $(basename "$(ls resources/models/*.pth | head -1)")"
else MODEL=mediapipe; why="no TransPose .pth in resources/models"; fi
echo "pose model: --model $MODEL ($why); clip: $CLIP"
stem=$(basename "${CLIP%.*}")
t0=$(ms_now)
frozen annotate "$CLIP" --out "$OUT/frozen" --model "$MODEL" --overlay --force > "$OUT/annotate.frozen.out" 2> "$OUT/annotate.frozen.err"
rc_f=$?
t1=$(ms_now)
source_ annotate "$CLIP" --out "$OUT/source" --model "$MODEL" --force > "$OUT/annotate.source.out" 2> "$OUT/annotate.source.err"
rc_s=$?
t2=$(ms_now)
grep -E '^pose model:' "$OUT/annotate.frozen.err" | sed 's/^/      frozen /'
if [ $rc_f -ne 0 ] || [ $rc_s -ne 0 ]; then
    bad "annotate: exit status frozen $rc_f, source $rc_s"
    tail -n 5 "$OUT/annotate.frozen.err" "$OUT/annotate.source.err"
elif cmp -s "$OUT/frozen/$stem.csv" "$OUT/source/$stem.csv"; then
    ok "annotate: $stem.csv byte-identical ($(($(wc -l < "$OUT/frozen/$stem.csv") - 1)) rows; frozen $(((t1 - t0) / 1000)).$(((t1 - t0) % 1000 / 100)) s, source $(((t2 - t1) / 1000)).$(((t2 - t1) % 1000 / 100)) s)"
else
    bad "annotate: $stem.csv differs between frozen and source"
    diff "$OUT/frozen/$stem.csv" "$OUT/source/$stem.csv" | head -6
fi
if [ -s "$OUT/frozen/$stem.overlay.mp4" ] && \
   frozen annotate "$OUT/frozen/$stem.overlay.mp4" --out "$OUT/overlay" --model "$MODEL" \
       > /dev/null 2> "$OUT/overlay.err"; then
    ok "annotate --overlay: $stem.overlay.mp4 written; it decodes again ($(tr '\r' '\n' < "$OUT/overlay.err" | grep -oE 'done +[0-9]+' | awk '{print $2}') frames)"
else bad "annotate --overlay: no readable overlay video"; tail -n 3 "$OUT/overlay.err"; fi
if grep -Eq '^pose model: TransPose tp-m' "$OUT/annotate.frozen.err"; then
    # TransPose-M: its MoveNet stem runs in onnxruntime, exported by torch.onnx on first use
    if compgen -G "$OUT/cache-frozen/onnx/*.onnx" > /dev/null; then
        ok "annotate: the frozen app exported the ONNX stem ($(basename "$(ls "$OUT"/cache-frozen/onnx/*.onnx)"))"
    else bad "annotate: the frozen app did not export the ONNX stem (onnx/onnxruntime missing?)"; fi
fi

# ---------------------------------------------------------------- predict with attention
WEIGHTS=$(ls resources/models/*.pth 2>/dev/null | head -1)
if [ -z "$WEIGHTS" ] && [ -n "${SMOKE_WEIGHTS:-}" ]; then WEIGHTS="$SMOKE_WEIGHTS"; fi
if [ -z "$WEIGHTS" ]; then
    WEIGHTS="$OUT/random-tp-r-a3.pth"
    "$PY" -c "
import sys, torch
sys.path.insert(0, '$ROOT')
from core.models import build_model, save_checkpoint
torch.manual_seed(0)
save_checkpoint(build_model('tp-r-a3').eval(), '$WEIGHTS', {'note': 'random weights, smoke test'})
" || bad "predict: could not write random weights"
    echo "predict weights: $WEIGHTS (random tp-r-a3: no TransPose .pth shipped)"
else
    echo "predict weights: $WEIGHTS"
fi
frozen predict "$IMAGE" --weights "$WEIGHTS" $BOX --attention left_wrist --draw "$OUT/predict.frozen.png" \
    --json "$OUT/predict.frozen.json" > "$OUT/predict.frozen.out" 2> "$OUT/predict.frozen.err"
rc_f=$?
source_ predict "$IMAGE" --weights "$WEIGHTS" $BOX --attention left_wrist --draw "$OUT/predict.source.png" \
    --json "$OUT/predict.source.json" > "$OUT/predict.source.out" 2> "$OUT/predict.source.err"
rc_s=$?
if [ $rc_f -ne 0 ] || [ $rc_s -ne 0 ]; then
    bad "predict: exit status frozen $rc_f, source $rc_s"; tail -n 3 "$OUT/predict.frozen.err"
elif [ ! -s "$OUT/predict.frozen.png" ]; then bad "predict: no drawing written"
elif cmp -s "$OUT/predict.frozen.json" "$OUT/predict.source.json" && \
     cmp -s "$OUT/predict.frozen.out" "$OUT/predict.source.out"; then
    ok "predict --attention left_wrist: keypoints identical, drawing $OUT/predict.frozen.png"
else bad "predict: the keypoints differ between frozen and source"; fi

# ---------------------------------------------------------------- eval and train
no_timing() {         # the eval table without its ms/person column (timings differ by run)
    awk '/ms\/person/ {t = 1; print; next} t && NF == 0 {t = 0} t {NF = NF - 1} {print}' "$1"
}
GT="$ROOT/tests/data/eval/coco8-pose"
frozen eval --gt "$GT" --model mediapipe > "$OUT/eval.frozen.out" 2> "$OUT/eval.frozen.err"; rc_f=$?
source_ eval --gt "$GT" --model mediapipe > "$OUT/eval.source.out" 2> "$OUT/eval.source.err"; rc_s=$?
if [ $rc_f -eq 0 ] && [ $rc_s -eq 0 ] && grep -q meanOKS "$OUT/eval.frozen.out" && \
   [ "$(no_timing "$OUT/eval.frozen.out")" = "$(no_timing "$OUT/eval.source.out")" ]; then
    ok "eval (coco8-pose, mediapipe): the same table ($(grep -o 'AP_M [0-9.]*' "$OUT/eval.frozen.out"))"
else bad "eval: exit status frozen $rc_f, source $rc_s, or the tables differ"; tail -n 3 "$OUT/eval.frozen.err"; fi

frozen train --out "$OUT/train" --lspet "$ROOT/tests/data/train" --teacher none --config tp-r-micro \
    --epochs 1 --batch-size 2 --workers 0 --threads 1 --val-fraction 0.25 --no-progress \
    > "$OUT/train.out" 2> "$OUT/train.err"
rc=$?
if [ $rc -eq 0 ] && [ -s "$OUT/train/model.pth" ] && \
   frozen predict "$(ls "$ROOT"/tests/data/train/images/*.jpg | head -1)" --weights "$OUT/train/model.pth" --detector none \
       > "$OUT/train.predict.out" 2>> "$OUT/train.err" && grep -q left_shoulder "$OUT/train.predict.out"; then
    ok "train (tp-r-micro, 1 epoch) then predict with its model.pth"
else bad "train: exit status $rc"; tail -n 3 "$OUT/train.err"; fi

# ---------------------------------------------------------------- GUI, offscreen
t0=$(ms_now)
QT_QPA_PLATFORM=offscreen frozen gui --source "$CLIP" --model "$MODEL" --screenshot "$OUT/gui.png" \
    --exit-after 5 --timeout 240 > "$OUT/gui.out" 2> "$OUT/gui.err"
rc=$?
t1=$(ms_now)
if [ $rc -eq 0 ] && [ -s "$OUT/gui.png" ]; then
    ok "gui --screenshot: $OUT/gui.png ($(((t1 - t0) / 1000)) s)"
else bad "gui --screenshot: exit status $rc"; tail -n 5 "$OUT/gui.err"; fi

# ---------------------------------------------------------------- bad input
cp "$CLIP" "$OUT/truncated.mp4"
truncate -s 4000 "$OUT/truncated.mp4"
check_error() {       # name, then the arguments after the program
    local name="$1"; shift
    frozen "$@" > /dev/null 2> "$OUT/bad.frozen.err"; local rc_f=$?
    source_ "$@" > /dev/null 2> "$OUT/bad.source.err"; local rc_s=$?
    local m_f m_s
    m_f=$(messages "$OUT/bad.frozen.err"); m_s=$(messages "$OUT/bad.source.err")
    if [ $rc_f -ne 0 ] && [ $rc_f -eq $rc_s ] && [ -n "$m_f" ] && [ "$m_f" = "$m_s" ] && \
       ! grep -q Traceback "$OUT/bad.frozen.err"; then
        ok "bad input, $name: exit $rc_f, $(head -1 <<< "$m_f")"
    else
        bad "bad input, $name: frozen exit $rc_f '$m_f', source exit $rc_s '$m_s'"
    fi
}
check_error "missing video" annotate "$OUT/no-such-video.mp4" --out "$OUT/bad" --model "$MODEL"
check_error "truncated video" annotate "$OUT/truncated.mp4" --out "$OUT/bad" --model "$MODEL"
check_error "missing image" predict "$OUT/no-such-image.png" --weights "$WEIGHTS"
check_error "unknown model" annotate "$CLIP" --out "$OUT/bad" --model no-such-model

# ---------------------------------------------------------------- size and start-up
bundle=$(dirname "$APP")
echo
echo "bundle: $(du -sh "$bundle" | cut -f1) in $bundle ($(find "$bundle" -type f | wc -l) files); largest parts:"
du -sh "$bundle"/_internal/* 2>/dev/null | sort -h | tail -8 | sed 's/^/    /'
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
startup() {           # label, then the command; the median of RUNS runs in ms, after a warm-up
    local label="$1"; shift
    "$@" > /dev/null 2>&1
    local times=() i s
    for ((i = 0; i < RUNS; i++)); do
        s=$(ms_now); "$@" > /dev/null 2>&1; times+=($(($(ms_now) - s)))
    done
    printf '    %-22s %6s ms   (runs: %s)\n' "$label" "$(printf '%s\n' "${times[@]}" | median)" "${times[*]}"
}
echo "start-up, median of $RUNS runs:"
startup "frozen --version" frozen --version
startup "source --version" source_ --version
startup "frozen models" frozen models
startup "source models" source_ models
echo
echo "smoke test took $((($(ms_now) - start_all) / 1000)) s; outputs in $OUT"
echo "smoke test: $passed passed, $failed failed"
[ $failed -eq 0 ]
