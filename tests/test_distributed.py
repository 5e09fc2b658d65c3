"""Data-parallel training: two CPU processes (gloo) against one process with the same global
batch, resume under DDP, and scripts/train.py through torchrun.

Two processes see every global batch split between them (every second index of the epoch's
permutation) and average their gradients; mathematically that is the single-process step, and
in float32 it differs only by the order in which the two halves' gradients are summed. The
weights after training must agree within ATOL.
"""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from conftest import ROOT
from layerwise.io import load_tensors, save_tensors

ATOL = 2e-5  # float32 rounding of a differently ordered gradient sum, after 9 AdamW steps

MODEL = dict(arch="vit", depth=2, width=16, heads=2, patch_size=4, mlp_ratio=2.0,
             head_input="final_norm")
INFO = dict(input_shape=[1, 8, 8], num_classes=4)


def tiny_data():
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 4, (61,), generator=g)
    x = torch.randn(61, 1, 8, 8, generator=g) + y[:, None, None, None]
    # 45 training samples in batches of 16: the last global batch (13) splits 7 + 6
    return {"train": (x[:45], y[:45]), "val": (x[45:], y[45:])}


def spec(method="aligned", **overrides):
    from layerwise.train.loop import TrainSpec
    from layerwise.train.methods import METHODS

    base = dict(method=method, seed=0, epochs=3, batch_size=16, lr=1e-3, weight_decay=1e-4,
                schedule="cosine", warmup_epochs=1,
                settings=METHODS[method].parse_settings({"alternate": True}),
                augment={"crop_padding": 1, "flip": True, "rotation_degrees": 10})
    return TrainSpec(**{**base, **overrides})


def fresh_model(method):
    from layerwise.train.runs import build_run_model
    from layerwise.seeding import seed_everything

    seed_everything(0)
    return build_run_model({"method": method, "model": {**MODEL, "width": 16}}, INFO)


def single_process(method, checkpoint):
    from layerwise.train.loop import train

    model = fresh_model(method)
    log = train(model, tiny_data(), spec(method), checkpoint, "h", torch.device("cpu"))
    return model.state_dict(), log


def _worker(rank, world, port, out):
    """One of `world` processes: an uninterrupted run per method, then an aligned run that is
    interrupted after its second epoch on every process and resumed from rank 0's checkpoint."""
    import torch.distributed as dist

    from layerwise.train import loop as training

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for method in ("aligned", "multi_exit"):
            model = fresh_model(method)
            log = training.train(model, tiny_data(), spec(method), out / f"{method}.pt", "h",
                                 torch.device("cpu"))
            if rank == 0:
                save_tensors(out / f"{method}.safetensors", model.state_dict())
                (out / f"{method}.json").write_text(json.dumps(log))

        # one sample a pass: the last batch's parts (7 and 6) in as many passes on both
        # processes, the smaller one's last pass a stand-in of weight 0
        model = fresh_model("multi_exit")
        log = training.train(model, tiny_data(), spec("multi_exit", micro_batch_size=1),
                             out / "micro.pt", "h", torch.device("cpu"))
        if rank == 0:
            save_tensors(out / "micro.safetensors", model.state_dict())
            (out / "micro.json").write_text(json.dumps(log))

        real_run_epoch = training.run_epoch

        def stop_at_epoch_3(*args, **kwargs):
            if args[6] == 2:  # the job is killed once two epochs are checkpointed
                raise KeyboardInterrupt
            return real_run_epoch(*args, **kwargs)

        training.run_epoch = stop_at_epoch_3
        try:
            training.train(fresh_model("aligned"), tiny_data(), spec(), out / "cut.pt", "h",
                           torch.device("cpu"))
        except KeyboardInterrupt:
            pass
        training.run_epoch = real_run_epoch
        dist.barrier()  # the restarted job's processes start after the killed ones ended
        model = fresh_model("aligned")
        for p in model.parameters():  # a different start: everything must come from the checkpoint
            torch.nn.init.normal_(p)
        log = training.train(model, tiny_data(), spec(), out / "cut.pt", "h", torch.device("cpu"))
        if rank == 0:
            save_tensors(out / "resumed.safetensors", model.state_dict())
            (out / "resumed.json").write_text(json.dumps(log))
    finally:
        dist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, free_port(), out), nprocs=2, join=True)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["aligned", "multi_exit"])
def test_two_processes_match_one_with_the_same_global_batch(two_processes, tmp_path, method):
    reference, reference_log = single_process(method, tmp_path / "one.pt")
    ddp = load_tensors(two_processes / f"{method}.safetensors")[0]
    assert ddp.keys() == reference.keys()
    worst = max((ddp[k] - reference[k]).abs().max().item() for k in reference)
    assert worst < ATOL, f"largest weight difference {worst:.2e}"
    log = json.loads((two_processes / f"{method}.json").read_text())
    for ours, theirs in zip(log, reference_log):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        assert ours["val_accuracy"] == theirs["val_accuracy"]
        assert ours["train_accuracy"] == pytest.approx(theirs["train_accuracy"], abs=1 / 45)


@pytest.mark.slow
def test_micro_batches_under_ddp_match_one_pass(two_processes):
    """Gradients accumulated without synchronising (no_sync) but at each step's last pass."""
    one_pass = load_tensors(two_processes / "multi_exit.safetensors")[0]
    micro = load_tensors(two_processes / "micro.safetensors")[0]
    worst = max((micro[k] - one_pass[k]).abs().max().item() for k in one_pass)
    assert worst < ATOL, f"largest weight difference {worst:.2e}"
    logs = [json.loads((two_processes / f"{name}.json").read_text())
            for name in ("multi_exit", "micro")]
    assert [r["loss"] for r in logs[1]] == pytest.approx([r["loss"] for r in logs[0]], rel=1e-5)
    assert [r["train_accuracy"] for r in logs[1]] == [r["train_accuracy"] for r in logs[0]]


@pytest.mark.slow
def test_resume_under_ddp_gives_the_uninterrupted_weights(two_processes):
    uninterrupted = load_tensors(two_processes / "aligned.safetensors")[0]
    resumed = load_tensors(two_processes / "resumed.safetensors")[0]
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key
    log = json.loads((two_processes / "resumed.json").read_text())
    assert [r["epoch"] for r in log] == [1, 2, 3]


def test_shards_cover_each_global_batch_once_and_weigh_to_its_mean():
    from layerwise.train.batches import TrainBatches
    from layerwise.train.distributed import Shard

    x, y = tiny_data()["train"]
    one = TrainBatches(x, y, 16, torch.device("cpu"), seed=0)
    shards = [TrainBatches(x, y, 16, torch.device("cpu"), seed=0, shard=Shard(r, 2))
              for r in range(2)]
    for step, (whole, *parts) in enumerate(zip(one.epoch(0), *(s.epoch(0) for s in shards))):
        index = whole[2]
        mine = [p[2][r::2] for r, p in enumerate(parts)]
        assert sorted(torch.cat(mine).tolist()) == sorted(index.tolist())
        # each process's mean loss, weighted by its share and averaged by DDP, is the mean
        # loss over the global batch (here a per-sample value standing in for the loss)
        value = index.double() + 1
        averaged = sum(p[3] * (m.double() + 1).mean() for p, m in zip(parts, mine)) / 2
        assert averaged.item() == pytest.approx(value.mean().item())
    assert Shard(0, 2).is_main and not Shard(1, 2).is_main


@pytest.mark.slow
def test_train_script_through_torchrun_matches_one_process(tmp_path):
    from layerwise.data.sources import prepare_dataset

    data = tmp_path / "digits"
    prepare_dataset({"source": "sklearn_digits", "val_fraction": 0.15, "test_fraction": 0.25,
                     "split_seed": 0}, data)
    run_spec = {"experiment": "ddp", "dataset": "digits", "method": "aligned", "seed": 0,
                "model": MODEL,
                "train": {"epochs": 1, "batch_size": 256, "lr": 1e-3, "weight_decay": 1e-4,
                          "schedule": "cosine", "milestones": [], "gamma": 0.1,
                          "warmup_epochs": 0, "label_smoothing": 0.0,
                          "augment": {"crop_padding": 1, "flip": True, "rotation_degrees": 0},
                          "compile": False},
                "aligned": {"weights": "linear", "alternate": True}}
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}"
        command = [sys.executable, str(ROOT / "scripts/train.py"), "--spec",
                   json.dumps(run_spec), "--data", str(data), "--checkpoint",
                   str(out / "ckpt.pt"), "--model", str(out / "model.safetensors"), "--log",
                   str(out / "log.csv"), "--provenance", str(out / "provenance.json"),
                   "--processes", str(processes)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        outputs[processes] = out
        # one copy of each output (rank 0 writes), and no checkpoint once the run is finished
        assert sorted(p.name for p in out.iterdir()) == [
            "log.csv", "model.safetensors", "provenance.json"]
    assert json.loads((outputs[2] / "provenance.json").read_text())["processes"] == 2
    one = load_tensors(outputs[1] / "model.safetensors")[0]
    two = load_tensors(outputs[2] / "model.safetensors")[0]
    worst = max((one[k] - two[k]).abs().max().item() for k in one)
    assert worst < ATOL, f"largest weight difference {worst:.2e}"
