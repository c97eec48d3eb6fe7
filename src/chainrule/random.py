"""Random numbers: one global generator, seeded by ``manual_seed``, reproducible bit for bit.

``Generator`` mirrors ``torch.Generator``: ``manual_seed``, ``initial_seed``, ``get_state`` and
``set_state``.  Underneath is NumPy's PCG64, so the same seed gives the same numbers on every machine
(the streams differ from torch's: chainrule never promises torch's random numbers).
"""

from __future__ import annotations

import numpy as np


def _fresh_entropy() -> int:
    """A fresh 128-bit seed from the OS: the entropy ``SeedSequence()`` draws when given none."""
    entropy = np.random.SeedSequence().entropy
    assert isinstance(entropy, int)  # SeedSequence() without arguments always draws an int
    return entropy


class Generator:
    """A seeded source of random numbers (a thin, picklable wrapper around ``numpy.random.Generator``)."""

    __slots__ = ("_rng", "_seed")

    def __init__(self, seed: int | None = None):
        self.manual_seed(_fresh_entropy() if seed is None else seed)

    def manual_seed(self, seed: int) -> Generator:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise TypeError(f"manual_seed expects an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed & ((1 << 128) - 1)))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        """The generator's full state as a dict of plain Python values (JSON-safe)."""
        st = self._rng.bit_generator.state
        return {"seed": self._seed, "bit_generator": st["bit_generator"],
                "state": {k: int(v) for k, v in st["state"].items()},
                "has_uint32": int(st["has_uint32"]), "uinteger": int(st["uinteger"])}

    def set_state(self, state: dict) -> None:
        self._seed = int(state["seed"])
        self._rng.bit_generator.state = {
            "bit_generator": state["bit_generator"], "state": dict(state["state"]),
            "has_uint32": state["has_uint32"], "uinteger": state["uinteger"]}

    @property
    def numpy(self) -> np.random.Generator:
        """The underlying NumPy generator."""
        return self._rng


default_generator = Generator(0)


def manual_seed(seed: int) -> Generator:
    """Seed the global generator: the same seed gives the same weights, bit for bit."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    s = int(_fresh_entropy() % (1 << 63))
    default_generator.manual_seed(s)
    return s


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    default_generator.set_state(state)


def _rng(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator)._rng
