"""Dendrite length and synapse density per um: known answers from drawn lines and from the
simulator's own centre lines."""
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from pipeline.core.dendrite import dendrite_length
from pipeline.params import DendriteParams
from pipeline.stages.dendrite import session_length
from pipeline.stats.density import density_per_session, density_table
from pipeline.stats.table import prepare_table
from pipeline.truth.simulate import SimulationParams, simulate_cell

OPTIONS = asdict(DendriteParams())
SPACING = (0.8, 0.0887, 0.0887)


def _tube(angle_deg: float, *, shape=(12, 256, 256), radius_um=0.4):
    """A straight tube through the field centre at ``angle_deg`` in y-x, crossing the whole
    field, blurred like a two-photon image; and its true length inside the field (um)."""
    vol = np.zeros(shape, np.float32)
    c = (np.array(shape[1:]) - 1) / 2
    t = np.linspace(-40, 40, 20000)
    a = np.deg2rad(angle_deg)
    y = np.round(c[0] + t * np.sin(a) / SPACING[1]).astype(int)
    x = np.round(c[1] + t * np.cos(a) / SPACING[2]).astype(int)
    inside = (y >= 0) & (y < shape[1]) & (x >= 0) & (x < shape[2])
    vol[shape[0] // 2, y[inside], x[inside]] = 1.0
    vol = ndimage.gaussian_filter(vol, (1.0, radius_um / SPACING[1], radius_um / SPACING[2]))
    side = (shape[1] - 1) * SPACING[1]
    length = side / max(abs(np.cos(a)), abs(np.sin(a)))
    return 100 * vol / vol.max() + np.random.default_rng(0).poisson(2.0, shape), length


def test_a_straight_tube_measures_its_length_at_any_angle():
    # counted by its steps alone, a staircase chain measures a 22.5 degree line 8 % longer
    # than a 0 or 45 degree one; projected on the local direction, every angle is right.
    # (A line leaving exactly through a corner of the field, 45 degrees here, loses about
    # 2.5 um at each corner, where the mirrored mask forms a junction: docs/methods.md.)
    for angle in (0, 10, 22.5, 35, 71, 90):
        image, length = _tube(angle)
        res = dendrite_length(image, spacing=SPACING, **OPTIONS)
        assert len(res["pieces_um"]) == 1
        assert res["length_um"] == pytest.approx(length, rel=0.02), angle


@pytest.mark.parametrize("params", [
    dict(cell_type="pyr", seed=1),                         # spines on necks: pruned away
    dict(cell_type="PV", seed=6, n_dendrites=3),
    dict(cell_type="pyr", seed=7, spines=True, bit_depth=8),   # a fill, 8-bit
])
def test_simulated_dendrites_within_five_percent_of_the_centre_lines(params):
    sim = simulate_cell(SimulationParams(shape=(20, 256, 256), n_sessions=2, **params))
    for s, img in enumerate(sim.images):
        res = dendrite_length(img[-1], spacing=sim.params.spacing, **OPTIONS)
        assert res["length_um"] == pytest.approx(sim.dendrite_um[s], rel=0.05)
        assert len(res["pieces_um"]) == sim.params.n_dendrites


def _field_with(lines_and_blobs, *, shape=(12, 256, 256)):
    """A field of horizontal tubes (row in um, brightness) and spine heads (y, x in um,
    brightness), blurred like a two-photon image, with Poisson noise."""
    lines, blobs = lines_and_blobs
    vol = np.zeros(shape, np.float32)
    for row_um, brightness in lines:
        vol[shape[0] // 2, int(round(row_um / SPACING[1])), :] = brightness
    for y_um, x_um, brightness in blobs:
        vol[shape[0] // 2, int(round(y_um / SPACING[1])), int(round(x_um / SPACING[2]))] = (
            brightness * 12)   # a head's volume: its integral is a tube's over ~1 um
    vol = ndimage.gaussian_filter(vol, (1.0, 0.4 / SPACING[1], 0.4 / SPACING[2]))
    scale = 100 / vol.max()
    return vol * scale + np.random.default_rng(1).poisson(2.0, shape)


def test_a_dim_dendrite_beside_a_bright_one_is_measured_and_spine_heads_are_not():
    side = (256 - 1) * SPACING[2]
    # a dendrite a fifth as bright, 1.3 um beside a bright one: dimmer than half the bright one
    # within the half-of-nearby rule's reach, kept as a ridge of its own
    pair = _field_with(([(10.0, 1.0), (11.3, 0.2)], []))
    res = dendrite_length(pair, spacing=SPACING, **OPTIONS)
    assert len(res["pieces_um"]) == 2
    assert res["length_um"] == pytest.approx(2 * side, rel=0.03)
    without = dendrite_length(pair, spacing=SPACING, **{**OPTIONS, "ridge_sigma_um": 0.0})
    assert len(without["pieces_um"]) == 1          # the rule alone dropped it
    # spine heads every 0.9 um, 0.8-2 um either side of a shaft: the spine-free projection's
    # median makes ridges of them too, but the gaps between the heads are dark
    rng = np.random.default_rng(2)
    heads = [(10 + rng.choice([-1, 1]) * rng.uniform(0.8, 2.0), x + rng.uniform(-0.2, 0.2),
              rng.uniform(0.3, 1.0)) for x in np.arange(0.5, side - 0.5, 0.9)]
    spiny = _field_with(([(10.0, 1.0)], heads))
    res = dendrite_length(spiny, spacing=SPACING, **OPTIONS)
    assert len(res["pieces_um"]) == 1
    assert res["length_um"] == pytest.approx(side, rel=0.03)
    ridges_alone = dendrite_length(spiny, spacing=SPACING, **{**OPTIONS, "continuous_share": 0})
    assert ridges_alone["length_um"] > 1.2 * side     # the continuity test is what drops them


def test_a_stack_without_morphology_has_no_length():
    stack = np.random.default_rng(0).poisson(5.0, (1, 8, 64, 64)).astype(np.float32)
    row = session_length(stack, {"cell": "c", "session": "s00", "day": 0.0,
                                 "channels": ["psd95"], "voxel_um": list(SPACING)},
                         params=DendriteParams())
    assert np.isnan(row["dendrite_length_um"]) and row["channel"] == ""


def test_density_is_synapses_present_over_length_and_its_change():
    rows = []
    for cell, ct, n_by_session, length in (("a", "pyr", (10, 12), 20.0), ("b", "pyr", (8, 6), 16.0)):
        for s, n in enumerate(n_by_session):
            for k in range(14):
                rows.append({"cell": cell, "cell_type": ct, "synapse_id": k + 1,
                             "session": f"s{s}", "day": 4 * s, "present": int(k < n),
                             "weight": 1.0, "dendrite_length_um": length})
    t = prepare_table(pd.DataFrame(rows))
    per = density_per_session(t).set_index(["cell", "session"])
    assert per.loc[("a", "s0"), "density_per_um"] == pytest.approx(0.5)
    assert per.loc[("a", "s1"), "change_from_first"] == pytest.approx(0.2)
    assert per.loc[("b", "s1"), "change_from_first"] == pytest.approx(-0.25)
    table = density_table(t, density_per_session(t)).set_index("day")
    assert table.loc[0, "density_per_um"] == pytest.approx(0.5)
    assert table.loc[4, "change_from_first"] == pytest.approx(-0.025)
    assert np.isnan(table.loc[4, "ci_low"])      # two cells: no interval
