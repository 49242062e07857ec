"""Spines from a cell fill (issue 26): the simulator's spiny dendrite, and spine heads found
beside the shaft."""
import numpy as np
import pytest

from pipeline.truth.simulate import SimulationParams, simulate_cell, spine_heads


@pytest.fixture(scope="module")
def spiny():
    return simulate_cell(SimulationParams(cell_type="pyr", shape=(16, 192, 192), n_sessions=3,
                                          seed=11, spines=True, bit_depth=8,
                                          synapse_density_per_um=1.2))


def test_simulated_fill_is_one_channel_of_shafts_and_spine_heads(spiny):
    assert all(im.shape[0] == 1 and im.dtype == np.uint8 for im in spiny.images)
    truth = spiny.truth
    assert (truth["kind"] == "spine").all()
    # a head is brighter than the neuropil around it: the fill at present heads' positions
    s0 = truth[(truth.session == "s00") & (truth.present == 1) & (truth.in_view == 1)]
    image = spiny.images[0][0].astype(float)
    at = tuple(np.round(s0[["z", "y", "x"]].to_numpy()).astype(int).T)
    assert np.median(image[at]) > np.percentile(image, 90)


def test_a_lost_spine_leaves_the_fill():
    """A spine present in one session and lost in the next: its head's place goes dark."""
    prm = SimulationParams(cell_type="pyr", shape=(16, 192, 192), n_sessions=2, seed=5,
                           spines=True, loss_logit=(1.5, 0.0), birth_rate=0.0,
                           shift_sd_um=(0.0, 0.0, 0.0), brightness_sd=0.0,
                           bleach_per_session=1.0)
    sim = simulate_cell(prm)
    t = sim.truth.pivot(index="synapse_id", columns="session", values="present")
    lost = t[(t["s00"] == 1) & (t["s01"] == 0)].index
    kept = t[(t["s00"] == 1) & (t["s01"] == 1)].index
    assert len(lost) >= 3 and len(kept) >= 3
    pos = sim.truth[sim.truth.session == "s00"].set_index("synapse_id")[["z", "y", "x"]]

    def fill(session, ids):     # above the neuropil (offset and background)
        image = sim.images[session][0].astype(float)
        at = tuple(np.round(pos.loc[ids].to_numpy()).astype(int).T)
        return np.median(image[at]) - np.median(image)

    assert fill(0, lost) > 5 and fill(1, lost) < 0.25 * fill(0, lost)
    assert fill(1, kept) > 0.5 * fill(0, kept)


def test_head_fill_follows_weight_and_size_is_clipped():
    prm = SimulationParams(spines=True)
    fill, diameter = spine_heads(prm, np.array([0.01, 0.5, 1.0, 2.0, 100.0]))
    np.testing.assert_allclose(fill / fill[2], [0.01, 0.5, 1.0, 2.0, 100.0])
    assert diameter[0] == prm.spine_head_um[0] and diameter[-1] == prm.spine_head_um[1]
    assert prm.spine_head_um[0] < diameter[2] < prm.spine_head_um[1]
