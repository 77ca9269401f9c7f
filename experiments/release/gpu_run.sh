#!/usr/bin/env bash
# One device call (an H100, ~10 minutes): train the v0.2 candidates side by side for the same wall time on one GPU,
# check the README's `python train.py dataset=multi trainer.gpus=1`, benchmark training and enhance; results -> $OUT.
# Needs .gpu/site (hydra, omegaconf, antlr4, igor2, gwyfile copied from a venv) and .gpu/afm_train.npz
# (experiments/release/transfer.py pack). TRAIN_TIME (DD:HH:MM:SS) and RUNS select a shorter dry run.
set -uo pipefail
export PYTHONPATH=$PWD/.gpu/site:$PWD PYTHONUNBUFFERED=1 WANDB_MODE=offline MPLBACKEND=Agg OMP_NUM_THREADS=2
export AFM_SR_SHARED=/tmp/afm_shared AFM_SR_CACHE=/tmp/afm_cache
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT/logs" /tmp/runs
TRAIN_TIME=${TRAIN_TIME:-00:00:05:00}
RUNS=${RUNS:-"msr_mixed msr_real_bicubic msr_mixed_bf16 vdsr16x32 vdsr20x64 paper_multi paper_mono"}
python3 experiments/release/transfer.py unpack .gpu/afm_train.npz $AFM_SR_SHARED/afm-train
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c "import torch; print(torch.__version__)") > "$OUT/logs/gpu.txt" 2>&1
(while true; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader >> "$OUT/logs/smi.csv" 2>/dev/null; sleep 15; done) &
SMI=$!
R="experiment=release trainer=gpu dataset.batch_size=32 trainer.max_steps=-1"
declare -A ARGS=(
  [msr_mixed]="$R trainer.precision=32-true"
  [msr_real_bicubic]="$R trainer.precision=32-true dataset=real degradation=bicubic"
  [msr_mixed_bf16]="$R trainer.precision=bf16-mixed"
  [vdsr16x32]="$R trainer.precision=32-true model=vdsr model.depth=16 model.width=32 dataset.lr_patch=null"
  [vdsr20x64]="$R trainer.precision=32-true model=vdsr model.depth=20 model.width=64 dataset.lr_patch=null"
  [paper_multi]="dataset=multi trainer.gpus=1"
  [paper_mono]="dataset=mono trainer.gpus=1"
)
for name in $RUNS; do
  # shellcheck disable=SC2086
  python3 train.py ${ARGS[$name]} ${EXTRA:-} trainer.max_time=$TRAIN_TIME hydra.run.dir=/tmp/runs/$name \
    > "$OUT/logs/$name.log" 2>&1 &
  echo "$name $!" >> "$OUT/logs/pids.txt"
done
wait $(awk '{print $2}' "$OUT/logs/pids.txt")
kill $SMI
for name in $RUNS; do
  cp /tmp/runs/$name/table1.md "$OUT/logs/$name.table1.md" 2>/dev/null
  cp /tmp/runs/$name/csv/version_0/metrics.csv "$OUT/logs/$name.metrics.csv" 2>/dev/null
  python3 -c "import torch,sys; c=torch.load(sys.argv[1],map_location='cpu',weights_only=True); print(sys.argv[2], 'global_step', c['global_step'], 'epoch', c['epoch'])" /tmp/runs/$name/checkpoints/last.ckpt $name >> "$OUT/logs/steps.txt" 2>&1
done
for name in msr_mixed msr_real_bicubic msr_mixed_bf16 vdsr16x32 vdsr20x64; do
  [ -f /tmp/runs/$name/checkpoints/best.ckpt ] && python3 -m afm_sr.cli export /tmp/runs/$name/checkpoints/best.ckpt "$OUT/$name.safetensors" >> "$OUT/logs/export.txt" 2>&1
done
cp /tmp/runs/msr_mixed/checkpoints/last.ckpt "$OUT/msr_mixed_last.ckpt" 2>/dev/null
tar -czf "$OUT/results.tar.gz" -C "$OUT" logs && rm -r "$OUT/logs"  # at most 8 files come back: logs in one
{
  python3 experiments/bench/bench_arch.py --size 1024 --scales 4 8 --device cuda
  python3 experiments/bench/bench_arch.py --size 1024 --scales 4 8 --device cuda --precision bf16
  (cd experiments/bench && python3 bench_train.py --device cuda --steps 20 --arch vdsr --scale 2)
  (cd experiments/bench && python3 bench_train.py --device cuda --steps 20 --arch msr --scale 8 --batch 32)
} > "$OUT/bench.txt" 2>&1
ls -la "$OUT"
