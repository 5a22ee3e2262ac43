"""The report's plots as PNG bytes. matplotlib's object API with the Agg canvas: no pyplot state, no display,
safe in threads and on machines without a screen."""

from __future__ import annotations

import io

import numpy as np


def _figure(width: float = 11.0, height: float = 4.5):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def degree_distribution(out_degree: np.ndarray, in_degree: np.ndarray) -> bytes:
    """Log-log counts of nodes by out- and in-degree (the long tail the paper's Figure 2 shows)."""
    fig = _figure()
    ax = fig.add_subplot()
    for degree, label in ((out_degree, "out-degree"), (in_degree, "in-degree")):
        values, counts = np.unique(degree[degree > 0], return_counts=True)
        ax.loglog(values, counts, marker=".", linestyle="none", label=label, alpha=0.7)
    ax.set_xlabel("degree")
    ax.set_ylabel("nodes")
    ax.set_title("Degree distribution of the item graph")
    ax.legend()
    return _png(fig)


def attention_weights(fields: list[str], weights: np.ndarray) -> bytes:
    """Per field (the item itself first), the spread of the per-item EGES weights as box plots."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.boxplot([weights[:, j] for j in range(weights.shape[1])], showfliers=False)
    ax.set_xticks(range(1, len(fields) + 1), fields)
    ax.set_ylabel("attention weight")
    ax.set_title("EGES attention weights per item, by field")
    return _png(fig)


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """The first two principal components of the rows (SVD of the centred matrix)."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def validation_curve(curves: dict[str, tuple[np.ndarray, np.ndarray]], label: str, chosen: tuple[str, int]) -> bytes:
    """The validation figure per pass, one line per method tried, the chosen (method, pass) marked."""
    fig = _figure(height=4.0)
    ax = fig.add_subplot()
    for method, (epochs, values) in curves.items():
        ax.plot(epochs, values, marker="o", label=method)
    method, epoch = chosen
    if method in curves:
        epochs, values = curves[method]
        hit = np.flatnonzero(epochs == epoch)
        if len(hit):
            ax.plot([epoch], [values[hit[0]]], marker="*", markersize=16, color="black", linestyle="none",
                    label=f"chosen: {method}, {epoch} pass(es)")
    ax.set_xlabel("pass over the walks")
    ax.set_ylabel(label)
    ax.set_title("Validation on the latest events held out")
    ax.legend()
    return _png(fig)
