"""Tests of tensornet.io: exact round trips and refusal of malformed files."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensornet import TTTensor
from tensornet.formats.tt_matrix import TTMatrix
from tensornet.io import (
    _REGISTRY,
    FILE_FORMAT_VERSION,
    load,
    register_format,
    registered_formats,
    save,
)
from tensornet.random import random_tt, random_tt_matrix

DTYPES = ["float32", "float64", "complex128"]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _header(type_name: str = "TTTensor", version: Any = FILE_FORMAT_VERSION) -> dict[str, Any]:
    return {
        "__tensornet__": np.asarray("tensornet"),
        "__version__": np.asarray(version),
        "__type__": np.asarray(type_name),
    }


def _tt_entries(t: TTTensor) -> dict[str, Any]:
    entries: dict[str, Any] = {
        "cores__kind": np.asarray("tuple"),
        "cores__len": np.asarray(len(t.cores)),
    }
    for i, core in enumerate(t.cores):
        entries[f"cores__{i}"] = core
        entries[f"cores__{i}__kind"] = np.asarray("array")
    return entries


@pytest.fixture
def tt() -> TTTensor:
    return random_tt((2, 3, 4), (1, 2, 3, 1), rng=0)


# -- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip_is_bitwise_exact_numpy(tmp_path: Path, dtype: str) -> None:
    t = random_tt((3, 4, 2, 5), 3, rng=1, dtype=dtype)
    back = load(save(tmp_path / "t.npz", t))
    assert type(back) is TTTensor
    assert back.shape == t.shape and back.ranks == t.ranks
    assert all(isinstance(c, np.ndarray) for c in back.cores)
    assert all(_same_bits(a, b) for a, b in zip(back.cores, t.cores, strict=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip_is_bitwise_exact_torch(tmp_path: Path, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    ref = random_tt((3, 4, 2, 5), 3, rng=2, dtype=dtype)
    t = TTTensor(tuple(torch.from_numpy(c.copy()).requires_grad_(True) for c in ref.cores))
    back = load(save(tmp_path / "t.npz", t))
    assert all(isinstance(c, np.ndarray) for c in back.cores)  # load is NumPy-backed
    assert all(_same_bits(a, b) for a, b in zip(back.cores, ref.cores, strict=True))


def test_load_like_torch_keeps_dtype_and_values(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    t = random_tt((2, 3, 4), 2, rng=3, dtype="float32")
    back = load(save(tmp_path / "t", t), like=torch.zeros(1, dtype=torch.float64))
    assert all(isinstance(c, torch.Tensor) for c in back.cores)
    assert back.cores[0].dtype == torch.float32  # stored dtype kept, only library/device follow
    assert all(_same_bits(a.numpy(), b) for a, b in zip(back.cores, t.cores, strict=True))


@pytest.mark.cuda
def test_save_from_cuda_and_load_like_cuda_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    ref = random_tt((3, 4, 5), 3, rng=8, dtype="complex128")
    t = TTTensor(tuple(torch.from_numpy(c.copy()).to("cuda") for c in ref.cores))
    path = save(tmp_path / "t", t)
    assert all(_same_bits(a, b) for a, b in zip(load(path).cores, ref.cores, strict=True))
    back = load(path, like=torch.zeros(1, device="cuda"))
    assert all(c.device.type == "cuda" and c.dtype == torch.complex128 for c in back.cores)
    assert all(_same_bits(a.cpu().numpy(), b) for a, b in zip(back.cores, ref.cores, strict=True))


def test_save_of_torch_conjugate_view_stores_resolved_values(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    ref = random_tt((2, 3), 2, rng=4, dtype="complex128")
    cores = tuple(torch.conj(torch.from_numpy(c.copy())) for c in ref.cores)  # lazy conj views
    back = load(save(tmp_path / "t", TTTensor(cores)))
    assert all(_same_bits(a, np.conj(b)) for a, b in zip(back.cores, ref.cores, strict=True))


def test_round_trip_of_order_one_tensor(tmp_path: Path) -> None:
    t = random_tt((7,), 3, rng=5)
    back = load(save(tmp_path / "t", t))
    assert back.ranks == (1, 1) and _same_bits(back.cores[0], t.cores[0])


def test_round_trip_of_tt_matrix(tmp_path: Path) -> None:
    a = random_tt_matrix((2, 3), (4, 5), 3, rng=6, dtype="complex128")
    back = load(save(tmp_path / "a", a))
    assert type(back) is TTMatrix
    assert back.row_shape == a.row_shape and back.col_shape == a.col_shape
    assert all(_same_bits(x, y) for x, y in zip(back.cores, a.cores, strict=True))


def test_file_has_the_documented_header(tmp_path: Path, tt: TTTensor) -> None:
    path = save(tmp_path / "t.npz", tt)
    with np.load(path, allow_pickle=False) as data:
        assert str(data["__tensornet__"]) == "tensornet"
        assert data["__version__"].dtype.kind == "i" and int(data["__version__"]) == 1
        assert str(data["__type__"]) == "TTTensor"
        assert int(data["cores__len"]) == 3
        assert _same_bits(data["cores__1"], tt.cores[1])


def test_builtin_formats_are_registered() -> None:
    formats = registered_formats()
    assert formats["TTTensor"] is TTTensor and formats["TTMatrix"] is TTMatrix


# -- paths ----------------------------------------------------------------------------------------
def test_save_appends_npz_suffix_and_load_accepts_both(tmp_path: Path, tt: TTTensor) -> None:
    written = save(tmp_path / "train", tt)
    assert written == tmp_path / "train.npz" and written.is_file()
    assert not (tmp_path / "train").exists()
    for name in ("train", "train.npz"):
        assert load(tmp_path / name).ranks == tt.ranks
        assert load(str(tmp_path / name)).ranks == tt.ranks


def test_save_writes_exactly_a_path_ending_in_npz(tmp_path: Path, tt: TTTensor) -> None:
    written = save(str(tmp_path / "exact.npz"), tt)
    assert written == tmp_path / "exact.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exact.npz"]


def test_save_overwrites_an_existing_file(tmp_path: Path, tt: TTTensor) -> None:
    save(tmp_path / "t", tt)
    other = random_tt((5, 5), 2, rng=9)
    save(tmp_path / "t", other)
    assert load(tmp_path / "t").shape == (5, 5)


def test_load_of_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        load(tmp_path / "nope")


@pytest.mark.parametrize("bad", [None, 3, b"bytes.npz"])
def test_bad_path_types_are_refused(bad: Any, tt: TTTensor) -> None:
    with pytest.raises(TypeError, match="path"):
        save(bad, tt)
    with pytest.raises(TypeError, match="path"):
        load(bad)


# -- refusals on save -----------------------------------------------------------------------------
def test_save_refuses_objects_that_are_not_registered_formats(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="registered format"):
        save(tmp_path / "x", np.ones(3))

    @dataclasses.dataclass(frozen=True)
    class Unregistered:
        value: int

    with pytest.raises(TypeError, match="registered format"):
        save(tmp_path / "x", Unregistered(1))
    assert not list(tmp_path.iterdir())


def test_load_like_must_be_an_array(tmp_path: Path, tt: TTTensor) -> None:
    path = save(tmp_path / "t", tt)
    with pytest.raises(TypeError, match="like"):
        load(path, like="numpy")


# -- refusals on load -----------------------------------------------------------------------------
def test_file_without_header_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    np.savez(tmp_path / "f.npz", **_tt_entries(tt))
    with pytest.raises(ValueError, match="'__tensornet__' is missing"):
        load(tmp_path / "f.npz")


def test_file_with_wrong_magic_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt), "__tensornet__": np.asarray("numpy")}
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match="'__tensornet__' is 'numpy'"):
        load(tmp_path / "f.npz")


def test_file_without_version_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt)}
    del entries["__version__"]
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match=r"'__version__'.* is missing"):
        load(tmp_path / "f.npz")


@pytest.mark.parametrize("version", [FILE_FORMAT_VERSION + 1, 0, -3])
def test_file_with_unsupported_version_is_refused(
    tmp_path: Path, tt: TTTensor, version: int
) -> None:
    np.savez(tmp_path / "f.npz", **_header(version=version), **_tt_entries(tt))
    with pytest.raises(ValueError, match=f"unsupported file-format version {version}"):
        load(tmp_path / "f.npz")


@pytest.mark.parametrize("version", ["1", 1.0, [1]])
def test_file_with_non_integer_version_is_refused(
    tmp_path: Path, tt: TTTensor, version: Any
) -> None:
    np.savez(tmp_path / "f.npz", **_header(version=version), **_tt_entries(tt))
    with pytest.raises(ValueError, match="must be a single int"):
        load(tmp_path / "f.npz")


def test_file_with_unknown_type_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    np.savez(tmp_path / "f.npz", **_header("FancyTensor"), **_tt_entries(tt))
    with pytest.raises(ValueError, match=r"unknown type 'FancyTensor'.*TTTensor"):
        load(tmp_path / "f.npz")


def test_file_with_object_array_is_refused_with_our_message(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt)}
    entries["cores__1"] = np.array([{"evil": 1}, None], dtype=object)
    np.savez(tmp_path / "f.npz", **entries)  # numpy pickles object arrays on save
    with pytest.raises(ValueError, match="'cores__1' holds a Python object array") as info:
        load(tmp_path / "f.npz")
    assert "allow_pickle=False" in str(info.value)


def test_file_with_object_array_in_header_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt)}
    entries["__type__"] = np.array(["TTTensor"], dtype=object)
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match="'__type__' holds a Python object array"):
        load(tmp_path / "f.npz")


def test_file_with_missing_field_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "f.npz", **_header())
    with pytest.raises(ValueError, match="missing field 'cores' of TTTensor"):
        load(tmp_path / "f.npz")


def test_file_with_missing_tuple_item_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt)}
    del entries["cores__2"]
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match=r"field 'cores'\[2\] is missing"):
        load(tmp_path / "f.npz")


def test_file_with_unknown_kind_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt), "cores__kind": np.asarray("dict")}
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match="unknown kind 'dict'"):
        load(tmp_path / "f.npz")


def test_file_with_unexpected_entries_is_refused(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt), "payload": np.ones(3)}
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match="unexpected entries for a TTTensor: 'payload'"):
        load(tmp_path / "f.npz")


def test_file_whose_fields_do_not_form_a_valid_object_is_refused(tmp_path: Path) -> None:
    bad = {
        "cores__kind": np.asarray("tuple"),
        "cores__len": np.asarray(2),
        "cores__0": np.ones((1, 2, 3)),
        "cores__0__kind": np.asarray("array"),
        "cores__1": np.ones((2, 2, 1)),
        "cores__1__kind": np.asarray("array"),
    }
    np.savez(tmp_path / "f.npz", **{**_header(), **bad})
    with pytest.raises(ValueError, match=r"do not form a valid TTTensor: .*left rank 2"):
        load(tmp_path / "f.npz")


def test_file_with_integer_cores_is_refused_as_value_error(tmp_path: Path, tt: TTTensor) -> None:
    entries = {**_header(), **_tt_entries(tt)}
    entries["cores__0"] = np.ones(tt.cores[0].shape, dtype=np.int64)
    np.savez(tmp_path / "f.npz", **entries)
    with pytest.raises(ValueError, match=r"do not form a valid TTTensor: .*floating dtype"):
        load(tmp_path / "f.npz")


def test_npy_file_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"single \.npy array"):
        load(tmp_path / "x.npy")


@pytest.mark.parametrize("content", [b"", b"hello, this is not an archive", b"PK\x03\x04garbage"])
def test_non_archive_file_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.npz").write_bytes(content)
    with pytest.raises(ValueError, match="not a valid tensornet file"):
        load(tmp_path / "x.npz")


# -- registry and generic fields -----------------------------------------------------------------
@pytest.fixture
def clean_registry() -> Iterator[None]:
    saved = dict(_REGISTRY)
    yield
    _REGISTRY.clear()
    _REGISTRY.update(saved)


@dataclasses.dataclass(frozen=True, eq=False)
class _Everything:
    """A container exercising every storable field kind."""

    array: Any
    arrays: tuple[Any, ...]
    maybe: tuple[Any, ...]
    modes: tuple[int, ...]
    k: int
    scale: float
    phase: complex
    flag: bool
    label: str
    nothing: None
    nested: tuple[Any, ...]
    optional: int = 7
    derived: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "derived", self.k * 2)


def test_registered_dataclass_round_trips_every_field_kind(
    tmp_path: Path, clean_registry: None
) -> None:
    assert register_format(_Everything) is _Everything
    obj = _Everything(
        array=np.arange(6, dtype=np.float32).reshape(2, 3),
        arrays=(np.ones(2), np.zeros((1, 1), dtype=np.complex64)),
        maybe=(np.ones(3), None),
        modes=(0, 2, 5),
        k=-4,
        scale=0.1,
        phase=1 - 2j,
        flag=True,
        label="tucker-2",
        nothing=None,
        nested=((1, 2), (), ("a", 3.5)),
        optional=11,
    )
    back = load(save(tmp_path / "e", obj))
    assert type(back) is _Everything
    assert _same_bits(back.array, obj.array)
    assert all(_same_bits(a, b) for a, b in zip(back.arrays, obj.arrays, strict=True))
    assert _same_bits(back.maybe[0], obj.maybe[0]) and back.maybe[1] is None
    assert back.modes == (0, 2, 5) and back.k == -4 and back.scale == 0.1
    assert back.phase == 1 - 2j and back.flag is True and back.label == "tucker-2"
    assert back.nothing is None and back.nested == ((1, 2), (), ("a", 3.5))
    assert back.optional == 11 and back.derived == -8


def test_missing_field_with_default_takes_the_default(tmp_path: Path, clean_registry: None) -> None:
    @register_format
    @dataclasses.dataclass(frozen=True)
    class WithDefault:
        value: int
        extra: int = 5

    np.savez(
        tmp_path / "f.npz",
        **_header("WithDefault"),
        value=np.asarray(3),
        value__kind=np.asarray("int"),
    )
    back = load(tmp_path / "f.npz")
    assert (back.value, back.extra) == (3, 5)


def test_register_format_refuses_non_dataclasses() -> None:
    with pytest.raises(TypeError, match="dataclass"):
        register_format(int)
    with pytest.raises(TypeError, match="dataclass"):
        register_format(TTTensor((np.ones((1, 2, 1)),)))  # type: ignore[type-var]


@pytest.mark.parametrize("field_name", ["a__b", "file", "allow_pickle"])
def test_register_format_refuses_reserved_field_names(field_name: str) -> None:
    cls = dataclasses.make_dataclass("Reserved", [(field_name, int)], frozen=True)
    with pytest.raises(ValueError, match=field_name):
        register_format(cls)


def test_register_format_refuses_a_second_class_of_the_same_name(clean_registry: None) -> None:
    impostor = dataclasses.make_dataclass("TTTensor", [("cores", tuple)], frozen=True)
    with pytest.raises(ValueError, match="already registered"):
        register_format(impostor)
    assert register_format(TTTensor) is TTTensor  # re-registering the same class is fine


def test_save_refuses_fields_that_cannot_be_stored(tmp_path: Path, clean_registry: None) -> None:
    @register_format
    @dataclasses.dataclass(frozen=True)
    class Holder:
        payload: Any

    with pytest.raises(TypeError, match=r"obj\.payload cannot be stored"):
        save(tmp_path / "h", Holder({"a": 1}))
    with pytest.raises(TypeError, match=r"obj\.payload\[1\] must be a numeric array"):
        save(tmp_path / "h", Holder((np.ones(2), np.array([None], dtype=object))))
