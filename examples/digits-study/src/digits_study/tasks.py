"""The study's task functions: split the data, train an SVM, evaluate it, and summarise a sweep.

Heavy libraries are imported inside the functions, so importing this module (and ``--help``) stays fast.
"""

from __future__ import annotations

import io
from typing import Any

from misen import meta

from digits_study.figures import PngImage, PngSerializer

__all__ = ["best_setting", "evaluate", "plot_sweep", "split_digits", "train_svm"]

#: ``{(c, gamma): metrics}``, what a sweep hands to its summary tasks.
SweepMetrics = dict[tuple[float, float], dict[str, Any]]


@meta(id="3RMVLGQ9G3", cache=True, resources={"cpus": 1, "memory": 1})
def split_digits(test_fraction: float = 0.25, seed: int = 0) -> dict[str, Any]:
    """Load scikit-learn's bundled digits (1,797 8x8 images, shipped inside the package) and split them.

    Returns:
        ``x_train``, ``y_train``, ``x_test``, ``y_test`` as NumPy arrays; pixels scaled to [0, 1].
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x / 16.0, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


@meta(id="TFDQEWPJHB", cache=True, resources={"cpus": 1, "memory": 1})
def train_svm(data: dict[str, Any], c: float, gamma: float) -> Any:
    """Fit an RBF support vector classifier with regularisation ``c`` and kernel width ``gamma``."""
    from sklearn.svm import SVC

    model = SVC(C=c, gamma=gamma)
    model.fit(data["x_train"], data["y_train"])
    return model


@meta(id="EACN3UEV7X", cache=True, resources={"cpus": 1, "memory": 1})
def evaluate(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Test-set accuracy, macro F1 and the confusion matrix (a list of rows) of a trained model."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    predicted = model.predict(data["x_test"])
    truth = data["y_test"]
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro")),
        "confusion": confusion_matrix(truth, predicted).tolist(),
        "n_test": len(truth),
    }


@meta(id="32ZYAPPTCU", cache=True, resources={"memory": 1})
def best_setting(metrics: SweepMetrics) -> dict[str, Any]:
    """The sweep's best ``(c, gamma)`` by test accuracy (ties go to the smaller ``c``, then ``gamma``)."""
    (c, gamma), best = max(sorted(metrics.items()), key=lambda item: item[1]["accuracy"])
    return {"c": c, "gamma": gamma, "accuracy": best["accuracy"], "macro_f1": best["macro_f1"]}


@meta(id="8RWSLTZ5QR", cache=True, resources={"memory": 1}, serializer=PngSerializer)
def plot_sweep(metrics: SweepMetrics) -> PngImage:
    """Draw the sweep (accuracy over the ``c`` x ``gamma`` grid, and the best model's confusion matrix).

    Args:
        metrics: The sweep's metrics by ``(c, gamma)``.

    Returns:
        The PNG image; stored in the workspace as a result, it loads as the path of the stored ``figure.png``.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display needed: the figure only goes to a file
    import matplotlib.pyplot as plt

    cs = sorted({c for c, _ in metrics})
    gammas = sorted({g for _, g in metrics})
    grid = [[metrics[(c, g)]["accuracy"] if (c, g) in metrics else float("nan") for g in gammas] for c in cs]
    best_key = max(sorted(metrics), key=lambda k: metrics[k]["accuracy"])

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    image = left.imshow(grid, cmap="viridis", origin="lower")
    left.set_xticks(range(len(gammas)), [f"{g:g}" for g in gammas])
    left.set_yticks(range(len(cs)), [f"{c:g}" for c in cs])
    left.set_xlabel("gamma")
    left.set_ylabel("C")
    left.set_title("test accuracy")
    middle = (min(min(row) for row in grid) + max(max(row) for row in grid)) / 2
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            colour = "black" if value > middle else "white"  # readable on both ends of viridis
            left.text(j, i, f"{value:.3f}", ha="center", va="center", color=colour, fontsize=8)
    fig.colorbar(image, ax=left)

    confusion = metrics[best_key]["confusion"]
    right.imshow(confusion, cmap="Blues")
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            if count:
                right.text(j, i, str(count), ha="center", va="center", fontsize=7,
                           color="white" if i == j else "black")
    right.set_xticks(range(10))
    right.set_yticks(range(10))
    right.set_xlabel("predicted digit")
    right.set_ylabel("true digit")
    right.set_title(f"confusion, best model (C={best_key[0]:g}, gamma={best_key[1]:g})")
    fig.tight_layout()

    buffer = io.BytesIO()
    # No metadata that changes between runs (software version, dates): the same figure gives the same bytes.
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return PngImage(buffer.getvalue())
