"""Reads `alibi bias --out FILE.safetensors` back with Python's safetensors and numpy.

Run by scripts/python-interop (which installs both): `python check_safetensors.py ALIBI`,
ALIBI being the built `alibi` binary. Each file is loaded with
`safetensors.numpy.load_file`, as a PyTorch or numpy user would, and compared bit for bit
with ALiBi written here in numpy from docs/semantics.md alone: slopes in float64 rounded once to
float32, `bias = float32(-|k - (j - i + r)|) * slope`, zero padding heads.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def paper_slopes(heads):
    """The paper's slopes: 2^(-8(h+1)/c) for the largest power of two c <= heads, then
    every other slope of 2c; float64, rounded once to float32."""
    def power_of_two(n):
        start = 2.0 ** (-(2.0 ** -(np.log2(n) - 3)))
        return [start * start**h for h in range(n)]

    closest = 2 ** int(np.floor(np.log2(heads)))
    slopes = power_of_two(closest)
    if closest < heads:
        slopes += power_of_two(2 * closest)[0::2][: heads - closest]
    return np.array(slopes, dtype=np.float64).astype(np.float32)


def alibi(slopes, total_heads, i, j):
    """[total_heads, i, j] float32, queries aligned to the end of the keys."""
    q = np.arange(j - i, j)[:, None]
    k = np.arange(j)[None, :]
    distance = (-np.abs(k - q)).astype(np.float32)
    bias = np.zeros((total_heads, i, j), dtype=np.float32)
    bias[: len(slopes)] = distance[None] * slopes[:, None, None]
    return bias


def same_bits(a, b):
    """Equal shapes, dtypes and bits: +0.0 and -0.0 differ here, as they must."""
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(
        a.view(np.uint32), b.view(np.uint32)
    )


def check(alibi_bin, out_dir, heads, total_heads, shapes, extra=()):
    path = Path(out_dir) / f"h{heads}-t{total_heads}.safetensors"
    args = [alibi_bin, "bias", "--heads", str(heads), "--total-heads", str(total_heads)]
    args += [*extra, *shapes, "--out", str(path)]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)

    tensors = load_file(str(path))
    with safe_open(str(path), "np") as f:
        metadata = f.metadata()
    assert metadata["heads"] == str(heads), metadata
    assert metadata["total_heads"] == str(total_heads), metadata
    assert metadata["alibi_wgpu_version"], metadata
    slopes = np.array(json.loads(metadata["slopes"]), dtype=np.float32)
    if not extra:
        assert same_bits(slopes, paper_slopes(heads)), (slopes, paper_slopes(heads))

    names = [f"call-{n}-{shape}" for n, shape in enumerate(shapes)]
    assert sorted(tensors) == sorted(names), (sorted(tensors), names)
    for name, shape in zip(names, shapes):
        i, j = (int(n) for n in shape.split("x"))
        expected = alibi(slopes, total_heads, i, j)
        assert same_bits(tensors[name], expected), f"{path.name} {name} differs"
    return len(names)


def main():
    alibi_bin = sys.argv[1]
    checked = 0
    with tempfile.TemporaryDirectory() as out_dir:
        checked += check(alibi_bin, out_dir, 4, 8, ["3x5", "1x5", "10x10", "0x4"])
        checked += check(alibi_bin, out_dir, 12, 16, ["33x70", "1x4096", "5x3"])
        for heads in [1, 2, 3, 5, 7, 24, 64]:
            checked += check(alibi_bin, out_dir, heads, heads, ["2x3"])
        checked += check(alibi_bin, out_dir, 6, 6, ["4x9"], extra=["--max-bias", "4"])
    print(f"safetensors interop: {checked} passed, 0 failed")


if __name__ == "__main__":
    main()
