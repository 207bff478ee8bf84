#!/usr/bin/env python3
"""Measure forward-step times of a random-weight, Llama-3.1-8B-shaped decoder.

What it measures: a plain PyTorch Llama decoder (fused QKV and gate/up projections,
GQA, RoPE theta 500000, SDPA attention, SiLU-gated MLP, lm_head only for the last
position of each sequence), built directly on the device with random weights in bf16.
No downloads, only torch + the standard library.

  * prefill: batch 1, N prompt tokens, causal, no KV cache; run eagerly.
  * decode:  batch B x context C, one new token per sequence attending a preallocated
    KV cache of C earlier tokens (+ the new token's slot); captured in a CUDA graph
    and timed as graph replays (as serving engines do), unless --no-graphs.

While measuring, a thread samples exp's own GPU probe query every 0.5 s:
  nvidia-smi --query-gpu=index,memory.used,memory.total,utilization.gpu,power.draw,\
total_energy_consumption,clocks.sm --format=csv,noheader,nounits

Run once on the GPU machine (one H100/H200, no internet needed):

  python3 scripts/gpu-step-times.py --out $OUT/step-times.json

It should take 1-3 minutes on an H100 (weights 16 GB, 23 points; not yet run on a GPU).
--budget-s (default 300) is checked between points and between timed runs (not inside a
warm-up or a graph capture); past it the script stops measuring and writes what it has
("complete": false). The JSON ("schema": "exp-step-times/1") is rewritten after every
point and is read by `exp selftest steps FILE`.

CPU smoke test (tiny shape):
  python3 scripts/gpu-step-times.py --device cpu --dtype fp32 --layers 2 --hidden 256 \
    --intermediate 512 --heads 4 --kv-heads 2 --vocab 1000 --prefill 32,64 \
    --batches 1,4 --contexts 64,128 --warmup 1 --iterations 2 --out /tmp/st.json
"""
import argparse, gc, json, os, platform, shutil, statistics, subprocess, sys, threading, time

T0 = time.monotonic()  # the --budget-s clock starts before the (slow) torch import

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

SMI_QUERY = ("index,memory.used,memory.total,utilization.gpu,power.draw,"
             "total_energy_consumption,clocks.sm")
DTYPES = {"bf16": (torch.bfloat16, "bfloat16"), "fp16": (torch.float16, "float16"),
          "fp32": (torch.float32, "float32")}


def now():
    return time.monotonic() - T0


def log(msg):
    print(f"[{now():7.1f}s] {msg}", file=sys.stderr, flush=True)


def ints(s):
    return [int(x) for x in s.split(",") if x.strip()]


def sdpa_supports_gqa():
    q, k = torch.zeros(1, 2, 1, 4), torch.zeros(1, 1, 1, 4)
    try:
        F.scaled_dot_product_attention(q, k, k, enable_gqa=True)
        return True
    except (TypeError, RuntimeError):
        return False


class Llama:
    """Random-weight Llama decoder; weights created directly on `dev` in `dt`."""

    def __init__(self, cfg, dev, dt):
        self.c, self.dev, self.dt = cfg, dev, dt
        D, H, KV, hd, I = (cfg["hidden_size"], cfg["num_attention_heads"],
                           cfg["num_key_value_heads"], cfg["head_dim"], cfg["intermediate_size"])
        self.H, self.KV, self.hd, self.eps = H, KV, hd, cfg["rms_norm_eps"]
        w = lambda *shape: torch.empty(*shape, device=dev, dtype=dt).normal_(0, 0.02)
        ones = lambda n: torch.ones(n, device=dev, dtype=dt)
        self.embed = w(cfg["vocab_size"], D)
        self.layers = [dict(ln1=ones(D), qkv=w((H + 2 * KV) * hd, D), o=w(D, H * hd),
                            ln2=ones(D), gate_up=w(2 * I, D), down=w(D, I))
                       for _ in range(cfg["num_hidden_layers"])]
        self.norm, self.lm_head = ones(D), w(cfg["vocab_size"], D)
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (
            torch.arange(0, hd, 2, device=dev, dtype=torch.float32) / hd))
        self.gqa = sdpa_supports_gqa()

    def rms(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(self.dt) * w

    @staticmethod
    def rope(x, cos, sin):
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin

    def attn(self, q, k, v, kv):
        """q [B,H,T,hd]; k,v [B,KV,T,hd]. kv=None: causal prefill. Else decode (T=1)."""
        if kv is None:
            if self.gqa:
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            g = self.H // self.KV
            k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
        kc, vc = kv  # [B, KV, C+1, hd]: C earlier tokens + the new token's slot
        kc[:, :, -1:] = k
        vc[:, :, -1:] = v
        B, _, T, hd = q.shape
        assert T == 1 and kc.shape[0] == B and kc.shape[2] == self.ctx + 1, (q.shape, kc.shape)
        # Single-token query: fold the G query heads of each KV head into the query-length
        # axis. Exactly equal to GQA attention, but every KV head is read once (no copies),
        # like serving decode kernels; works whether or not SDPA has enable_gqa.
        qf = q.reshape(B, self.KV, self.H // self.KV, hd)
        o = F.scaled_dot_product_attention(qf, kc, vc)  # non-causal: attend all C+1
        return o.reshape(B, self.H, 1, hd)

    def forward(self, ids, pos, caches=None):
        """ids [B,T] int64, pos [T] int64; caches: per-layer (k,v) for decode."""
        B, T = ids.shape
        freqs = pos.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dt), emb.sin().to(self.dt)
        x = F.embedding(ids, self.embed)
        H, KV, hd = self.H, self.KV, self.hd
        for i, L in enumerate(self.layers):
            h = F.linear(self.rms(x, L["ln1"]), L["qkv"])
            q, k, v = h.split([H * hd, KV * hd, KV * hd], dim=-1)
            q = self.rope(q.view(B, T, H, hd).transpose(1, 2), cos, sin)
            k = self.rope(k.view(B, T, KV, hd).transpose(1, 2), cos, sin)
            v = v.view(B, T, KV, hd).transpose(1, 2)
            o = self.attn(q, k, v, None if caches is None else caches[i])
            x = x + F.linear(o.transpose(1, 2).reshape(B, T, H * hd), L["o"])
            g, u = F.linear(self.rms(x, L["ln2"]), L["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, L["down"])
        last = self.rms(x[:, -1, :], self.norm)  # lm_head only for the last position
        return F.linear(last, self.lm_head)  # [B, vocab]


class Smi(threading.Thread):
    """Runs exp's nvidia-smi query every 0.5 s; never raises."""

    def __init__(self):
        super().__init__(daemon=True)
        self.rows, self.error, self.point = [], None, "setup"
        self.stop = threading.Event()
        self.exe = shutil.which("nvidia-smi")
        if not self.exe:
            self.error = "nvidia-smi not found on PATH"

    def run(self):
        while self.exe and not self.stop.is_set():
            t, point = now(), self.point
            try:
                r = subprocess.run([self.exe, f"--query-gpu={SMI_QUERY}",
                                    "--format=csv,noheader,nounits"],
                                   capture_output=True, text=True, timeout=5)
                if r.returncode != 0:
                    # Its stdout is then an error message, not readings.
                    self.error = f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[:200]}"
                    self.stop.wait(0.5)
                    continue
                for line in r.stdout.splitlines():
                    if line.strip():
                        self.rows.append({"t_s": round(t, 3), "point": point, "line": line.strip()})
            except Exception as e:  # noqa: BLE001 - must never crash the measurement
                self.error = f"{type(e).__name__}: {e}"[:300]
            self.stop.wait(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--intermediate", type=int, default=14336)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--prefill", type=ints, default=ints("512,1024,2048,4096,8192"))
    ap.add_argument("--batches", type=ints, default=ints("1,8,32,64,128,256"))
    ap.add_argument("--contexts", type=ints, default=ints("1024,4096,8192"))
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--budget-s", type=float, default=300.0)
    ap.add_argument("--no-graphs", action="store_true")
    ap.add_argument("--out", default="step-times.json")
    a = ap.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads:
        ap.error("--hidden must divide by --heads, and --heads by --kv-heads")

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    dt, dt_name = DTYPES[a.dtype]
    graphs = cuda and not a.no_graphs
    OOM = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"],
           "hidden_size": a.hidden, "num_hidden_layers": a.layers,
           "num_attention_heads": a.heads, "num_key_value_heads": a.kv_heads,
           "head_dim": a.hidden // a.heads, "intermediate_size": a.intermediate,
           "vocab_size": a.vocab, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
           "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": dt_name}
    res = {"schema": "exp-step-times/1", "complete": False, "device": dev.type,
           "device_name": (torch.cuda.get_device_name(dev) if cuda
                           else platform.processor() or "cpu"),
           "torch": torch.__version__, "cuda": torch.version.cuda, "dtype": a.dtype,
           "warmup": a.warmup, "iterations": a.iterations, "config": cfg,
           "prefill": [], "decode": [], "skipped": [], "nvidia_smi_query": SMI_QUERY,
           "nvidia_smi": [], "wall_s": 0.0}
    smi = Smi()
    if smi.error:
        res["nvidia_smi_error"] = smi.error

    def write():
        res["nvidia_smi"] = list(smi.rows)
        if smi.error:
            res["nvidia_smi_error"] = smi.error
        res["wall_s"] = round(now(), 3)
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        tmp = f"{a.out}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        os.replace(tmp, a.out)

    def over_budget():
        return now() >= a.budget_s

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    def free_mem():
        gc.collect()
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.empty_cache()

    def timed(fn):
        """Warm up, then time --iterations runs; returns samples in ms."""
        for _ in range(a.warmup):
            fn()
        sync()
        samples = []
        for _ in range(a.iterations):
            if samples and over_budget():
                break
            if cuda:
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                fn()
                e1.record()
                e1.synchronize()
                samples.append(e0.elapsed_time(e1))
            else:
                t = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - t) * 1e3)
        return samples

    def stats(samples):
        return {"median_ms": round(statistics.median(samples), 4),
                "min_ms": round(min(samples), 4),
                "samples_ms": [round(s, 4) for s in samples]}

    torch.set_grad_enabled(False)
    smi.start()
    with torch.inference_mode():
        log(f"building model on {res['device_name']} ({a.dtype}, {a.layers} layers)")
        model = Llama(cfg, dev, dt)
        sync()
        log(f"model built; SDPA enable_gqa for prefill: {model.gqa}; graphs: {graphs}")
        points = [("prefill", 1, t) for t in a.prefill]
        points += [("decode", b, c) for c in a.contexts for b in a.batches]
        for kind, B, N in points:
            label = f"prefill t={N}" if kind == "prefill" else f"decode b={B} c={N}"
            skip = {"kind": kind, **({"tokens": N} if kind == "prefill"
                                     else {"batch": B, "context": N})}
            if over_budget():
                res["skipped"].append({**skip, "why": f"budget {a.budget_s:g} s exhausted"})
                log(f"{label}: skipped (budget exhausted)")
                continue
            smi.point = label
            g = caches = None
            try:
                if kind == "prefill":
                    ids = torch.randint(0, a.vocab, (1, N), device=dev)
                    pos = torch.arange(N, device=dev)
                    samples = timed(lambda: model.forward(ids, pos))
                    row = {"tokens": N, "graphs": False, **stats(samples)}
                else:
                    esz = torch.empty(0, dtype=dt).element_size()
                    kv_bytes = a.layers * 2 * B * a.kv_heads * (N + 1) * cfg["head_dim"] * esz
                    act_bytes = 8 * B * (2 * a.intermediate + a.vocab + 4 * a.hidden) * esz
                    if cuda:
                        free = torch.cuda.mem_get_info(dev)[0]
                        if kv_bytes + act_bytes > 0.9 * free:
                            raise MemoryError(f"KV cache {kv_bytes / 1e9:.1f} GB + activations "
                                              f"{act_bytes / 1e9:.1f} GB > 90% of free "
                                              f"{free / 1e9:.1f} GB")
                    model.ctx = N
                    caches = [tuple(torch.empty(B, a.kv_heads, N + 1, cfg["head_dim"], device=dev,
                                                dtype=dt).normal_() for _ in range(2))
                              for _ in range(a.layers)]
                    ids = torch.randint(0, a.vocab, (B, 1), device=dev)
                    pos = torch.full((1,), N, device=dev, dtype=torch.long)
                    step = lambda: model.forward(ids, pos, caches)
                    if graphs:
                        # Warm up on a side stream before capture, as the PyTorch docs require.
                        s = torch.cuda.Stream(dev)
                        s.wait_stream(torch.cuda.current_stream(dev))
                        with torch.cuda.stream(s):
                            for _ in range(max(1, a.warmup)):
                                step()
                        torch.cuda.current_stream(dev).wait_stream(s)
                        g = torch.cuda.CUDAGraph()
                        with torch.cuda.graph(g):
                            static_out = step()  # noqa: F841 - keeps the graph's output alive
                        samples = timed(g.replay)
                    else:
                        samples = timed(step)
                    row = {"batch": B, "context": N, "graphs": graphs, **stats(samples)}
                res[kind].append(row)
                log(f"{label}: median {row['median_ms']:.3f} ms, min {row['min_ms']:.3f} ms, "
                    f"graphs={row['graphs']}")
            except (MemoryError, OOM) as e:
                why = str(e).split("\n")[0][:300] if isinstance(e, MemoryError) \
                    else "out of memory: " + str(e).split("\n")[0][:250]
                res["skipped"].append({**skip, "why": why})
                log(f"{label}: skipped ({why})")
            except RuntimeError as e:  # e.g. a failed graph capture: record it, go on
                res["skipped"].append({**skip, "why": f"error: {str(e).splitlines()[0][:300]}"})
                log(f"{label}: skipped (error: {e})")
            finally:
                g = caches = static_out = None
                smi.point = "between points"
                free_mem()
            write()
    res["complete"] = not any(s["why"].startswith("budget") for s in res["skipped"]) and \
        all(len(r["samples_ms"]) == a.iterations for r in res["prefill"] + res["decode"])
    smi.stop.set()
    smi.join(timeout=10)
    write()
    log(f"wrote {a.out} (complete={res['complete']}, wall {res['wall_s']:.1f} s)")


if __name__ == "__main__":
    main()
