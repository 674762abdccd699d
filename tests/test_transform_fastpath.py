"""The ``nfkc`` fast path in etl/transform.py must give exactly what the normalizer gives."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from etl.normalize import apply_normalizer
from etl.transform import _FAST_MIN_ROWS, _normalize

# ASCII (with every kind of whitespace), full-width forms, hyphen look-alikes, 長音, invisible
# characters, kana/kanji, Latin-1 and combining marks.
POOL = [
    *"AZaz09-_.,/()#:~!", " ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1f",
    *"ＡＺａｚ０９－", "\u3000", "\u2010", "\u2212", "\u2500", "\uff70", "\u30fc",
    "\u200b", "\ufeff", "\u00a0", *"センター地番号ｶﾞ", "\u00e9", "e\u0301", "\ufb01",
]


def _values(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = []
    for i in range(n):
        r = rng.random()
        if r < 0.05:
            out.append(None)
        elif r < 0.5:
            out.append(f"K{i:07d}")  # the common case: canonical ASCII ids
        else:
            out.append("".join(rng.choice(POOL) for _ in range(rng.randint(0, 8))))
    return out


@pytest.mark.parametrize("dtype", ["str", "string"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nfkc_fast_path_is_identical(dtype: str, seed: int) -> None:
    s = pd.Series(_values(max(_FAST_MIN_ROWS, 6000), seed), dtype=dtype)
    s.index = s.index + 10  # a non-default index must be kept
    pd.testing.assert_frame_equal(_normalize("nfkc", s, {}, {}),
                                  apply_normalizer("nfkc", s, {}, {}))


def test_nfkc_fast_path_all_canonical_and_small_inputs() -> None:
    ids = pd.Series([f"M{i:06d}" for i in range(_FAST_MIN_ROWS + 5)], dtype="str")
    pd.testing.assert_frame_equal(_normalize("nfkc", ids, {}, {}),
                                  apply_normalizer("nfkc", ids, {}, {}))
    small = pd.Series(["ｋ０１", " a ", None], dtype="str")
    pd.testing.assert_frame_equal(_normalize("nfkc", small, {}, {}),
                                  apply_normalizer("nfkc", small, {}, {}))
