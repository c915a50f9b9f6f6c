"""Bad input gets a clear ValueError/TypeError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest

import tensornet as tn
from tensornet import _validation as V


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (np.array(3.0), ValueError, "x must have at least 1 dimension"),
        (np.ones((2, 0, 3)), ValueError, "x must not have empty dimensions"),
        (np.array([1.0, np.nan]), ValueError, "x must contain only finite values"),
        (np.array([1.0, np.inf]), ValueError, "x must contain only finite values"),
        (np.array(["a", "b"]), TypeError, "x must have a numeric dtype"),
        ("abc", TypeError, "x must be a numeric array"),
        (None, TypeError, "x must be a numeric array"),
        ([[1.0, 2.0], [3.0]], TypeError, "x must be a numeric array"),
        (np.array([object(), object()]), TypeError, "x must have a numeric dtype"),
    ],
)
def test_tt_svd_rejects_bad_tensors(x: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        tn.tt_svd(x)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"rtol": -0.1}, ValueError, "rtol must be a finite real number >= 0, got -0.1"),
        ({"rtol": float("nan")}, ValueError, "rtol must be a finite real number"),
        ({"rtol": "0.1"}, TypeError, "rtol must be a real number"),
        ({"rtol": True}, TypeError, "rtol must be a real number"),
        ({"max_rank": 0}, ValueError, "max_rank must be >= 1, got 0"),
        ({"max_rank": 2.5}, TypeError, "max_rank must be an integer"),
        ({"max_rank": [2, 2, 2]}, ValueError, "sequence of 2 ints"),
        ({"max_rank": [2, 0]}, ValueError, r"max_rank\[1\] must be >= 1"),
        ({"method": "fast"}, ValueError, "method must be one of 'auto', 'exact', 'randomized'"),
        ({"rng": "seed"}, TypeError, "rng must be a numpy Generator"),
    ],
)
def test_tt_svd_rejects_bad_options(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        tn.tt_svd(np.ones((2, 3, 4)), **kwargs)  # type: ignore[arg-type]


def test_integer_and_bool_input_is_promoted_not_dropped() -> None:
    x = np.arange(24).reshape(2, 3, 4)
    t = tn.tt_svd(x)
    assert t.dtype == np.float64
    np.testing.assert_allclose(t.to_dense(), x, atol=1e-12)
    assert tn.tt_svd(np.ones((2, 2), dtype=bool)).dtype == np.float64


def test_lists_are_accepted() -> None:
    t = tn.tt_svd([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(t.to_dense(), [[1.0, 2.0], [3.0, 4.0]])


def test_check_mode_and_index() -> None:
    assert V.check_mode(-1, 3) == 2
    with pytest.raises(ValueError, match=r"mode must be in \[-3, 3\)"):
        V.check_mode(3, 3)
    with pytest.raises(IndexError, match="out of bounds"):
        V.check_index(5, 5, "index")
    with pytest.raises(TypeError, match="shape must be a sequence"):
        V.check_shape("abc")
    with pytest.raises(ValueError, match=r"shape\[1\] must be >= 1"):
        V.check_shape((2, 0))


def test_mixed_array_libraries_rejected() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="cores must all come from one array library"):
        tn.TTTensor([np.ones((1, 2, 1)), torch.ones((1, 2, 1), dtype=torch.float64)])


def test_mismatched_cores_rejected() -> None:
    with pytest.raises(
        ValueError, match=r"cores\[1\] has left rank 3 but cores\[0\] has right rank 2"
    ):
        tn.TTTensor([np.ones((1, 2, 2)), np.ones((3, 2, 1))])
    with pytest.raises(ValueError, match="boundary ranks 1"):
        tn.TTTensor([np.ones((2, 2, 1))])
    with pytest.raises(ValueError, match=r"cores\[0\] must have 3 dimensions"):
        tn.TTTensor([np.ones((2, 2))])
    with pytest.raises(TypeError, match="cores must be a sequence of arrays"):
        tn.TTTensor(np.ones((1, 2, 1)))
    with pytest.raises(ValueError, match="at least one core"):
        tn.TTTensor([])
    with pytest.raises(TypeError, match=r"cores\[0\] must have a floating dtype"):
        tn.TTTensor([np.ones((1, 2, 1), dtype=int)])
    with pytest.raises(TypeError, match="share one dtype"):
        tn.TTTensor([np.ones((1, 2, 1)), np.ones((1, 2, 1), dtype=np.float32)])
