"""Survey: validation, and the SimPEG adapter's sign against a SimPEG forward."""

import numpy as np
import pytest
import torch

from gempy_gravinv import GravityOperator, PrismMesh, Survey

LOC = [[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [0.0, 10.0, 2.0]]


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(locations=[[0.0, 0.0, np.nan]]), "NaN/inf"),
        (dict(locations=[[0.0, np.inf, 1.0]]), "NaN/inf"),
        (dict(locations=np.zeros((0, 3))), "empty"),
        (dict(locations=np.zeros((4, 2))), r"shape \(n_data, 3\)"),
        (dict(locations=np.zeros((2, 3, 1))), r"shape \(n_data, 3\)"),
        (dict(locations=LOC, gz=[1.0, 2.0]), "2 values but the survey has 3"),
        (dict(locations=LOC, gz=[1.0, np.nan, 2.0]), "gz contains 1 NaN"),
        (dict(locations=LOC, gz=np.ones((3, 2))), "1-D"),
        (dict(locations=LOC, gz=[1.0, 2.0, 3.0], std=[0.1, 0.0, 0.1]), "strictly positive"),
        (dict(locations=LOC, gz=[1.0, 2.0, 3.0], std=-1.0), "strictly positive"),
        (dict(locations=LOC, gz=[1.0, 2.0, 3.0], std=[0.1, 0.1]), "2 values but the survey has 3"),
        (dict(locations=LOC, gz=[1.0, 2.0, 3.0], std=[0.1, np.inf, 0.1]), "std contains 1 NaN/inf"),
        (dict(locations=LOC, std=0.1), "std was given without gz"),
    ],
)
def test_survey_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Survey(**kwargs)


def test_survey_rejects_non_numeric():
    with pytest.raises(TypeError, match="numeric"):
        Survey([["a", "b", "c"]])


def test_survey_values_and_helpers():
    s = Survey(LOC, gz=[1.0, -2.0, 3.0], std=0.5)
    np.testing.assert_array_equal(s.std, [0.5, 0.5, 0.5])
    assert s.n_data == len(s) == 3
    with pytest.raises(ValueError):  # read-only view
        s.locations[0, 0] = 5.0
    sub = s.subset([True, False, True])
    np.testing.assert_array_equal(sub.gz, [1.0, 3.0])
    np.testing.assert_array_equal(sub.locations, np.asarray(LOC)[[0, 2]])
    one = s.subset(1)
    assert one.n_data == 1 and one.gz[0] == -2.0
    with pytest.raises(ValueError, match="no observed gz"):
        Survey(LOC).require_data()
    with pytest.raises(ValueError, match="no std"):
        Survey(LOC, gz=[0, 0, 0]).require_data(need_std=True)
    single = Survey([1.0, 2.0, 3.0])  # a single station as a flat triple
    assert single.locations.shape == (1, 3)


# ------------------------------------------------------------------ SimPEG adapter
def _simpeg_block_case():
    """A dense block (0.5 g/cm³) in a small tensor mesh, stations 1 m above the top."""
    import discretize

    mesh = discretize.TensorMesh([[(20.0, 8)], [(20.0, 8)], [(20.0, 4)]], origin=(-80.0, -80.0, -80.0))
    cc = mesh.cell_centers
    block = (np.abs(cc[:, 0]) < 30) & (np.abs(cc[:, 1]) < 30) & (cc[:, 2] > -50) & (cc[:, 2] < -10)
    rho_gcc = np.where(block, 0.5, 0.0)
    x = np.linspace(-70.0, 70.0, 5)
    xx, yy = np.meshgrid(x, x)
    loc = np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, 1.0)])
    return mesh, rho_gcc, loc


def _simpeg_forward(mesh, survey, rho_gcc):
    from simpeg import maps
    from simpeg.potential_fields import gravity

    sim = gravity.simulation.Simulation3DIntegral(
        mesh=mesh, survey=survey, rhoMap=maps.IdentityMap(nP=mesh.n_cells),
        active_cells=np.ones(mesh.n_cells, dtype=bool), store_sensitivities="forward_only",
        engine="choclo",
    )
    return np.asarray(sim.dpred(rho_gcc), dtype=float)


def test_simpeg_round_trip_and_sign_against_simpeg_forward():
    mesh, rho_gcc, loc = _simpeg_block_case()
    ours = Survey(loc)
    sp_survey = ours.to_simpeg()
    np.testing.assert_array_equal(sp_survey.receiver_locations, loc)
    assert list(sp_survey.source_field.receiver_list[0].components) == ["gz"]

    d_simpeg = _simpeg_forward(mesh, sp_survey, rho_gcc)  # SimPEG: upward, negative for excess mass
    assert np.all(d_simpeg < 0)

    back = Survey.from_simpeg(sp_survey, dobs=d_simpeg, std=0.01)
    np.testing.assert_array_equal(back.locations, loc)
    assert np.all(back.gz > 0)  # ours: positive down
    np.testing.assert_array_equal(back.gz, -d_simpeg)

    # our operator on the same model, in kg/m³, agrees with the flipped SimPEG data
    op = GravityOperator(PrismMesh.from_discretize(mesh), ours, device="cpu")
    gz = op(torch.as_tensor(rho_gcc * 1000.0)).numpy()
    np.testing.assert_allclose(gz, back.gz, rtol=1e-6, atol=1e-9 * np.abs(gz).max())

    # to_simpeg_data flips back to SimPEG's sign
    data = back.to_simpeg_data()
    np.testing.assert_array_equal(data.dobs, d_simpeg)
    np.testing.assert_array_equal(data.standard_deviation, np.full(loc.shape[0], 0.01))
    # from_simpeg takes a Data object too (SimPEG surveys no longer carry dobs)
    from_data = Survey.from_simpeg(data)
    np.testing.assert_array_equal(from_data.gz, -d_simpeg)
    np.testing.assert_array_equal(from_data.std, 0.01)
    from simpeg import data as sdata

    no_std = Survey.from_simpeg(sdata.Data(sp_survey, dobs=d_simpeg))  # SimPEG fills std with zeros
    assert no_std.std is None and np.all(no_std.gz > 0)
    round_trip = no_std.to_simpeg_data()  # and back without one, as SimPEG built it
    np.testing.assert_array_equal(round_trip.dobs, d_simpeg)
    assert Survey.from_simpeg(round_trip).std is None
    assert not Survey.from_simpeg(sdata.Data(sp_survey)).has_data  # SimPEG fills dobs with NaN
    # and from_simpeg picks the data and std off a survey that carries them
    sp_survey.dobs = d_simpeg
    sp_survey.std = np.full(loc.shape[0], 0.02)
    again = Survey.from_simpeg(sp_survey)
    np.testing.assert_array_equal(again.gz, -d_simpeg)
    np.testing.assert_array_equal(again.std, 0.02)


def test_from_simpeg_takes_other_components():
    from simpeg.potential_fields import gravity

    rx = gravity.receivers.Point(np.asarray(LOC), components=["gz", "gx"])
    sv = gravity.survey.Survey(gravity.sources.SourceField(receiver_list=[rx]))
    s = Survey.from_simpeg(sv)  # SimPEG's order: the components of a location consecutive
    assert s.components.tolist() == ["gz", "gx"] * 3 and not s.is_gz_only
    np.testing.assert_array_equal(s.locations, np.repeat(LOC, 2, axis=0))
    with pytest.raises(ValueError, match="no observed gz"):
        Survey(LOC).to_simpeg_data()
