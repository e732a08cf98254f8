"""W49 in JAX, as a JAX user would write it: one script, jit of vmap over a lax.scan, float64.

    python benchmarks/jax_w49.py EPOCHS

One compiled call per hidden width, its 7 learning rates as the vmapped axis; the starting
weights are iamtrask's (RandomState(1)). The end-to-end benchmark times this script from
process start to exit, compilation included, as it times `nnsweep run`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
WIDTHS = (4, 8, 16, 32, 64, 128, 256)
RECORD_EVERY = 100


def main(epochs: int) -> None:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    x = jnp.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=jnp.float64)
    y = jnp.array([[0], [1], [1], [0]], dtype=jnp.float64)

    def train(w0: Any, w1: Any, alpha: Any) -> Any:
        def step(carry: Any, _: Any) -> Any:
            w0, w1 = carry
            l1 = jax.nn.sigmoid(x @ w0)  # (rows, hidden)
            l2 = jax.nn.sigmoid(l1 @ w1)  # (rows, 1)
            err = l2 - y
            d2 = err * l2 * (1 - l2)
            d1 = (d2 @ w1.T) * l1 * (1 - l1)
            return (w0 - alpha * (x.T @ d1), w1 - alpha * (l1.T @ d2)), jnp.abs(err).mean()

        (w0, w1), maes = jax.lax.scan(step, (w0, w1), None, length=epochs)
        return w0, w1, maes[::RECORD_EVERY]

    compiled = jax.jit(jax.vmap(train))
    alphas = jnp.array(ALPHAS)
    for hidden in WIDTHS:
        starts = []
        for _ in ALPHAS:
            rng = np.random.RandomState(1)
            starts.append((2 * rng.random_sample((3, hidden)) - 1,
                           2 * rng.random_sample((hidden, 1)) - 1))
        w0s = jnp.asarray(np.stack([w0 for w0, _ in starts]))  # (alphas, 3, hidden)
        w1s = jnp.asarray(np.stack([w1 for _, w1 in starts]))  # (alphas, hidden, 1)
        _, _, maes = jax.block_until_ready(compiled(w0s, w1s, alphas))
        print(f"hidden {hidden}: mae " + " ".join(f"{m:.6f}" for m in np.asarray(maes)[:, -1]))


if __name__ == "__main__":
    main(int(sys.argv[1]))
