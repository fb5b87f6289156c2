"""The autoencoder topic's figures: 2-D codes and denoised images."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from ._common import (
    checked,
    class_labels,
    image_shape_rule,
    integer,
    mapping,
    matrix,
    optional,
    points,
    pyplot,
    resolve_image_shape,
    same_length,
    scatter_classes,
    text,
)


@checked(panels=mapping(matrix(cols=2)), labels=class_labels, title=optional(text))
def plot_codes_2d(panels: dict, labels, title: str | None = None) -> Figure:
    r"""Two-dimensional codes (PCA scores, an autoencoder's latent codes), one scatter per
    panel, each point coloured by its class.

    Parameters
    ----------
    panels : dict of str to array_like, shape (N, 2)
        Panel title to codes of the same N points.
    labels : array_like, shape (N,)
        Integer classes (e.g. the digit shown).
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    y = np.asarray(labels).ravel()
    for name, codes in panels.items():
        same_length(**{f"panels[{name!r}]": codes, "labels": y})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (name, codes) in zip(axes[0], panels.items(), strict=True):
        scatter_classes(ax, np.asarray(codes, dtype=float), y)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
    axes[0][-1].legend(
        loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2, title="class"
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@checked(rows=mapping(points()), n=integer(1), image_shape=image_shape_rule)
def plot_denoising(rows: dict, n: int = 8, image_shape: tuple[int, int] | None = None) -> Figure:
    r"""Images in rows: e.g. clean digits, their corrupted copies, and the reconstructions
    of the corrupted copies by a plain and by a denoising autoencoder.

    Parameters
    ----------
    rows : dict of str to array_like, shape (K, D)
        Row label to images (the same K images in every row, first ``n`` shown).
    n : int
        Images per row.
    image_shape : (int, int), optional
        Square by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import numpy as np

    plt = pyplot()
    arrays = {k: np.atleast_2d(np.asarray(v, dtype=float)) for k, v in rows.items()}
    first = next(iter(arrays.values()))
    for k, v in arrays.items():
        if v.shape[1] != first.shape[1] or v.shape[0] < min(n, first.shape[0]):
            raise ValueError(
                f"rows[{k!r}] must hold images of {first.shape[1]} pixels, at least "
                f"{min(n, first.shape[0])} of them, like the first row; got shape {v.shape}"
            )
    shape = resolve_image_shape(first.shape[1], image_shape)
    n = min(n, first.shape[0])
    fig, axes = plt.subplots(
        len(arrays), n, figsize=(1.1 * n + 1.6, 1.15 * len(arrays)), squeeze=False
    )
    # One grey scale for every panel, that of the first row, so that the rows compare.
    scale = {"cmap": "gray_r", "vmin": float(first.min()), "vmax": float(first.max())}
    for r, (name, imgs) in enumerate(arrays.items()):
        for c in range(n):
            axes[r][c].imshow(imgs[c].reshape(shape), **scale)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        axes[r][0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    return fig
