#!/usr/bin/env bash
# Several GPUs on one machine (docs/gpus.md): data-parallel scaling on the Qwen2.5-0.5B shape and FSDP
# on the Qwen2.5-7B shape, through `distil train` itself. Randomly initialised students of the real
# shapes (weights do not change the speed), the embedded model's tokenizer (carried as .carry/tok:
# tokenizer.json, tokenizer_config.json, chat_template.jinja from ~/.cache/distil/models/SmolLM2-135M-Instruct),
# synthetic clinical-length records. Wheels as in run_size_h100.sh (call 1), installed in /root/site.
#   PHASES="ddp fsdp" bash benchmarks/run_gpus.sh     # results to $OUT/gpus.json and the runs' logs
# A smoke test of the ddp phase on a CPU (gloo), a tiny shape: SHAPE="64 2 4 2 128" STEPS=4 TOKENS=2048
# Each phase is resumable (model folders kept in /root/gpus while the machine is warm).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH=/root/site:$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
W=${W:-/root/gpus}
OUT=${OUT:-gpus-out}
STEPS=${STEPS:-30}
export PEAK_TFLOPS=${PEAK_TFLOPS:-790}  # bf16 dense per GPU, the figure docs/benchmarks.md uses for MFU
mkdir -p "$W" "$OUT"
python3 - "$W" <<'EOF'
import json, random, sys
from pathlib import Path
root = Path(sys.argv[1]) / "data"
if not (root / "train.jsonl").is_file():
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    words = "patient fever cough dyspnea admitted treated antibiotics chest radiograph consolidation history".split()
    def text(n): return " ".join(rng.choice(words) for _ in range(n))
    rows = [{"id": f"r{i}", "lang": "en", "input": text(rng.randint(300, 900)), "output": text(rng.randint(60, 160)),
             "rationale": text(rng.randint(80, 220))} for i in range(4000)]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
EOF
model() {  # model NAME hidden layers heads kv intermediate: a random Qwen2 of that shape with the tokenizer
  [ -f "$W/$1/config.json" ] && return
  python3 - "$W/$1" "$2" "$3" "$4" "$5" "$6" <<'EOF'
import shutil, sys
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, Qwen2Config
out, hidden, layers, heads, kv, inter = sys.argv[1], *map(int, sys.argv[2:])
cfg = Qwen2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
                  intermediate_size=inter, vocab_size=151936, tie_word_embeddings=hidden < 2048,
                  max_position_embeddings=32768)
torch.manual_seed(0)
with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
model.save_pretrained(out)
for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
    shutil.copy(Path(".carry/tok") / name, Path(out) / name)
print(out, sum(p.numel() for p in model.parameters()) / 1e9, "B parameters")
EOF
}
train() {  # train NAME MODEL GPUS extra...: a distil train run; its tokens/s and peak memory per GPU
  local name=$1 m=$2 gpus=$3; shift 3
  rm -rf "$W/runs/$name"
  : > "$OUT/$name.mem"
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 \
    > "$OUT/$name.mem" &
  local smi=$!
  local t0=$(date +%s)
  python3 -m distil_cli -q train "$W/data" --out "$W/runs/$name" --model "$W/$m" --max-steps "$STEPS" \
    --no-save-checkpoints --gpus "$gpus" "$@" > "$OUT/$name.log" 2>&1
  echo "$name exit $? in $(( $(date +%s) - t0 )) s"
  kill $smi 2> /dev/null
  python3 - "$W/runs/$name/metrics.jsonl" "$OUT/$name.mem" "$name" "$gpus" "$W/$m" "$OUT/gpus.json" <<'EOF'
import json, os, statistics, sys
from pathlib import Path
metrics, mem, name, gpus, model, out = sys.argv[1:]
lines = [json.loads(l) for l in Path(metrics).read_text().splitlines()] if Path(metrics).is_file() else []
rates = [l["tokens_per_s"] for l in lines if "tokens_per_s" in l][2:]  # past the warm-up steps
used = [int(x) for x in Path(mem).read_text().split() if x.strip().isdigit()]
cfg = json.loads((Path(model) / "config.json").read_text())
h, L, v, i = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
kv = cfg["num_key_value_heads"] * h // cfg["num_attention_heads"]
params = L * (2 * h * h + 2 * h * kv + 3 * h * i) + v * h * (1 if cfg.get("tie_word_embeddings") else 2)
rate = statistics.median(rates) if rates else None
row = {"run": name, "gpus": int(gpus), "params_b": round(params / 1e9, 3), "tokens_per_s": rate,
       "mfu": round(6 * params * rate / (int(gpus) * float(os.environ["PEAK_TFLOPS"]) * 1e12), 3) if rate else None,
       "peak_gib_per_gpu": round(max(used) / 1024, 1) if used else None}
results = json.loads(Path(out).read_text()) if Path(out).is_file() else []
Path(out).write_text(json.dumps([r for r in results if r["run"] != name] + [row], indent=1))
print(row)
EOF
}
for phase in ${PHASES:-ddp fsdp}; do
  case $phase in
    ddp)
      model qwen05 ${SHAPE:-896 24 14 2 4864}
      train ddp-1gpu qwen05 1 --tokens-per-batch "${TOKENS:-32768}" --gradient-checkpointing
      train ddp-2gpu qwen05 2 --tokens-per-batch "${TOKENS:-32768}" --gradient-checkpointing ;;
    fsdp)
      model qwen7 3584 28 28 4 18944
      train fsdp-2gpu qwen7 2 --fsdp --tokens-per-batch 16384 ;;
  esac
done
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
cat "$OUT/gpus.json"
