#!/usr/bin/env python3
"""Checks that the reference's MHIM takes our best checkpoint as its own (run by ctest).

Usage: /usr/bin/python3 reference_checkpoint_check.py OURS.pt REFERENCE.pt [--reference DIR --einops DIR]
  OURS.pt       an MHIM job's model_best.pt (`mhim train --model mhim ... --work-dir W`)
  REFERENCE.pt  tests/fixtures/reference/checkpoints/v2/fold_0_model_best.pt: what the reference's own
                training loop saves for the same network (input 8, embedding 16, attn, GRN with k = 2)

Without a reference checkout the check is what PyTorch's strict load_state_dict checks: the same layout
({"model", "teacher", "epoch"}), the same keys and the same shapes in both state dicts, and the GRN query's
alias merge.global_q holding merge.global_q_mm. With --reference (a DearCaat/MHIM-MIL checkout) and
--einops, it also builds the reference's MHIM and calls load_state_dict(strict=True) on both parts.
Prints OK and exits 0, or names the first difference and exits 1.
"""
import argparse
import os
import sys
import types

import torch


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def shapes(state):
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def check_layout(ours, reference):
    if not isinstance(ours, dict) or set(ours) != {"model", "teacher", "epoch"}:
        fail(f"our checkpoint's keys are {sorted(ours) if isinstance(ours, dict) else type(ours)}, "
             "the reference saves model, teacher, epoch")
    if not isinstance(ours["epoch"], int):
        fail(f"epoch is {type(ours['epoch']).__name__}, the reference saves an int")
    for part in ("model", "teacher"):
        if shapes(ours[part]) != shapes(reference["model"]):
            missing = set(reference["model"]) - set(ours[part])
            extra = set(ours[part]) - set(reference["model"])
            fail(f"{part}: keys or shapes differ from the reference's (missing {sorted(missing)}, "
                 f"unexpected {sorted(extra)})")
        if not torch.equal(ours[part]["merge.global_q"], ours[part]["merge.global_q_mm"]):
            fail(f"{part}: merge.global_q is not the alias of merge.global_q_mm")


def reference_network(reference, einops_dir):
    """The reference's MHIM class at the checkpoint's width, imported without running the package
    __init__ (which would pull in every model's dependencies)."""
    sys.path.insert(0, os.path.abspath(einops_dir))
    sys.path.insert(0, os.path.abspath(reference))
    package = types.ModuleType("modules")
    package.__path__ = [os.path.join(reference, "modules")]
    sys.modules["modules"] = package
    from modules.mhim import MHIM
    return MHIM(input_dim=8, mlp_dim=16, n_classes=2, baseline="attn", act="gelu", da_act="relu",
                merge_enable=True, merge_k=2, merge_mm=0.9998, merge_ratio=0.5, mask_ratio_hr=1.0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("ours")
    parser.add_argument("reference_checkpoint")
    parser.add_argument("--reference", default=os.environ.get("MHIM_REFERENCE"))
    parser.add_argument("--einops", default=os.environ.get("MHIM_EINOPS"))
    args = parser.parse_args()
    ours = torch.load(args.ours, map_location="cpu")
    check_layout(ours, torch.load(args.reference_checkpoint, map_location="cpu"))
    if args.reference and args.einops:
        net = reference_network(args.reference, args.einops)
        for part in ("model", "teacher"):
            net.load_state_dict(ours[part], strict=True)
        print("the reference's MHIM loaded both parts with strict=True")
    print("OK")


if __name__ == "__main__":
    main()
