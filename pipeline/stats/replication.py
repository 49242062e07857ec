"""Which units are independent, and resampling them.

Synapses of one cell are not independent replicates, and neither are cells of one animal: a
comparison between cell types rests on cells (with at least ``min_cells_per_type`` per type) or,
where the sheet names animals and cells share them, on animals: their means (:func:`animal_means`),
or resampled hierarchically (animals, then cells within each drawn animal) for the Kesten fits.
A cell without an animal is its own animal.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..params import StatsParams

#: prefix of the unit of a cell whose animal is not named (it stands for an animal of its own)
UNNAMED = "(cell) "


def animal_units(table: pd.DataFrame) -> pd.Series:
    """The animal of each row (the ``animal`` column), or the row's cell where none is named."""
    cell = UNNAMED + table["cell"].astype(str)
    if "animal" not in table.columns:
        return cell
    animal = table["animal"].astype("string").fillna("").str.strip().astype(str)
    return animal.where(~animal.isin(["", "nan"]), cell)


def cells_by_animal(table: pd.DataFrame) -> dict[str, list[str]]:
    """animal -> its cells (sorted), from a table with ``cell`` and ``animal_unit``."""
    pairs = table[["animal_unit", "cell"]].drop_duplicates().sort_values(["animal_unit", "cell"])
    return {a: g["cell"].tolist() for a, g in pairs.groupby("animal_unit", sort=True)}


def counts(table: pd.DataFrame) -> dict:
    """n animals (named ones), cells and synapses."""
    units = table["animal_unit"].drop_duplicates()
    return {"n_animals": int((~units.str.startswith(UNNAMED)).sum()),
            "n_cells": int(table["cell"].nunique()),
            "n_synapses": int(table[["cell", "synapse_id"]].drop_duplicates().shape[0])}


def shares_animals(table: pd.DataFrame) -> bool:
    """True when some animal holds more than one cell: the cells are then not independent."""
    return bool(table.groupby("animal_unit")["cell"].nunique().gt(1).any())


def animal_means(per_cell: pd.Series, animals: dict[str, list[str]]) -> pd.Series:
    """Each animal's mean of its cells' values (``per_cell``: index cell; cells without a
    value left out; NaN for an animal with none)."""
    return pd.Series({a: per_cell.reindex(cells).mean() for a, cells in animals.items()},
                     dtype=float)


def hierarchical_sample(rng: np.random.Generator, animals: dict[str, list[str]]) -> list[str]:
    """Cells of one hierarchical bootstrap draw: animals with replacement, then, within each
    drawn animal, its cells with replacement."""
    names = list(animals)
    out = []
    for a in rng.integers(0, len(names), len(names)):
        cells = animals[names[a]]
        out.extend(cells[i] for i in rng.integers(0, len(cells), len(cells)))
    return out


def replication_note(table: pd.DataFrame, cell_type: str, *,
                     min_cells: int = StatsParams.min_cells_per_type,
                     min_animals: int = StatsParams.min_animals_per_type) -> str:
    """Why a comparison involving ``cell_type`` may not have a p-value ('' when it may)."""
    c = counts(table)
    if c["n_cells"] < min_cells:
        return (f"{cell_type}: {c['n_cells']} cell(s); a comparison needs at least {min_cells} "
                "cells per type (stats.min_cells_per_type): synapses of one cell are not "
                "independent replicates")
    n_units = table["animal_unit"].nunique()
    if shares_animals(table) and n_units < min_animals:
        return (f"{cell_type}: {c['n_cells']} cells from {n_units} animal(s); cells of one "
                f"animal are not independent, at least {min_animals} animals are needed "
                "(stats.min_animals_per_type)")
    return ""
