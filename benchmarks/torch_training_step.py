"""The original PyTorch training step of SeisT, PhaseNet and EQTransformer, for training_step.py.

Runs in an interpreter that has ``torch`` (and ``timm``, which SeisT's model
file imports) and the original SeisT code (``--seist_repo``, a checkout of
github.com/senli1073/SeisT: its ``models`` package holds SeisT and the
PhaseNet / EQTransformer baselines the SeisT weights and training goldens
come from, its ``config.py`` the loss of each model). It does not import
utrans. ``benchmarks/training_step.py`` starts it with ``--serve`` and sends
one JSON request per line on stdin; each answer is one JSON line on stdout:

* ``{"op": "build", "key": k, "model": name, "batch": b, "in_samples": n, "seed": s}``:
  create the model (``create_model(name, in_channels=3, in_samples=n)``, training
  mode), its loss (``Config.get_loss(name)``), ``torch.optim.Adam(lr=1e-3)``
  and the batch (the same random numbers as the Keras side), run the first
  step; answers ``{"first": [wall_s, cpu_s], "parameters": p}``;
* ``{"op": "round", "key": k, "steps": m}``: ``m`` timed steps; answers
  ``{"wall": [...], "cpu": [...]}``;
* ``{"op": "quit"}``.

A step is what SeisT's ``training/train.py`` does per batch: forward, loss,
``zero_grad``, ``backward``, ``optimizer.step()`` and ``loss.item()``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time

import numpy as np
import torch


def batch_arrays(batch, in_samples, out_shape, seed):
    """The benchmark's random batch, channels first: x ``(B, 3, L)``, targets ``(B, *out_shape)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, in_samples)).astype(np.float32)
    y = rng.random((batch,) + tuple(out_shape)).astype(np.float32)
    return x, y


class Step:
    """One model, its loss, optimizer and batch."""

    def __init__(self, model_name, batch, in_samples, seed):
        from config import Config  # the SeisT checkout's config (sys.path set by main)
        from models import create_model

        torch.manual_seed(seed)
        with contextlib.redirect_stdout(sys.stderr):  # its losses print their weights
            self.model = create_model(model_name, in_channels=3, in_samples=in_samples)
            self.loss_fn = Config.get_loss(model_name)
        self.model.train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        with torch.no_grad():
            self.model.eval()
            out = self.model(torch.zeros(1, 3, in_samples))
            self.model.train()
        x, y = batch_arrays(batch, in_samples, tuple(out.shape[1:]), seed)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.parameters = int(sum(p.numel() for p in self.model.parameters()))

    def __call__(self):
        out = self.model(self.x)
        loss = self.loss_fn(out, self.y)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def serve(stream_in, stream_out):
    steps = {}
    for line in stream_in:
        req = json.loads(line)
        if req["op"] == "quit":
            break
        if req["op"] == "build":
            step = Step(req["model"], req["batch"], req["in_samples"], req["seed"])
            steps[req["key"]] = step
            answer = {"first": list(timed(step)), "parameters": step.parameters}
        elif req["op"] == "round":
            step = steps[req["key"]]
            times = [timed(step) for _ in range(req["steps"])]
            answer = {"wall": [t[0] for t in times], "cpu": [t[1] for t in times]}
        else:
            answer = {"error": f"unknown op {req['op']!r}"}
        stream_out.write(json.dumps(answer) + "\n")
        stream_out.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seist_repo", required=True, help="checkout of the original SeisT code")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--serve", action="store_true", help="answer JSON requests on stdin")
    args = ap.parse_args(argv)
    sys.path.insert(0, args.seist_repo)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.serve:
        serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
