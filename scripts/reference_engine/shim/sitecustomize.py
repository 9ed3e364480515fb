"""Start-up shim that lets the unchanged reference (DearCaat/MHIM-MIL) train on a CPU-only torch 1.13.

scripts/bench_reference_engine.sh puts this folder on PYTHONPATH and sets MHIM_BENCH_SHIM=1, so
Python imports this file at start-up (before the reference's main.py) instead of Debian's
sitecustomize (which only installs apport's hook). Without MHIM_BENCH_SHIM=1 it does nothing. It
never edits, copies or re-implements the reference's code; everything it does is listed here and
printed once to stderr ("[bench shim] ..."):

Stubs, for modules that are not installed here and that the measured path never uses (importing
works; using anything from them raises):
  wandb            main.py and the engine import it; only used with --wandb (off)
  git (GitPython)  utils.py imports it; only used by wandb's auto-commit (off)
  sksurv           engines/metrics.py imports it; only the survival C-index uses it (we train
                   classification)
  torch_geometric  datasets/ imports it; only the graph models (patch_gcn, ...) use it

Bridges (each a crash of the shipped code or of torch 1.13 on this path; none changes a number):
  torch.amp.GradScaler  main.py builds `torch.amp.GradScaler(device=..., enabled=not amp_unscale)`,
                   an API of torch >= 2.3; torch 1.13 has only torch.cuda.amp.GradScaler. The bridge
                   returns torch.cuda.amp.GradScaler(enabled=...), which disables itself without
                   CUDA (scale() returns the loss, step() calls optimizer.step()). On torch >= 2.3
                   a CPU GradScaler would be live: it multiplies the loss by 2^16, unscales every
                   gradient and checks them for inf/NaN each step, so the bridge leaves out that
                   per-step work (it favours the reference slightly).
  --model mhim    crashes twice in the shipped builder (modules/__init__.py build_mil): it reads
                   args.attn_layer, an option that is commented out of options.py (AttributeError),
                   and passes it to MHIM.__init__, which has no such parameter (TypeError). The
                   bridge gives the parser a default attn_layer = 0 (parser.set_defaults: no new
                   command-line option) and drops the keyword before MHIM.__init__ runs.
                   MHIM.__init__ sets self.attn_layer = 0 itself (modules/mhim.py), the value the
                   option would have given.

Not here: the reference's real pure-Python dependencies (einops 0.7.0, timm 0.9.16, torchmetrics
1.4.3, lightning-utilities 0.11.9, checked out from their repositories) go on PYTHONPATH as they
are. Its PrefetchLoader crashes without CUDA (datasets/data_utils.py uses contextlib's `suppress`
without importing it); the harness passes the reference's own --no_prefetch option instead.

Opt-in, only when MHIM_BENCH_REF_AUTOCAST=cpu-bf16 (the harness sets it for the bf16 runs):
  the reference's engine opens `torch.autocast(device_type='cuda', dtype=torch.float16,
  enabled=args.amp)` around every training and validation forward: its --amp switch is CUDA fp16
  only, and on a machine without CUDA torch warns and disables it, so `--amp` alone trains in
  fp32 on a CPU. With this variable set, torch.autocast(device_type='cuda', ...) becomes
  torch.autocast(device_type='cpu', dtype=torch.bfloat16, ...) while CUDA is absent: the
  reference's own switch (--amp) then turns on CPU bf16 autocast at the same places.
  Torch 1.13's CPU autocast has no rule for layer_norm, so a bf16 activation meeting a LayerNorm's
  fp32 weight raises ("expected scalar type BFloat16 but found Float"; the GRN and TransMIL hit
  it), where CUDA autocast, the reference's home, runs layer_norm in fp32. With the same variable
  set, torch.nn.functional.layer_norm casts its input to the weight's dtype in exactly that case:
  CUDA autocast's rule, and what our C++ does (mil/models/model_init.h, layer_norm_fp32).
"""
import importlib.abc
import importlib.machinery
import os
import sys
import types

_STUBBED = ("wandb", "git", "sksurv", "torch_geometric")


class _Absent(types.ModuleType):
    """A module that is not installed here: importing it works, using anything from it raises."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        qualified = self.__name__ + "." + name

        def unavailable(*args, **kwargs):
            raise RuntimeError(qualified + " is a stub of scripts/reference_engine/shim (absent module)")

        # A class, so that `class BatchWSI(Batch)` at import time works; calling it raises.
        return type(name, (), {"__init__": unavailable, "__call__": unavailable,
                               "__init_subclass__": classmethod(lambda cls, **kw: None)})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the stubs, and runs `_after_import` hooks once a watched reference module has loaded."""

    def __init__(self, after_import):
        self.after_import = after_import

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in _STUBBED:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        hook = self.after_import.get(fullname)
        if hook is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            real_exec(module)
            hook(module)

        spec.loader.exec_module = exec_module
        return spec

    def create_module(self, spec):
        module = _Absent(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def _bridge_mhim_options(options_module):
    # argparse keeps set_defaults() values without a matching option as plain attributes.
    options_module.parser.set_defaults(attn_layer=0)


def _bridge_mhim_init(mhim_module):
    cls = mhim_module.MHIM
    real_init = cls.__init__

    def __init__(self, *args, attn_layer=None, **kwargs):
        real_init(self, *args, **kwargs)

    __init__.__doc__ = real_init.__doc__
    cls.__init__ = __init__


def _install():
    import torch  # after the harness set OMP_NUM_THREADS / MKL_NUM_THREADS in the environment

    notes = ["stubs: " + ", ".join(_STUBBED)]
    if not hasattr(torch.amp, "GradScaler"):
        def grad_scaler(device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                        growth_interval=2000, enabled=True):
            return torch.cuda.amp.GradScaler(init_scale=init_scale, growth_factor=growth_factor,
                                             backoff_factor=backoff_factor,
                                             growth_interval=growth_interval, enabled=enabled)

        torch.amp.GradScaler = grad_scaler
        notes.append("torch.amp.GradScaler -> torch.cuda.amp.GradScaler (off without CUDA)")

    if os.environ.get("MHIM_BENCH_REF_AUTOCAST") == "cpu-bf16":
        real_autocast = torch.autocast

        class autocast(real_autocast):
            def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
                if device_type == "cuda" and not torch.cuda.is_available():
                    device_type, dtype = "cpu", torch.bfloat16
                super().__init__(device_type, dtype=dtype, enabled=enabled,
                                 cache_enabled=cache_enabled)

        torch.autocast = autocast
        notes.append("torch.autocast('cuda', float16) -> torch.autocast('cpu', bfloat16)")

        functional = torch.nn.functional
        real_layer_norm = functional.layer_norm

        def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
            if (torch.is_autocast_cpu_enabled() and weight is not None
                    and input.dtype != weight.dtype):
                input = input.to(weight.dtype)
            return real_layer_norm(input, normalized_shape, weight, bias, eps)

        functional.layer_norm = layer_norm
        notes.append("layer_norm under CPU autocast: input cast to its fp32 weight's dtype")

    sys.meta_path.insert(0, _Finder({"options": _bridge_mhim_options, "modules.mhim": _bridge_mhim_init}))
    notes.append("--model mhim: attn_layer default 0, dropped before MHIM.__init__")
    sys.stderr.write("[bench shim] torch %s, intra-op threads %d, inter-op threads %d, "
                     "OMP_NUM_THREADS=%s, MKL_NUM_THREADS=%s; %s\n"
                     % (torch.__version__, torch.get_num_threads(), torch.get_num_interop_threads(),
                        os.environ.get("OMP_NUM_THREADS", "unset"),
                        os.environ.get("MKL_NUM_THREADS", "unset"), "; ".join(notes)))


if os.environ.get("MHIM_BENCH_SHIM") == "1":
    _install()
