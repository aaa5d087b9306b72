"""Progress bar, loss plot and the files written next to a fitted field."""

from __future__ import annotations

import json
from pathlib import Path

from deepcsp._atomic import atomic_path, write_text
from deepcsp.fit.config import FitConfig
from deepcsp.fit.loop import FitResult, fit_surface


def checkpoint_path(output: Path) -> Path:
    return Path(str(output) + ".ckpt")


def fit_with_progress(
    surface, config: FitConfig, output: Path, cache_dir=None, quiet: bool = False, ground_truth: str = "exact"
) -> FitResult:
    """:func:`fit_surface` with a tqdm bar (loss and error) and checkpoints beside ``output``."""
    from tqdm.auto import tqdm

    steps = config.resolved_steps()
    bar = (
        None
        if quiet or steps == 0
        else tqdm(total=steps, desc=f"fit {Path(str(surface.path)).name}", unit="step", dynamic_ncols=True, leave=True)
    )

    def progress(rec):
        if "stage" in rec:
            if not quiet:
                tqdm.write(f"deepcsp fit: {rec['stage']}")
            return
        if bar is not None:
            bar.n = rec["step"]
            if rec["step"] % 10 == 0:
                bar.set_postfix(loss=f"{rec['loss']:.2e}", err=f"{rec['error']:.2e}", refresh=False)
            bar.refresh() if rec["step"] % 10 == 0 else None

    try:
        result = fit_surface(
            surface,
            config,
            checkpoint_path=checkpoint_path(output),
            cache_dir=cache_dir,
            progress=progress,
            ground_truth=ground_truth,
        )
    finally:
        if bar is not None:
            bar.close()
    return result


def plot_history(history: list[dict], path: Path, title: str = "") -> Path | None:
    """Loss and error against time, as PNG (atomic). Returns None when there is no history."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [h["seconds"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].semilogy(t, [h["loss"] for h in history])
    ax[0].set_xlabel("seconds")
    ax[0].set_ylabel("loss")
    ax[1].semilogy(t, [h["error"] for h in history])
    ax[1].set_xlabel("seconds")
    ax[1].set_ylabel("batch error / diagonal")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def write_fit_outputs(result: FitResult, output: Path, config: FitConfig) -> dict[str, Path]:
    """Write the field, its report JSON and loss plot; returns what was written."""
    output = Path(output)
    files = {"field": result.field.save(output)}
    report = {
        "config": config.to_dict(),
        "field_config": result.field.config.to_dict(),
        "steps": result.steps,
        "seconds_total": result.seconds_total,
        "seconds_ground_truth": result.seconds_ground_truth,
        "resumed_from_step": result.resumed_from_step,
        "band": None if result.band is None else vars(result.band),
        "errors": None if result.errors is None else result.errors.to_dict(),
        "file_bytes": output.stat().st_size,
    }
    files["report"] = Path(str(output) + ".json")
    write_text(files["report"], json.dumps(report, indent=2))
    plot = plot_history(result.history, Path(str(output) + ".loss.png"), title=output.name)
    if plot is not None:
        files["loss_plot"] = plot
    ck = checkpoint_path(output)
    if ck.exists():
        ck.unlink()
    return files
