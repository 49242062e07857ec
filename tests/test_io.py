import numpy as np
import pytest
import tifffile

from pipeline.core.errors import InputError
from pipeline.inputs.stacks import probe_stack, read_stack, resolve_voxel

VOX = (0.8, 0.0887, 0.0887)


def _stack(rng, c=2, z=5, y=32, x=40):
    return rng.integers(0, 4000, size=(c, z, y, x)).astype(np.uint16)


def test_imagej_hyperstack_channels_and_voxel(tmp_path):
    data = _stack(np.random.default_rng(0))
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data.transpose(1, 0, 2, 3), imagej=True,
                     resolution=(1 / VOX[2], 1 / VOX[1]),
                     metadata={"spacing": VOX[0], "unit": "um", "axes": "ZCYX"})
    info = probe_stack(path)
    assert (info.n_channels, info.n_planes, info.plane_shape) == (2, 5, (32, 40))
    np.testing.assert_allclose(info.voxel_um, VOX, rtol=1e-4)
    out = read_stack(path, channels=[1, 0])
    np.testing.assert_array_equal(out[0], data[1])
    np.testing.assert_array_equal(out[1], data[0])


def test_ome_tiff_channel_first_with_physical_size(tmp_path):
    data = _stack(np.random.default_rng(1))
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "CZYX", "PhysicalSizeZ": 0.75, "PhysicalSizeY": 0.1, "PhysicalSizeX": 0.1})
    info = probe_stack(path)
    np.testing.assert_allclose(info.voxel_um, (0.75, 0.1, 0.1))
    np.testing.assert_array_equal(read_stack(path, channels=[0])[0], data[0])


@pytest.mark.parametrize("order", ["ZCYX", "CZYX"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_ome_tiff_axis_order_and_dtype_from_metadata(tmp_path, order, dtype):
    data = (_stack(np.random.default_rng(4)) // 16).astype(dtype)  # (c, z, y, x), fits 8 bit
    stored = data if order == "CZYX" else data.transpose(1, 0, 2, 3)
    path = tmp_path / f"stack_{order}.ome.tif"
    tifffile.imwrite(path, stored, ome=True, metadata={"axes": order, "PhysicalSizeZ": 0.8})
    info = probe_stack(path)
    assert (info.n_channels, info.n_planes) == (2, 5)
    out = read_stack(path, channels=[0, 1])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, data.astype(np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_imagej_hyperstack_in_every_bit_depth(tmp_path, dtype):
    data = (_stack(np.random.default_rng(5)) // 16).astype(dtype)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data.transpose(1, 0, 2, 3), imagej=True, metadata={"axes": "ZCYX"})
    np.testing.assert_array_equal(read_stack(path, channels=[1])[0], data[1].astype(np.float32))


SI_META = ("SI.VERSION_MAJOR = 2020\nSI.hChannels.channelSave = [1;2]\n"
           "SI.hStackManager.actualNumSlices = {z}\nSI.hStackManager.framesPerSlice = {f}\n"
           "SI.hScan2D.logAverageFactor = 1\nSI.hStackManager.actualStackZStepSize = 0.8\n"
           "SI.hRoiManager.imagingFovUm = [-16 -12;16 -12;16 12;-16 12]\n"
           "SI.hRoiManager.pixelsPerLine = 40\nSI.hRoiManager.linesPerFrame = 32\n")


def _write_scanimage(path, frames):
    """A ScanImage 2016+ style file: one page per frame, pages ordered slice, frame, channel, the
    frame-invariant SI.* metadata in every page's Software tag."""
    z, f, c = frames.shape[:3]
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for i, page in enumerate(frames.reshape((-1,) + frames.shape[3:])):
            tif.write(page, software=SI_META.format(z=z, f=f), contiguous=False,
                      description=f"frameNumbers = {i + 1}\nframeTimestamps_sec = {i * 0.03:.3f}\n")


def test_scanimage_interleaved_channels_frames_averaged_voxel_from_metadata(tmp_path):
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 2000, size=(5, 3, 2, 32, 40)).astype(np.int16)  # z, frame, channel
    path = tmp_path / "si_00001.tif"
    _write_scanimage(path, frames)
    info = probe_stack(path)
    assert (info.n_channels, info.n_planes, info.plane_shape) == (2, 5, (32, 40))
    # z from actualStackZStepSize; x, y from the field of view (32 x 24 um) over 40 x 32 pixels
    np.testing.assert_allclose(info.voxel_um, (0.8, 0.75, 0.8))
    out = read_stack(path, channels=[1, 0])
    np.testing.assert_allclose(out[0], frames[:, :, 1].mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(out[1], frames[:, :, 0].mean(axis=1), rtol=1e-6)


def test_scanimage_stopped_early_is_named(tmp_path):
    frames = np.random.default_rng(7).integers(0, 2000, size=(5, 3, 2, 16, 16)).astype(np.int16)
    path = tmp_path / "si_stopped.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for page in frames.reshape((-1, 16, 16))[:-1]:  # last frame of the last slice missing
            tif.write(page, software=SI_META.format(z=5, f=3), contiguous=False)
    with pytest.raises(InputError, match="si_stopped.tif.*not a multiple"):
        probe_stack(path)


def test_plain_multipage_single_channel_has_no_voxel_size(tmp_path):
    data = _stack(np.random.default_rng(2), c=1)[0]
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data)
    info = probe_stack(path)
    assert info.n_channels == 1 and info.n_planes == 5
    assert info.voxel_um == (None, None, None)
    np.testing.assert_array_equal(read_stack(path, channels=[0])[0], data)


def test_folder_of_slices_tiff_and_png(tmp_path):
    import imageio.v3 as iio

    data = _stack(np.random.default_rng(3), c=1)[0]
    for fmt in ("tif", "png"):
        folder = tmp_path / fmt
        folder.mkdir()
        for i, plane in enumerate(data):
            (tifffile.imwrite if fmt == "tif" else iio.imwrite)(folder / f"z{i:03d}.{fmt}", plane)
        np.testing.assert_array_equal(read_stack(folder, channels=[0])[0], data)


def test_channel_out_of_range_names_the_file(tmp_path):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, _stack(np.random.default_rng(4), c=1)[0])
    with pytest.raises(InputError, match=r"one\.tif.*channel 1"):
        read_stack(path, channels=[0, 1])


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "broken.tif"
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, _stack(np.random.default_rng(5)))
    path.write_bytes(good.read_bytes()[:200])
    with pytest.raises(InputError, match="broken.tif"):
        read_stack(path, channels=[0])
    path.write_bytes(b"not a tiff at all")
    with pytest.raises(InputError, match="broken.tif"):
        probe_stack(path)


def test_constant_stack_is_rejected(tmp_path):
    path = tmp_path / "zeros.tif"
    tifffile.imwrite(path, np.zeros((4, 16, 16), np.uint16), photometric="minisblack")
    with pytest.raises(InputError, match="zeros.tif.*constant"):
        read_stack(path, channels=[0])


def test_nan_in_float_stack_is_rejected(tmp_path):
    data = np.random.default_rng(6).random((4, 16, 16)).astype(np.float32)
    data[2, 3, 3] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    with pytest.raises(InputError, match="nan.tif.*NaN"):
        read_stack(path, channels=[0])


@pytest.mark.parametrize("dtype,top", [(np.uint16, 4095), (np.uint16, 65535), (np.uint8, 255)])
def test_saturated_channel_is_named_and_a_few_saturated_voxels_pass(tmp_path, dtype, top):
    rng = np.random.default_rng(8)
    data = rng.integers(10, top // 2, size=(2, 4, 32, 32)).astype(dtype)
    data[0, :, :8, :] = top  # 25 % of the PSD-95 channel at full scale
    data[1, 0, 0, :3] = top  # three voxels of the morphology channel: fine
    path = tmp_path / "bright.tif"
    tifffile.imwrite(path, data.transpose(1, 0, 2, 3), imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(InputError, match=rf"bright.tif: channel 0 is saturated: 25.0 %.*\({top}\)"):
        read_stack(path, channels=[0, 1], max_saturated_fraction={0: 0.01})
    out = read_stack(path, channels=[1, 0], max_saturated_fraction={1: 0.01})  # channel 1 passes
    assert out.shape == (2, 4, 32, 32)
    data[0, :, :8, :] = top - 1  # highest value not a detector's full scale: not saturation
    tifffile.imwrite(path, data.transpose(1, 0, 2, 3), imagej=True, metadata={"axes": "ZCYX"})
    read_stack(path, channels=[0], max_saturated_fraction={0: 0.01})


def test_voxel_size_precedence_and_missing_error():
    assert resolve_voxel((1, 2, 3), (4, 5, 6), (7, 8, 9), path="f") == (1, 2, 3)
    assert resolve_voxel(None, (4, 5, 6), (7, 8, 9), path="f") == (4, 5, 6)
    assert resolve_voxel(None, (None, 5, 6), (7, 8, 9), path="f") == (7, 8, 9)
    # config override of the files' metadata (voxel_um_overrides_files); the sheet still wins
    assert resolve_voxel(None, (4, 5, 6), (7, 8, 9), path="f", config_first=True) == (7, 8, 9)
    assert resolve_voxel((1, 2, 3), (4, 5, 6), (7, 8, 9), path="f", config_first=True) == (1, 2, 3)
    assert resolve_voxel(None, (4, 5, 6), None, path="f", config_first=True) == (4, 5, 6)
    with pytest.raises(InputError, match="voxel size unknown.*voxel_um"):
        resolve_voxel(None, (None, None, None), None, path="f.tif")


# --------------------------------------------------------------------------- not a z-stack
def test_a_2d_image_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "projection.tif"
    tifffile.imwrite(path, _stack(np.random.default_rng(3), z=1).transpose(1, 0, 2, 3),
                     imagej=True, metadata={"axes": "ZCYX"})
    with pytest.raises(InputError, match=r"projection\.tif: 1 plane.*at least 3 planes"):
        probe_stack(path)
    with pytest.raises(InputError, match="at least 3 planes"):
        read_stack(path, channels=[0])


def _tzcyx(tmp_path, rng):
    data = rng.integers(0, 4000, size=(3, 5, 2, 16, 16)).astype(np.uint16)   # t, z, c, y, x
    path = tmp_path / "timelapse.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX", "spacing": 0.8})
    return path, data


def test_a_time_axis_is_refused_unless_the_sheet_says_what_to_do(tmp_path):
    path, data = _tzcyx(tmp_path, np.random.default_rng(4))
    with pytest.raises(InputError, match=r"timelapse\.tif: has a time axis of 3 points.*time_axis"):
        probe_stack(path)
    with pytest.raises(InputError, match="time axis of 3 points"):
        read_stack(path, channels=[0, 1])
    first = read_stack(path, channels=[1, 0], time_axis="first")
    np.testing.assert_array_equal(first[0], data[0, :, 1])
    mean = read_stack(path, channels=[0], time_axis="mean")
    np.testing.assert_allclose(mean[0], data[:, :, 0].mean(axis=0), rtol=1e-6)


def test_check_sheet_names_2d_and_time_axis_files(tmp_path):
    from pipeline.inputs.sheet import check_images, read_sessions

    rng = np.random.default_rng(5)
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, _stack(rng).transpose(1, 0, 2, 3), imagej=True,
                     resolution=(1 / VOX[2], 1 / VOX[1]),
                     metadata={"spacing": VOX[0], "unit": "um", "axes": "ZCYX"})
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, _stack(rng, z=2).transpose(1, 0, 2, 3), imagej=True,
                     metadata={"axes": "ZCYX"})
    movie, _ = _tzcyx(tmp_path, rng)
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text("cell\tcell_type\tsession\tday\tpath\tmorphology_channel\tvoxel_um\ttime_axis\n"
                     "c1\tpyr\ts0\t0\tgood.tif\t1\t\t\n"
                     "c1\tpyr\ts1\t4\tflat.tif\t1\t0.8,0.09,0.09\t\n"
                     "c1\tpyr\ts2\t8\ttimelapse.tif\t1\t0.8,0.09,0.09\t\n"
                     "c1\tpyr\ts3\t12\ttimelapse.tif\t1\t0.8,0.09,0.09\tfirst\n")
    problems = check_images(read_sessions(sheet))
    assert len(problems) == 2, problems
    assert "flat.tif: 2 plane(s)" in problems[0] and "session s1" in problems[0]
    assert "timelapse.tif: has a time axis" in problems[1] and "session s2" in problems[1]


def test_swapped_channels_are_named(tmp_path):
    """The simulator's cells with the sheet's channel indices the wrong way round: a warning
    (or, with swapped_channels='error', an error) naming the file; the right order is quiet."""
    import pandas as pd

    from conftest import SAMPLE
    from pipeline.inputs.session import load_session

    for cell in ("pyr01", "PV02"):
        row = pd.Series({"abs_path": str(SAMPLE / "images" / cell / "s00.tif"), "voxel_um": "",
                         "time_axis": "error", "psd95_channel": 0, "morphology_channel": 1})
        assert load_session(row, config_voxel=None, max_saturated=0.01)[3] == []
        swapped = row.copy()
        swapped["psd95_channel"], swapped["morphology_channel"] = 1, 0
        warnings = load_session(swapped, config_voxel=None, max_saturated=0.01)[3]
        assert len(warnings) == 1 and f"{cell}/s00.tif: the channels look swapped" in warnings[0]
        with pytest.raises(InputError, match="channels look swapped"):
            load_session(swapped, config_voxel=None, max_saturated=0.01, swapped="error")
        assert load_session(swapped, config_voxel=None, max_saturated=0.01, swapped="off")[3] == []
