"""Out-of-core decompositions of dask arrays (tensornet._chunked): bounds, paths, memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensornet as tn
from tensornet import _chunked

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.fixture(autouse=True)
def _tiny_chunk_budget() -> Iterator[None]:
    """Keep every projection lazy: the out-of-core code runs all the way on small arrays."""
    with dask.config.set({"array.chunk-size": "1KiB", "scheduler": "threads"}):
        yield


def low_rank(shape: tuple[int, ...], rank: int, seed: int, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.asarray(tn.random_tt(shape, rank, rng=rng).to_dense())
    return x + noise * np.linalg.norm(x) / np.sqrt(x.size) * rng.standard_normal(shape)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def trailing_chunks(shape: tuple[int, ...], seed: int) -> tuple[int, ...]:
    rng = np.random.default_rng(seed)
    return (shape[0], *(int(rng.integers(1, n + 1)) for n in shape[1:]))


@given(
    shape=st.lists(st.integers(2, 6), min_size=2, max_size=5).map(tuple),
    rank=st.integers(1, 3),
    rtol=st.sampled_from([0.5, 1e-1, 1e-3, 1e-8]),
    seed=st.integers(0, 2**16),
)
def test_tt_svd_of_a_dask_array_honours_rtol(
    shape: tuple[int, ...], rank: int, rtol: float, seed: int
) -> None:
    x = low_rank(shape, rank, seed, noise=1e-2)
    t = tn.tt_svd(da.from_array(x, chunks=trailing_chunks(shape, seed)), rtol=rtol)
    assert all(isinstance(c, np.ndarray) for c in t.cores)
    assert rel(np.asarray(t.to_dense()), x) <= rtol * (1 + 1e-9)
    for k in range(1, len(shape)):  # ranks never exceed the unfolding's
        assert t.ranks[k] <= min(np.prod(shape[:k]), np.prod(shape[k:]))


@given(
    shape=st.lists(st.integers(2, 5), min_size=2, max_size=4).map(tuple),
    seed=st.integers(0, 2**16),
)
def test_tt_svd_of_a_dask_array_recovers_full_rank_exactly(
    shape: tuple[int, ...], seed: int
) -> None:
    x = np.random.default_rng(seed).standard_normal(shape)
    t = tn.tt_svd(da.from_array(x, chunks=trailing_chunks(shape, seed)))
    assert rel(np.asarray(t.to_dense()), x) <= 1e-12
    assert t.ranks == tn.tt_svd(x).ranks


@pytest.mark.parametrize("rtol", [1e-2, 1e-6, None])
def test_tt_svd_of_a_dask_array_matches_the_in_memory_ranks(rtol: float | None) -> None:
    x = low_rank((6, 7, 8, 9), 3, 0, noise=1e-7)
    chunked = tn.tt_svd(da.from_array(x, chunks=(6, 3, 4, 5)), rtol=rtol)
    memory = tn.tt_svd(x, rtol=rtol)
    assert chunked.ranks == memory.ranks
    error, reference = rel(np.asarray(chunked.to_dense()), x), rel(np.asarray(memory.to_dense()), x)
    if rtol is None:
        assert error <= 1e-13 and reference <= 1e-13
    else:
        np.testing.assert_allclose(error, reference, rtol=0.05)


def test_small_targets_take_the_tsqr_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    original = _chunked.tsqr_r

    def counting(x: Any, row_axes: Any) -> np.ndarray:
        calls.append(tuple(row_axes))
        return original(x, row_axes)

    monkeypatch.setattr(_chunked, "tsqr_r", counting)
    x = low_rank((5, 6, 7, 8), 2, 1, noise=1e-9)
    dx = da.from_array(x, chunks=(5, 2, 7, 3))
    coarse = tn.tt_svd(dx, rtol=1e-2)  # resolved by the Gram matrix
    assert calls == [] and coarse.ranks == (1, 2, 2, 2, 1)
    # 1e-9 is below what a Gram matrix resolves (about sqrt(m eps) = 1e-7): exact pass
    fine = tn.tt_svd(dx, rtol=1e-9)
    assert calls, "the Gram path cannot certify a 1e-9 tail"
    assert rel(np.asarray(fine.to_dense()), x) <= 1e-9
    assert fine.ranks == tn.tt_svd(x, rtol=1e-9).ranks


def test_float32_complex_and_integer_dask_arrays() -> None:
    x = low_rank((4, 5, 6), 2, 2)
    single = tn.tt_svd(da.from_array(x.astype(np.float32), chunks=(4, 5, 2)), rtol=1e-4)
    assert single.cores[0].dtype == np.float32
    assert rel(np.asarray(single.to_dense(), np.float64), x) <= 1e-4
    z = x + 1j * low_rank((4, 5, 6), 2, 3)
    cplx = tn.tt_svd(da.from_array(z, chunks=(4, 2, 3)), rtol=1e-8)
    assert cplx.cores[0].dtype == np.complex128
    assert rel(np.asarray(cplx.to_dense()), z) <= 1e-8
    ints = np.arange(60).reshape(3, 4, 5)
    t = tn.tt_svd(da.from_array(ints, chunks=(3, 4, 2)), rtol=1e-10)
    assert t.cores[0].dtype == np.float64 and rel(np.asarray(t.to_dense()), ints) <= 1e-10


def test_zero_and_vector_dask_arrays() -> None:
    zero = tn.tt_svd(da.zeros((3, 4, 5), chunks=(3, 2, 2)), rtol=1e-3)
    assert zero.ranks == (1, 1, 1, 1) and not np.any(np.asarray(zero.to_dense()))
    v = np.arange(1.0, 6.0)
    np.testing.assert_array_equal(np.asarray(tn.tt_svd(da.from_array(v)).to_dense()), v)


def test_bad_dask_input_raises_clear_errors() -> None:
    x = low_rank((4, 5, 6), 2, 4)
    with pytest.raises(ValueError, match=r"chunked along mode 0.*rechunk\(\{0: -1\}\)"):
        tn.tt_svd(da.from_array(x, chunks=(2, 5, 6)), rtol=1e-3)
    bad = x.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        tn.tt_svd(da.from_array(bad, chunks=(4, 5, 3)), rtol=1e-3)
    with pytest.raises(ValueError, match="finite"):
        tn.hosvd(da.from_array(bad, chunks=(4, 5, 3)), rtol=1e-3)
    with pytest.raises(TypeError, match="numeric dtype"):
        tn.tt_svd(da.from_array(np.array([["a", "b"]]), chunks=1))
    with pytest.raises(ValueError, match="rtol"):
        tn.tt_svd(da.from_array(x, chunks=(4, 5, 3)), rtol=-1.0)
    with pytest.raises(ValueError, match="empty"):
        tn.tt_svd(da.zeros((3, 0, 2)))
    unknown = da.from_array(x, chunks=(4, 5, 3))
    unknown = unknown[:, :, unknown[0, 0, :] > -np.inf]  # boolean index: unknown sizes
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        tn.tt_svd(unknown, rtol=1e-3)


@pytest.mark.parametrize("decompose", [tn.hosvd, tn.st_hosvd])
@pytest.mark.parametrize("rtol", [1e-1, 1e-4, 1e-10, None])
def test_tucker_of_a_dask_array_honours_rtol(decompose: Any, rtol: float | None) -> None:
    rng = np.random.default_rng(5)
    core = rng.standard_normal((2, 3, 2, 3))
    factors = [rng.standard_normal((n, r)) for n, r in ((6, 2), (7, 3), (5, 2), (8, 3))]
    x = np.einsum("abcd,ia,jb,kc,ld->ijkl", core, *factors)
    x = x + 1e-3 * np.linalg.norm(x) / np.sqrt(x.size) * rng.standard_normal(x.shape)
    # Tucker reads every mode's unfolding: mode 0 may be chunked too
    t = decompose(da.from_array(x, chunks=(3, 7, 2, 3)), rtol=rtol)
    memory = decompose(x, rtol=rtol)
    assert t.ranks == memory.ranks
    assert rel(np.asarray(t.to_dense()), x) <= (1e-12 if rtol is None else rtol * (1 + 1e-9))
    capped = decompose(da.from_array(x, chunks=(6, 7, 5, 4)), ranks=(2, 2, 5, 8), modes=(0, 1))
    assert capped.ranks == (2, 2, 5, 8)
    assert capped.factors[2] is None and capped.factors[0].shape == (6, 2)


@pytest.mark.parametrize("start", [0, 2])
@pytest.mark.parametrize("rtol", [1e-2, 1e-5, 1e-10, None])
def test_tr_svd_of_a_dask_array_matches_the_in_memory_sweep(start: int, rtol: float | None) -> None:
    rng = np.random.default_rng(8)
    x = np.asarray(tn.random_tr((6, 7, 8, 9), (2, 3, 2, 3), rng=rng).to_dense())
    x = x + 1e-4 * np.linalg.norm(x) / np.sqrt(x.size) * rng.standard_normal(x.shape)
    chunks = tuple(n if k == start else 3 for k, n in enumerate(x.shape))
    t = tn.tr_svd(da.from_array(x, chunks=chunks), rtol=rtol, start=start)
    assert all(isinstance(c, np.ndarray) for c in t.cores)
    assert rel(np.asarray(t.to_dense()), x) <= (1e-12 if rtol is None else rtol * (1 + 1e-9))
    # with r0 = 1 (a TT from `start`) the ranks do not depend on the signs of the singular
    # vectors, so they are the in-memory ones; a split r0 > 1 pairs entries of U, and the
    # Gram path's eigenvector signs may then give other (equally valid) ranks
    tt_like = tn.tr_svd(da.from_array(x, chunks=chunks), rtol=rtol, start=start, r0=1)
    assert tt_like.ranks == tn.tr_svd(x, rtol=rtol, start=start, r0=1).ranks
    assert tt_like.ranks[start] == 1


def test_tr_svd_of_a_dask_array_needs_its_start_mode_whole() -> None:
    x = da.from_array(np.ones((4, 6, 8)), chunks=(4, 3, 8))
    with pytest.raises(ValueError, match=r"chunked along mode 1.*rechunk\(\{1: -1\}\)"):
        tn.tr_svd(x, rtol=1e-3, start=1)
    assert tn.tr_svd(x, rtol=1e-3).ranks == (1, 1, 1, 1)  # start 0 is whole
    with pytest.raises(ValueError, match="r0"):
        tn.tr_svd(x, rtol=1e-3, r0=2)


@pytest.mark.parametrize("heuristic", [False, True])
@pytest.mark.parametrize("rtol", [1e-2, 1e-9])
def test_tr_search_of_a_dask_array_finds_the_in_memory_optimum(
    heuristic: bool, rtol: float
) -> None:
    from tensornet.decompose.tr_search import tr_search_candidates

    rng = np.random.default_rng(9)
    x = np.asarray(tn.random_tr((6, 7, 8, 9), (2, 3, 2, 3), rng=rng).to_dense())
    x = x + 1e-5 * np.linalg.norm(x) / np.sqrt(x.size) * rng.standard_normal(x.shape)
    lazy = da.from_array(x, chunks=(3, 7, 4, 3))  # every mode may be chunked here
    best = tn.tr_search(lazy, rtol=rtol, heuristic=heuristic)
    assert rel(np.asarray(best.to_dense()), x) <= rtol * (1 + 1e-9)
    found = tr_search_candidates(lazy, rtol=rtol, heuristic=heuristic)
    reference = tr_search_candidates(x, rtol=rtol, heuristic=heuristic)
    assert found[0].num_params == best.num_params == min(c.num_params for c in found)
    assert all(c.error <= rtol * (1 + 1e-9) for c in found)
    # the same (start, r0) pairs are tried; the r0 = 1 sweeps (TTs) do not depend on
    # singular-vector signs and match the in-memory ones exactly
    assert sorted((c.start, c.r0) for c in found) == sorted((c.start, c.r0) for c in reference)
    tts = {(c.start, c.ranks) for c in found if c.r0 == 1}
    assert tts == {(c.start, c.ranks) for c in reference if c.r0 == 1}
    assert best.num_params <= min(c.num_params for c in found if c.r0 == 1)


def lazy_cores(t: Any, step: int = 7) -> Any:
    return tn.TTTensor(
        [da.from_array(np.asarray(c), chunks=(c.shape[0], step, c.shape[2])) for c in t.cores]
    )


@pytest.mark.parametrize("rtol", [1e-1, 1e-6, None])
def test_tt_round_of_a_tt_with_dask_cores(rtol: float | None) -> None:
    rng = np.random.default_rng(10)
    t = tn.random_tt((30, 40, 50, 20), 3, rng=rng)
    u = tn.random_tt((30, 40, 50, 20), 2, rng=rng)
    s = t + u * 1e-3 + t  # ranks 8, true ranks 5
    rounded = tn.tt_round(lazy_cores(s), rtol=rtol)
    memory = tn.tt_round(s, rtol=rtol)
    assert all(_chunked.is_chunked(c) for c in rounded.cores)  # cores stay out of core
    assert rounded.ranks == memory.ranks
    dense = np.asarray(s.to_dense())
    got = np.asarray(tn.TTTensor([c.compute() for c in rounded.cores]).to_dense())
    assert rel(got, dense) <= (1e-12 if rtol is None else rtol * (1 + 1e-9))
    capped = tn.tt_round(lazy_cores(s), max_rank=2)
    assert capped.ranks == (1, 2, 2, 2, 1)
    zero = tn.tt_round(lazy_cores(t - t), rtol=1e-3)
    assert zero.ranks == (1, 1, 1, 1, 1)


def test_open_npy_reads_blocks_of_a_file(tmp_path: Path) -> None:
    x = low_rank((4, 6, 8), 2, 6)
    path = tmp_path / "x.npy"
    np.save(path, x)
    lazy = tn.open_npy(path, chunks=(4, 3, 4))
    assert lazy.chunks == ((4,), (3, 3), (4, 4))
    np.testing.assert_array_equal(lazy.compute(), x)
    assert tn.open_npy(path).chunks[0] == (4,)  # mode 0 whole by default
    t = tn.tt_svd(lazy, rtol=1e-8)
    assert rel(np.asarray(t.to_dense()), x) <= 1e-8
    with pytest.raises(TypeError, match="path"):
        tn.open_npy(3)  # type: ignore[arg-type]
    (tmp_path / "not.npy").write_bytes(b"hello")
    with pytest.raises(ValueError, match=r"\.npy file"):
        tn.open_npy(tmp_path / "not.npy")
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    with pytest.raises(ValueError, match="Fortran"):
        tn.open_npy(tmp_path / "f.npy")


@given(data=st.data())
def test_open_npy_blocks_equal_numpy_slices(data: st.DataObject, tmp_path_factory: Any) -> None:
    shape = tuple(data.draw(st.lists(st.integers(1, 5), min_size=1, max_size=4)))
    x = (
        np.random.default_rng(0)
        .standard_normal(shape)
        .astype(data.draw(st.sampled_from([np.float64, np.float32, np.complex128])))
    )
    path = tmp_path_factory.mktemp("npy") / "x.npy"
    np.save(path, x)
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    np.testing.assert_array_equal(tn.open_npy(path, chunks=chunks).compute(), x)
    lazy = tn.open_npy(path, chunks=chunks)
    index = tuple(
        slice(data.draw(st.integers(0, n - 1)), None, data.draw(st.integers(1, 2))) for n in shape
    )
    np.testing.assert_array_equal(lazy[index].compute(), x[index])


# The out-of-core claim, measured: a file several times larger than the memory the
# decomposition may use. Run in a fresh process so that its peak RSS is its own.
_OUT_OF_CORE = textwrap.dedent(
    """
    import itertools, json, sys, time
    import numpy as np, dask
    import tensornet as tn

    path, rtol = sys.argv[1], float(sys.argv[2])
    dask.config.set({"array.chunk-size": "4MiB", "scheduler": "threads", "num_workers": 2})
    x = tn.open_npy(path, chunks=(16, 16, 1, 4, 16, 32))  # 4 MB blocks
    def peak_rss():  # VmHWM: this process image's own peak (ru_maxrss survives exec)
        with open("/proc/self/status") as status:
            line = next(l for l in status if l.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    before = peak_rss()
    start = time.perf_counter()
    t = tn.tt_svd(x, rtol=rtol)
    seconds = time.perf_counter() - start
    peak = peak_rss()

    def block_error(block, where):  # |x - t|^2 and |x|^2 of one block
        approx = np.asarray(t[where].to_dense())
        return float(np.sum((block - approx) ** 2)), float(np.sum(block**2))

    starts = [np.cumsum((0, *c)) for c in x.chunks]
    tasks = [
        dask.delayed(block_error)(
            x.blocks[key], tuple(slice(starts[a][i], starts[a][i + 1]) for a, i in enumerate(key))
        )
        for key in itertools.product(*(range(len(c)) for c in x.chunks))
    ]
    sums = np.array(dask.compute(*tasks)).sum(axis=0)
    err_sq, norm_sq = float(sums[0]), float(sums[1])
    rng = np.random.default_rng(0)
    idx = [tuple(int(rng.integers(0, n)) for n in x.shape) for _ in range(2000)]
    exact = np.asarray(x.vindex[tuple(np.array(idx).T)].compute())
    approx = np.array([float(t[i]) for i in idx])
    print(json.dumps({
        "before": before, "peak": peak, "seconds": seconds, "ranks": list(t.ranks),
        "rel_error": float(np.sqrt(err_sq / norm_sq)),
        "sampled_rel_error": float(np.linalg.norm(exact - approx) / np.linalg.norm(exact)),
    }))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_file_larger_than_the_memory_allowed_is_decomposed_out_of_core(tmp_path: Path) -> None:
    shape = (16, 16, 16, 16, 16, 32)  # 33.5 M float64 entries: 268 MB on disk
    path = tmp_path / "big.npy"
    rng = np.random.default_rng(7)
    t = tn.random_tt(shape, 3, rng=rng)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=shape)
    for i in range(shape[0]):  # written slab by slab: the test never holds the tensor
        cores = [np.asarray(t.cores[0])[:, i : i + 1, :], *map(np.asarray, t.cores[1:])]
        slab = np.asarray(tn.TTTensor(cores).to_dense())[0]
        out[i] = slab + 1e-3 * rng.standard_normal(slab.shape) * np.sqrt(np.mean(slab**2))
    out.flush()
    del out
    file_bytes = os.path.getsize(path)
    run = subprocess.run(
        [sys.executable, "-c", _OUT_OF_CORE, str(path), "1e-2"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    print(got)
    grown = got["peak"] - got["before"]
    assert got["rel_error"] <= 1e-2  # over all entries, summed block by block
    assert got["sampled_rel_error"] <= 2e-2  # 2,000 entries: an estimate of the same
    assert got["ranks"] == [1, 3, 3, 3, 3, 3, 1]
    # the decomposition may use a quarter of the file's size at most
    assert grown < file_bytes / 4, (grown, file_bytes)
