"""The memory probe: one training configuration's peak memory, measured in a fresh process.

    python -m suites.lora.memprobe '{"model": "minilm-l6", "method": "lora", "batch": 8, "seq": 64,
                                     "steps": 2, "device": "cpu", "threads": 1, "seed": 0}'

prints one line `MEMPROBE {json}`. A fresh process per configuration, so one configuration's
allocations (and the allocator's cache) cannot inflate the next one's peak.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import Any

import torch

from suites.harness.supervise import reset_peak_rss
from suites.lora.memory import shape_of
from suites.lora.models import adamw, build_any, loss_of, prepare, random_batch, trainable, vocab_of


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def memprobe(args: Mapping[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: build the model, reset the peak counter, train a few steps.

    CPU: runtime = RSS before the model exists; peak = VmHWM reset after loading (so loading's
    transient copies do not count), read after the steps. CUDA: runtime 0, peak =
    torch.cuda.max_memory_allocated after a reset that follows loading.
    """
    import gc

    torch.set_num_threads(int(args["threads"]))
    device = args["device"]
    cuda = device.startswith("cuda")
    # Everything the run imports is imported before the baseline, so its footprint is runtime.
    import transformers.models.bert.modeling_bert  # noqa: F401
    import transformers.models.llama.modeling_llama  # noqa: F401

    import impl.adapters  # noqa: F401
    import suites.data.pretrained  # noqa: F401

    gc.collect()
    runtime = 0 if cuda else _status_kb("VmRSS")
    torch.manual_seed(int(args["seed"]))
    name = args["model"]
    model = prepare(build_any(name, "cpu", cached=False), name, args["method"]).to(device).train()
    shape = shape_of(model, name)
    batch = random_batch(name, vocab_of(model), int(args["batch"]), int(args["seq"]), int(args["seed"]), device)
    optimizer = adamw(trainable(model), lr=1e-5)
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        loaded = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        reset = True
    else:
        loaded = _status_kb("VmRSS")
        reset = reset_peak_rss()
    diverged = False
    for _ in range(int(args["steps"])):
        loss = loss_of(name, model, batch)
        diverged |= not bool(torch.isfinite(loss))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        import resource

        peak = _status_kb("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    from impl.lora_model import count_parameters

    return {
        "runtime_bytes": runtime, "loaded_bytes": loaded, "peak_bytes": peak, "peak_reset": reset,
        "trainable_params": count_parameters(model), "total_params": count_parameters(model, trainable_only=False),
        "shape": shape.__dict__, "diverged": diverged,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suites.lora.memprobe", description=__doc__.split("\n")[0])
    parser.add_argument(
        "config", help='JSON: {"model", "method", "batch", "seq", "steps", "device", "threads", "seed"}'
    )
    args = parser.parse_args(argv)
    result = memprobe(json.loads(args.config))
    print("MEMPROBE " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
