"""iamtrask's plain loop over W49's 49 networks, as a user would run it: one script, one process.

    python benchmarks/loop_w49.py EPOCHS

The end-to-end benchmark times this script from process start to exit, the baseline every
`nnsweep run` of W49 is compared with. The loop is tests/textbook_loops.py's, unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ALPHAS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
WIDTHS = (4, 8, 16, 32, 64, 128, 256)


def main(epochs: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from textbook_loops import iamtrasks_loop

    x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
    y = np.array([[0], [1], [1], [0]], dtype=np.float64)
    for alpha in ALPHAS:
        for hidden in WIDTHS:
            run = iamtrasks_loop(x, y, alpha, hidden, epochs)
            print(f"alpha {alpha:g} hidden {hidden}: mae {run.printed[-1]:.6f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
