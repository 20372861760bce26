"""train_experiment: one experiment from config to final metrics, resumable exactly (docs/training.md)."""
from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.engine import checkpoint as ckpt
from bench.engine import distributed as ddp
from bench.engine.batch_slots import BatchSlots
from bench.engine.checks import check_dataset, check_static, resolve_device_type
from bench.engine.losses import build_loss, segmentation_loss
from bench.engine.optim import BACKBONE, HEADS, PolyWarmupSchedule, build_optimizer
from bench.engine.run_dir import CHECKPOINTS, FINAL, METRICS, MetricsLog, check_run_dir, write_config
from bench.files.atomic import write_json
from bench.files.json_records import read_json
from bench.engine.sampling import IterationBatches, TrainSamples, collate
from bench.errors import UserError
from bench.files.locking import DirLock
from bench.host.allocator import keep_freed_memory
from bench.host.compiled import maybe_compile, training_forward

Report = Optional[Callable[[dict], None]]


def _as_is(batch):
    return batch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _runtime(train_cfg, device_type: str):
    """Threads and deterministic algorithms for the duration of a run (the previous settings come back); on CPU,
    malloc's thresholds for the process (bench/host/allocator.py; they stay)."""
    if device_type == "cpu":
        keep_freed_memory()
    threads = torch.get_num_threads()
    det = torch.are_deterministic_algorithms_enabled()
    det_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if train_cfg.threads:
            torch.set_num_threads(train_cfg.threads)
        if train_cfg.deterministic:
            if device_type == "cuda":
                # cuBLAS needs this for deterministic GEMMs; ops without a deterministic CUDA kernel only warn.
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
                torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
            torch.use_deterministic_algorithms(True, warn_only=device_type == "cuda")
        elif device_type == "cuda":
            torch.backends.cudnn.benchmark = True
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(det, warn_only=det_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def _autocast(amp: str, device: torch.device):
    """bf16 on CUDA and CPU, fp16 on CUDA only (checks.resolve_device_type refuses it on CPU)."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _build_model(cfg):
    from bench.models import build_segmentor

    try:
        return build_segmentor(cfg.model)
    except (ValueError, KeyError) as exc:  # an inconsistent model section (e.g. a feature name no backbone has)
        raise UserError(f"model: {exc}") from None


def _output_align_corners(segmentor) -> dict:
    """How each training output is resized to the label: the head's own convention (IFA's release upsamples with
    align_corners=True), bilinear with align_corners=False otherwise."""
    head, aux = getattr(segmentor, "head", None), getattr(segmentor, "aux_head", None)
    return {"main": bool(getattr(head, "align_corners", False)), "aux": bool(getattr(aux, "align_corners", False))}


def _gather_rng() -> list:
    """Every rank's RNG state (index = rank); rank 0 stores them all in the checkpoint."""
    state = ckpt.capture_rng()
    if not ddp.is_dist():
        return [state]
    out = [None] * ddp.rank_world()[1]
    torch.distributed.all_gather_object(out, state)
    return out


class _StepClock:
    """Wall time of the training iterations, reported per logging window (metrics.jsonl, docs/training.md):
    window_s (seconds of the window's iterations, evaluation and checkpoints excluded), window_iters, data_wait_s
    (of window_s, the time spent waiting for the loader's next batch), and once per process, first_iter_s: the
    first iteration (loader start-up, a compiled model's compilation, warm-up), kept out of window_s so that
    it_per_s is the steady rate. On CUDA these are host times: GPU work still queued when a window ends (the logging
step then waits for it) counts in the next window, so windows average out over a run, not one by one."""

    def __init__(self):
        self.mark = time.perf_counter()
        self.window_s = self.data_s = 0.0
        self.iters = 0
        self.first_s: Optional[float] = None

    @contextlib.contextmanager
    def waiting(self):
        t0 = time.perf_counter()
        yield
        self.data_s += time.perf_counter() - t0

    def step_done(self, device: torch.device, first: bool) -> None:
        now = time.perf_counter()
        if first:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
                now = time.perf_counter()
            self.first_s, self.data_s = now - self.mark, 0.0
        else:
            self.window_s += now - self.mark
            self.iters += 1
        self.mark = now

    def pause(self, seconds: float) -> float:
        """Evaluation or a checkpoint took `seconds` since the last step: not part of any iteration."""
        self.mark += seconds
        return seconds

    def window(self) -> dict:
        out = {"it_per_s": round(self.iters / self.window_s, 3) if self.window_s > 0 else None,
               "window_s": round(self.window_s, 4), "window_iters": self.iters, "data_wait_s": round(self.data_s, 4)}
        if self.first_s is not None:
            out["first_iter_s"] = round(self.first_s, 3)
            self.first_s = None
        self.window_s = self.data_s = 0.0
        self.iters = 0
        return out


class _Trainer:
    def __init__(self, cfg, out_dir: Path, resume: bool, on_report: Report, progress: bool, device_type: str):
        self.cfg, self.out_dir, self.resume, self.on_report, self.progress = cfg, out_dir, resume, on_report, progress
        self.rank, self.world = ddp.rank_world()
        self.main = self.rank == 0
        self.device = ddp.rank_device(device_type)
        self.config_hash = cfg.config_hash()
        self.log: Optional[MetricsLog] = None
        self.lock = DirLock(out_dir, "run directory")
        self.created = False  # this process made out_dir: a run that fails writing removes it again
        self.events = None  # TensorBoard (bench/engine/tensorboard.py), rank 0 only

    # -- records -----------------------------------------------------------------------------------------------
    def report(self, record: dict, to_log: bool = True) -> None:
        if not self.main:
            return
        if to_log and self.log is not None:
            self.log.write(record)
        if to_log and self.events is not None:
            self.events.write(record)
        if self.on_report is not None:
            self.on_report(record)

    # -- setup -------------------------------------------------------------------------------------------------
    def setup(self) -> Optional[dict]:
        """Everything that can fail on bad input happens here, before the run directory is written.
        Returns the finished run's final metrics when there is nothing left to do."""
        from bench.data import build_dataset
        from bench.data.transforms import EvalTransform, TrainTransform

        cfg = self.cfg
        check_static(cfg, self.world)
        if self.main and self.out_dir.is_dir():
            self.lock.acquire()  # before reading its state: another process may be writing it
        check_run_dir(self.out_dir, self.config_hash, self.resume)
        final = read_json(self.out_dir / FINAL)
        if self.resume and final is not None and final.get("config_hash") == self.config_hash:
            return final
        self.train_set = build_dataset(cfg.data, cfg.data.train_split)
        check_dataset(cfg, self.train_set)
        self.val_set = build_dataset(cfg.data, cfg.data.val_split)
        check_dataset(cfg, self.val_set)
        from bench.data.preflight import verify_before_training

        verify_before_training(self.train_set, self.val_set)  # every rank: none may wait on one that failed
        self.train_transform, self.eval_transform = TrainTransform(cfg.data), EvalTransform(cfg.data)

        seed_everything(cfg.seed)  # the initial weights are a function of the seed
        self.segmentor = _build_model(cfg)
        if getattr(self, "init_state", None) is not None:
            self.segmentor.load_state_dict(self.init_state, strict=True)
        self.segmentor = self.segmentor.to(self.device)
        if cfg.train.channels_last:
            self.segmentor = self.segmentor.to(memory_format=torch.channels_last)
        maybe_compile(self.segmentor, cfg.model)  # in place: state_dict and attributes stay the module's own
        self.loss_weights = dict(self.segmentor.loss_weights)
        self.align = _output_align_corners(self.segmentor)
        self.loss_fn = build_loss(cfg.train)
        self.model = ddp.wrap_model(self.segmentor, self.device)
        self.segmentor = getattr(self.model, "module", self.model)  # SyncBN conversion makes new BN modules
        self.optimizer = build_optimizer(self.segmentor, cfg.train)
        self.schedule = PolyWarmupSchedule.from_config(self.optimizer, cfg.train)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.train.amp == "fp16" else None
        self.start_iter, self.prior_time = 0, 0.0

        state = None
        if self.resume:
            path = ckpt.latest_checkpoint(self.out_dir / CHECKPOINTS)
            if path is not None:
                state = ckpt.load_checkpoint(path)
                if state.get("config_hash") != self.config_hash:
                    raise UserError(f"{path}: written for config hash {state.get('config_hash')}, this config's is "
                                    f"{self.config_hash}; refusing to resume a different experiment")
                self.resume_path = path
        if state is not None:
            self._restore(state)
        else:
            torch.manual_seed(cfg.seed + self.rank)  # training randomness (dropout) per rank
        return None

    def _restore(self, state: dict) -> None:
        self.segmentor.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.start_iter = int(state["iter"])
        self.prior_time = float(state.get("train_time_s", 0.0))
        rngs = state.get("rng") or []
        if len(rngs) == self.world:
            ckpt.restore_rng(rngs[self.rank])
        else:  # another world size: exact replay of dropout is impossible; stay deterministic
            torch.manual_seed(self.cfg.seed + self.rank + 1_000_003 * self.start_iter)

    def _checkpoint(self, iteration: int, train_time: float) -> None:
        rngs = _gather_rng()
        if self.main:
            state = {
                "config_hash": self.config_hash,
                "model": self.segmentor.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": rngs,
                "train_time_s": float(train_time),
                "world_size": self.world,
            }
            path = ckpt.save_checkpoint(self.out_dir / CHECKPOINTS, iteration, state, self.cfg.train.keep_checkpoints)
            self.report({"kind": "checkpoint", "iter": iteration, "path": str(path)}, to_log=False)
        elif self.on_report is not None:  # Ray Train's report is collective: every rank reports each checkpoint
            self.on_report({"kind": "checkpoint", "iter": iteration, "path": None})
        ddp.barrier()

    def _evaluate(self, per_image: bool = False) -> dict:
        from bench.engine.evaluation.evaluate import evaluate

        cfg = self.cfg
        return evaluate(self.model, self.val_set, cfg.eval, cfg.model.num_classes, self.device,
                        transform=self.eval_transform, class_names=self.val_set.classes,
                        ignore_index=cfg.train.ignore_index, default_crop_size=tuple(cfg.data.crop_size),
                        num_workers=cfg.data.num_workers, per_image=per_image)

    def _eval_record(self, iteration: int, metrics: dict) -> dict:
        keep = ("miou", "macc", "aacc", "boundary_iou", "per_class_iou", "eval_time_s", "num_images", "protocol")
        return {"kind": "eval", "iter": iteration, **{k: metrics[k] for k in keep if k in metrics}}

    # -- loop --------------------------------------------------------------------------------------------------
    def _loader(self) -> tuple[DataLoader, Callable]:
        """The training DataLoader and the function that turns its output into (images, labels, iteration)."""
        cfg = self.cfg
        samples = TrainSamples(self.train_set, self.train_transform, cfg.seed, cfg.train.batch_size)
        batches = IterationBatches(self.start_iter, cfg.train.iterations, cfg.train.batch_size, self.rank, self.world)
        workers, prefetch = cfg.data.num_workers, 2
        pin = self.device.type == "cuda"
        collate_fn, take = collate, _as_is
        if workers and not pin:  # on CUDA the pin-memory thread takes the default transport's cost off this thread
            per_rank, (h, w) = len(batches.slots), cfg.data.crop_size
            slots = BatchSlots((per_rank, 3, h, w), (per_rank, h, w), in_flight=workers * prefetch)
            collate_fn, take = slots, slots.take
        # Own generator: creating the loader's iterator must not draw from the global torch RNG (dropout's).
        loader = DataLoader(samples, batch_sampler=batches, num_workers=workers, collate_fn=collate_fn,
                            pin_memory=pin, generator=torch.Generator().manual_seed(cfg.seed),
                            persistent_workers=False, prefetch_factor=prefetch if workers else None)
        return loader, take

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.cfg.train.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with training_forward(self.segmentor, self.cfg.model), _autocast(self.cfg.train.amp, self.device):
            outputs = self.model(images)
        loss, parts = segmentation_loss(outputs, labels, self.loss_weights, self.loss_fn, self.align)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return loss.detach(), parts

    def train(self) -> dict:
        cfg, t = self.cfg, self.cfg.train
        if self.main:
            if not self.lock.held:  # a new directory: made and locked only now that the input has been checked
                self.created = not self.out_dir.exists()
                self.lock.acquire()
                check_run_dir(self.out_dir, self.config_hash, self.resume)
            ckpt.remove_partial_writes(self.out_dir / CHECKPOINTS)
            write_config(self.out_dir, cfg)
            resumed = self.start_iter > 0
            self.log = MetricsLog(self.out_dir / METRICS, upto_iter=self.start_iter if resumed else None,
                                  final_iter=t.iterations)
            from bench.engine.tensorboard import EventWriter

            self.events = EventWriter(self.out_dir, purge_step=self.start_iter + 1 if resumed else None)
        bar = None
        if self.progress and self.main:
            from tqdm import tqdm

            bar = tqdm(total=t.iterations, initial=self.start_iter, desc=cfg.name, unit="it", dynamic_ncols=True)
        self.model.train()
        group_names = [g.get("name", str(i)) for i, g in enumerate(self.optimizer.param_groups)]
        segment_start, eval_time = time.perf_counter(), 0.0
        clock = _StepClock()
        try:
            loader, take = self._loader()
            batches = iter(loader)
            while True:
                with clock.waiting():
                    batch = next(batches, None)
                    if batch is not None:
                        batch = take(batch)
                if batch is None:
                    break
                images, labels, it = batch
                lrs = dict(zip(group_names, self.schedule.step(it)))
                images = images.to(self.device, non_blocking=True)
                labels = labels.to(self.device, non_blocking=True)
                loss, parts = self._step(images, labels)
                done = it + 1
                clock.step_done(self.device, first=done == self.start_iter + 1)
                if bar is not None:
                    bar.update(1)
                train_time = self.prior_time + time.perf_counter() - segment_start - eval_time
                if done % t.log_every == 0 or done == t.iterations:
                    values = ddp.mean_over_ranks(torch.stack([loss, *parts.values()]).float()).tolist()
                    if not math.isfinite(values[0]):
                        raise FloatingPointError(f"loss is {values[0]} at iteration {done}; lower train.lr or "
                                                 f"check the data")
                    record = {"kind": "train", "iter": done, "loss": values[0],
                              **dict(zip(parts.keys(), values[1:])),
                              "lr": lrs.get(BACKBONE, next(iter(lrs.values()))), "lr_head": lrs.get(HEADS),
                              "time_s": round(train_time, 3), **clock.window(),
                              "epoch": round(done * t.batch_size / len(self.train_set), 3)}
                    self.report(record)
                    if bar is not None:
                        bar.set_postfix(loss=f"{values[0]:.4f}", lr=f"{record['lr']:.2e}", refresh=False)
                if t.eval_every and done % t.eval_every == 0 and done != t.iterations:
                    e0 = time.perf_counter()
                    self.report(self._eval_record(done, self._evaluate()))
                    self.model.train()
                    eval_time += clock.pause(time.perf_counter() - e0)
                if done % t.checkpoint_every == 0 or done == t.iterations:
                    c0 = time.perf_counter()
                    self._checkpoint(done, train_time)
                    # checkpoint I/O is not training time either
                    eval_time += clock.pause(time.perf_counter() - c0)
        finally:
            if bar is not None:
                bar.close()
        train_time = self.prior_time + time.perf_counter() - segment_start - eval_time
        if self.start_iter >= t.iterations:  # resumed from the last checkpoint: only the final evaluation is left
            train_time = self.prior_time
        return self._finish(train_time)

    def _finish(self, train_time: float) -> dict:
        from bench.measure.environment import environment
        from bench.measure.ifa_on_gpu import what_ran
        from bench.results.provenance import provenance

        from bench.engine.evaluation import bootstrap
        cfg = self.cfg
        metrics = self._evaluate(per_image=True)
        inter, union = metrics.pop("per_image_inter"), metrics.pop("per_image_union")
        metrics.update(bootstrap.interval_fields(inter, union))
        if self.main:  # the interval's input, for seed-pooled and paired bootstraps later (check --ci)
            bootstrap.save_per_image(self.out_dir / bootstrap.PER_IMAGE_FILE, inter, union)
        self.report(self._eval_record(cfg.train.iterations, metrics))
        final = {
            **metrics,
            "iterations": cfg.train.iterations,
            "train_time_s": round(train_time, 3),
            "name": cfg.name,
            "config_hash": self.config_hash,
            "world_size": self.world,
            "environment": environment(self.device),
            **what_ran(self.model),  # IFA's formulation and kernels as the final evaluation ran them
            "provenance": provenance(),
        }
        if self.main:
            write_json(self.out_dir / FINAL, final)
        return final

    def close(self, failed: Optional[BaseException] = None) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
        if self.events is not None:
            self.events.close()
            self.events = None
        if isinstance(failed, OSError) and self.created and self.main:
            # A write failed (full disk, permissions): a run directory this process made holds nothing resumable
            # worth the space. An existing one keeps its last good state (every write is atomic).
            shutil.rmtree(self.out_dir, ignore_errors=True)
        self.lock.release()


def train_experiment(cfg, out_dir: Path, *, resume: bool = False, on_report: Report = None,
                     progress: bool = True, init_state: Optional[dict] = None) -> dict:
    """Train `cfg` (an ExperimentConfig) into `out_dir`, evaluate on the validation split, return the final metrics
    (miou, macc, aacc, boundary_iou in percent, per_class_iou, iterations, train_time_s, ...; the same as final.json).

    resume: continue from the newest checkpoint in out_dir (a run that already finished returns its final.json);
    without a checkpoint it starts from scratch. on_report(record) gets every train/eval record and a
    {"kind": "checkpoint", "iter", "path"} record after each checkpoint write (rank 0 only; the other ranks get
    one with path None, and nothing else).
    Under torch.distributed (world size > 1): DDP + SyncBatchNorm, the global batch split over ranks, rank 0 writes.
    init_state: initial weights (a project state_dict, e.g. a converted hzhupku/IFA checkpoint) loaded strictly
    after the model is built; a resumed run's checkpoint replaces them.
    """
    out_dir = Path(out_dir)
    device_type = resolve_device_type(cfg.train)
    created_group = ddp.maybe_init_from_env(device_type)
    try:
        with _runtime(cfg.train, device_type):
            trainer = _Trainer(cfg, out_dir, resume, on_report, progress, device_type)
            trainer.init_state = init_state
            failed = None
            try:
                done = trainer.setup()
                if done is not None:
                    return done
                return trainer.train()
            except BaseException as exc:
                failed = exc
                raise
            finally:
                trainer.close(failed)
    finally:
        if created_group:
            torch.distributed.destroy_process_group()
