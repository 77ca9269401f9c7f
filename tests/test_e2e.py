"""End to end on tiny configs: train/eval in-process from composed configs; the command line (multirun, sweepers,
launchers, DDP spawn, composition errors, eval.py) as subprocesses."""

from __future__ import annotations

import csv

import pytest
from support import run_in_process, run_script, train_in_process

TINY = ["debug=tiny", "dataset=multi", "model.depth=2", "model.width=4"] + [
    f"dataset.materials.{m}.{k}={v}" for m in ("ceramic", "nanoparticles") for k, v in (("n_images", 5), ("n_px", 48))
]


def test_train_then_eval_writes_table1(tmp_path):
    metrics, objects = run_in_process("train", TINY, tmp_path / "train")
    run_dir = tmp_path / "train"
    assert {"val/min_gain_psnr", "test/psnr_x2", "test/bicubic_ssim_x8"} <= set(metrics)
    assert objects["trainer"].state.finished and objects["cfg"].paths.output_dir == str(run_dir)
    best = run_dir / "checkpoints" / "best.ckpt"
    assert best.is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    table = (run_dir / "table1.md").read_text()
    assert "| all | x2 |" in table and "| all | x8 |" in table
    assert sorted((run_dir / "samples").glob("*.png"))

    eval_dir = tmp_path / "eval"
    evaluated, _ = run_in_process("eval", [*TINY, f"ckpt_path={best}"], eval_dir)
    lines = (eval_dir / "table1.csv").read_text().splitlines()
    assert lines[0] == "material,scale,method,n,psnr_mean,psnr_std,ssim_mean,ssim_std"
    assert len(lines) == 1 + 3 * 2  # three scales x (bicubic, model)
    # the same checkpoint on the same split gives the same numbers as the test after training
    assert (eval_dir / "table1.csv").read_text() == (run_dir / "table1.csv").read_text()
    assert evaluated == pytest.approx({k: v for k, v in metrics.items() if k.startswith("test/")}, rel=1e-6)


def test_log_file_gets_a_progress_line_per_epoch_not_per_step(tmp_path, capsys):
    """stdout is not a TTY here (captured), as in a log file: LineProgress writes one line per epoch."""
    epochs, steps = 3, 16
    mono = [a for a in TINY if "nanoparticles" not in a and not a.startswith("dataset=")]
    args = [*mono, "dataset=mono", "trainer.enable_progress_bar=true", f"trainer.max_epochs={epochs}",
            f"dataset.patches_per_epoch={8 * steps}", "test=false", "logger=none"]
    _, objects = run_in_process("train", args, tmp_path / "train")
    out = capsys.readouterr().out
    assert objects["trainer"].global_step == epochs * steps
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(" step ")[0] for line in lines] == [f"epoch {e}/{epochs}" for e in range(1, epochs + 1)]
    assert all("val/min_gain_psnr" in line for line in lines)
    assert "\r" not in out and len(out.splitlines()) < epochs * steps


@pytest.mark.slow
def test_multirun_two_jobs(tmp_path):
    sweep = tmp_path / "sweep"
    ceramic_only = [a for a in TINY if "nanoparticles" not in a and not a.startswith("dataset=")]
    res = run_script("train.py", ["-m", *ceramic_only, "dataset=mono,multi", "test=false", "logger=none",
                            f"hydra.sweep.dir={sweep}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit()) == ["0", "1"]
    assert all((sweep / j / "checkpoints" / "last.ckpt").is_file() for j in ("0", "1"))


@pytest.mark.slow
@pytest.mark.parametrize(("args", "message"), [
    (["dataset=mutli"], "Could not find 'dataset/mutli'"),
    (["model.dpeth=20"], "dpeth"),
    (["model.depth=0"], "model.depth must be an integer in [2, 128]"),
])
def test_bad_config_is_one_clear_error(tmp_path, args, message):
    res = run_script("train.py", [*TINY, *args, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
    assert res.returncode != 0
    assert message in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["scales=[3]"], "scales [3]"),
    (["trainer.gpus=1"], "trainer.gpus=1"),
])
def test_bad_value_is_one_clear_error_in_process(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        run_in_process("train", [*TINY, *args], tmp_path / "run")
    assert stop.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("afm-sr: error:")]
    assert len(lines) == 1 and message in lines[0]


@pytest.mark.slow
def test_eval_takes_the_architecture_from_the_checkpoint(tmp_path):
    """eval.py on the command line: a MultiScaleResNet checkpoint evaluates with the default model config."""
    no_model = [a for a in TINY if not a.startswith("model.")]
    msr = ["model=msr", "model.blocks=1", "model.width=8", "model.tail_width=4", "dataset.lr_patch=4"]
    run_dir = train_in_process([*no_model, *msr, "test=false"], tmp_path)
    res = run_script("eval.py", [*no_model, f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                                 f"hydra.run.dir={tmp_path / 'eval'}"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "MultiScaleResNet(blocks=1, width=8, tail_width=4" in res.stderr + res.stdout
    assert (tmp_path / "eval" / "table1.md").is_file()


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    """Lightning DDP (gloo, 2 CPU processes) trains, validates and tests with per-image rows gathered across ranks."""
    run_dir = tmp_path / "ddp"
    args = [*TINY, "trainer=ddp_cpu", "trainer.max_epochs=2", f"hydra.run.dir={run_dir}"]
    res = run_script("train.py", args, tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    header = (run_dir / "csv" / "version_0" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "val/min_gain_psnr" in header and "train/loss" in header and "test/psnr_x8" in header
    with (run_dir / "records.csv").open() as f:
        rows = [(r["material"], r["image"], r["scale"], r["method"]) for r in csv.DictReader(f)]
    # each image once per scale and method: each rank measured every other (image, scale) item, so rows of a
    # single rank would miss scales, and the sampler's padding would repeat one
    assert len(rows) == len(set(rows)) == 2 * 3 * len({r[:2] for r in rows}) > 0


@pytest.mark.slow
def test_optuna_sweep_returns_the_monitored_metric(tmp_path):
    """hparams_search=optuna: 3 trials over lr, depth and clip theta, maximizing val/min_gain_psnr."""
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="pip install -e '.[sweep]'")
    sweep = tmp_path / "optuna"
    ceramic_only = [a for a in TINY if "nanoparticles" not in a and not a.startswith(("dataset=", "model.depth"))]
    res = run_script("train.py", ["-m", *ceramic_only, "dataset=mono", "hparams_search=optuna",
                                  "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=2", "test=false",
                                  "logger=none", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    result = (sweep / "optimization_results.yaml").read_text()
    assert "best_value:" in result and "model.depth:" in result and "module.clip_theta:" in result
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2"]


@pytest.mark.slow
def test_submitit_local_launcher(tmp_path):
    """hydra/launcher=local (submitit) runs a tiny 2-job multirun as separate processes."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[sweep]'")
    sweep = tmp_path / "submitit"
    ceramic_only = [a for a in TINY if "nanoparticles" not in a and not a.startswith("dataset=")]
    res = run_script("train.py", ["-m", *ceramic_only, "dataset=mono", "hydra/launcher=local", "model.depth=2,3",
                            "test=false", "logger=none", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert all((sweep / j / "checkpoints" / "last.ckpt").is_file() for j in ("0", "1"))
    assert (sweep / ".submitit").is_dir()
