"""Rig folders (PrairieView, ThorImage), the optional formats (CZI, LIF, ND2, OME-Zarr) and the
sheet's axes override are read with the right channels, plane order and voxel size."""
import builtins
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import tifffile

from conftest import SAMPLE
from pipeline.core.errors import InputError
from pipeline.inputs import formats
from pipeline.inputs.stacks import probe_stack, read_stack
from pipeline.params import DetectParams
from pipeline.stages.detect import detect_session
from vendor_layouts import write_prairieview, write_thorimage_raw, write_thorimage_tiffs

VOX = (0.8, 0.0887, 0.0887)


@pytest.fixture(scope="module")
def sample_stack():
    """A data_sample session (c, z, y, x) and its voxel size, as the one-TIFF reference."""
    path = SAMPLE / "images" / "pyr01" / "s00.tif"
    info = probe_stack(path)
    return read_stack(path, channels=[0, 1]).astype(np.uint16), info.voxel_um, path


def _small(seed=0, c=2, z=6, y=24, x=28):
    return np.random.default_rng(seed).integers(1, 4000, size=(c, z, y, x)).astype(np.uint16)


# --------------------------------------------------------------------------- PrairieView
def test_prairieview_folder_gives_the_synapses_of_the_same_data_as_one_tiff(tmp_path, sample_stack):
    stack, voxel, tiff = sample_stack
    # acquired top-down: frame 1 is the last plane; the XML's positions put it back in order
    folder = write_prairieview(tmp_path / "ZSeries-03142026-1002-001", stack, voxel_um=voxel,
                               top_down=True)
    info = probe_stack(folder)
    assert (info.n_channels, info.n_planes, info.plane_shape) == (2, 20, (256, 256))
    assert info.channel_names == ("Ch1", "Ch2")
    assert info.format == "Bruker PrairieView folder"
    # z from the frames' positions (not micronsPerPixel ZAxis = 1), x and y from micronsPerPixel
    np.testing.assert_allclose(info.voxel_um, voxel, rtol=1e-6)
    got = read_stack(folder, channels=[0, 1])
    np.testing.assert_array_equal(got, stack)
    ref = read_stack(tiff, channels=[0, 1])
    spacing = tuple(info.voxel_um)
    a = detect_session(got, spacing=spacing, params=DetectParams())
    b = detect_session(ref, spacing=spacing, params=DetectParams())
    assert len(a) > 20
    pd.testing.assert_frame_equal(a, b)


def test_prairieview_channels_keep_the_rigs_numbers(tmp_path):
    stack = _small()
    folder = write_prairieview(tmp_path / "ZSeries-1", stack, voxel_um=VOX, channels=(2, 3))
    info = probe_stack(folder)
    assert info.channel_names == ("", "Ch2", "Ch3")
    np.testing.assert_array_equal(read_stack(folder, channels=[2, 1]), stack[::-1])
    with pytest.raises(InputError, match=r"channel 0 was not recorded.*1 = Ch2, 2 = Ch3"):
        read_stack(folder, channels=[0, 1])


def test_prairieview_missing_plane_file_is_named(tmp_path):
    folder = write_prairieview(tmp_path / "ZSeries-2", _small(), voxel_um=VOX)
    victim = sorted(folder.glob("*Ch2_000004.ome.tif"))[0]
    victim.unlink()
    with pytest.raises(InputError, match=f"{victim.name}.*frame 4, Ch2.*missing"):
        probe_stack(folder)


def test_prairieview_folder_is_not_read_as_slices(tmp_path):
    # the bug this replaces: the folder's 2 x 6 single-plane files were 12 planes of 1 channel
    folder = write_prairieview(tmp_path / "ZSeries-3", _small(z=6), voxel_um=VOX)
    info = probe_stack(folder)
    assert (info.n_channels, info.n_planes) == (2, 6)


# --------------------------------------------------------------------------- ThorImage
def test_thorimage_raw_skips_flyback_frames_and_reads_the_xml_voxel(tmp_path, sample_stack):
    stack, voxel, _ = sample_stack
    folder = write_thorimage_raw(tmp_path / "day04", stack, voxel_um=voxel, flyback=2)
    info = probe_stack(folder)
    assert (info.n_channels, info.n_planes, info.channel_names) == (2, 20, ("ChanA", "ChanB"))
    assert info.format == "Thorlabs ThorImage raw"
    np.testing.assert_allclose(info.voxel_um, (voxel[0], voxel[2], voxel[2]), rtol=1e-6)
    np.testing.assert_array_equal(read_stack(folder, channels=[0, 1]), stack)
    np.testing.assert_array_equal(read_stack(folder, channels=[1]), stack[1:])


def test_thorimage_tiffs_in_plane_order(tmp_path):
    stack = _small(3)
    folder = write_thorimage_tiffs(tmp_path / "exp", stack, voxel_um=VOX)
    info = probe_stack(folder)
    assert (info.n_channels, info.n_planes, info.format) == (2, 6, "Thorlabs ThorImage TIFFs")
    np.testing.assert_array_equal(read_stack(folder, channels=[0, 1]), stack)


def test_thorimage_time_series_needs_the_time_axis_column(tmp_path):
    stack = _small(4)
    folder = write_thorimage_raw(tmp_path / "tl", stack, voxel_um=VOX, n_t=3)
    with pytest.raises(InputError, match="time axis of 3 points"):
        probe_stack(folder)
    mean = read_stack(folder, channels=[0], time_axis="mean")
    np.testing.assert_allclose(mean[0], stack[0] + 1.0)   # time point t holds stack + t


def test_thorimage_truncated_raw_is_named(tmp_path):
    folder = write_thorimage_raw(tmp_path / "cut", _small(), voxel_um=VOX)
    raw = folder / "Image_0001_0001.raw"
    raw.write_bytes(raw.read_bytes()[:-100])
    with pytest.raises(InputError, match="stopped early"):
        probe_stack(folder)


# --------------------------------------------------------------------------- OME-Zarr, CZI
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_round_trip(tmp_path, zarr_format):
    import zarr

    stack = _small(5)
    path = tmp_path / "s00.ome.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    root.create_array("0", data=stack[:, :, :, :], chunks=(1, 2, 24, 28))
    root.create_array("1", data=stack[:, :, ::2, ::2])
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
    multiscales = [{"version": "0.4", "axes": axes, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, *VOX]}]},
        {"path": "1", "coordinateTransformations": [
            {"type": "scale", "scale": [1, VOX[0], 2 * VOX[1], 2 * VOX[2]]}]}]}]
    omero = {"channels": [{"label": "PSD95-mVenus"}, {"label": "tdTomato"}]}
    if zarr_format == 2:
        root.attrs.update({"multiscales": multiscales, "omero": omero})
    else:
        multiscales[0].pop("version")
        root.attrs.update({"ome": {"version": "0.5", "multiscales": multiscales,
                                   "omero": omero}})
    info = probe_stack(path)
    assert (info.n_channels, info.n_planes, info.plane_shape) == (2, 6, (24, 28))
    assert info.channel_names == ("PSD95-mVenus", "tdTomato")
    np.testing.assert_allclose(info.voxel_um, VOX)
    np.testing.assert_array_equal(read_stack(path, channels=[1, 0]), stack[::-1])


def test_czi_round_trip(tmp_path):
    from pylibCZIrw import czi as pyczi

    stack = _small(6)
    path = tmp_path / "s00.czi"
    with pyczi.create_czi(str(path), exist_ok=True) as doc:
        for z in range(stack.shape[1]):
            for c in range(stack.shape[0]):
                doc.write(data=stack[c, z][..., None], plane={"Z": z, "C": c})
        doc.write_metadata(document_name="s00", channel_names={0: "EGFP", 1: "tdTomato"},
                           scale_x=VOX[2] * 1e-6, scale_y=VOX[1] * 1e-6, scale_z=VOX[0] * 1e-6)
    info = probe_stack(path)
    assert (info.n_channels, info.n_planes, info.channel_names) == (2, 6, ("EGFP", "tdTomato"))
    np.testing.assert_allclose(info.voxel_um, VOX, rtol=1e-6)
    np.testing.assert_array_equal(read_stack(path, channels=[0, 1]), stack)


# --------------------------------------------------------------------------- ND2, LIF (stubs)
class _FakeND2File:
    """The part of ``nd2.ND2File`` the adapter uses, over a known (P, Z, C, Y, X) array."""

    data = None

    def __init__(self, path):
        self.sizes = {"P": 2, "Z": 6, "C": 2, "Y": 24, "X": 28}
        self.dtype = np.dtype(np.uint16)
        self.metadata = SimpleNamespace(channels=[
            SimpleNamespace(channel=SimpleNamespace(name=n)) for n in ("Venus", "mCherry")])

    def voxel_size(self):
        return SimpleNamespace(x=VOX[2], y=VOX[1], z=VOX[0])

    def asarray(self, position=None):
        return self.data if position is None else self.data[position]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_nd2_adapter_with_a_stub_reader(tmp_path, monkeypatch):
    stacks = np.stack([_small(7), _small(8)]).transpose(0, 2, 1, 3, 4)   # P, Z, C, Y, X
    _FakeND2File.data = stacks
    monkeypatch.setattr(formats, "library", lambda fmt: SimpleNamespace(ND2File=_FakeND2File))
    path = tmp_path / "s00.nd2"
    path.write_bytes(b"ND2 stub")
    with pytest.raises(InputError, match="holds 2 positions.*series column"):
        probe_stack(path)
    info = probe_stack(path, series=1)
    assert (info.n_channels, info.n_planes, info.channel_names) == (2, 6, ("Venus", "mCherry"))
    np.testing.assert_allclose(info.voxel_um, VOX)
    np.testing.assert_array_equal(read_stack(path, channels=[0, 1], series=1), _small(8))


class _FakeLifImage:
    def __init__(self, data, name):
        t, z, c, y, x = data.shape
        self.data, self.name, self.channels = data, name, c
        self.dims = SimpleNamespace(x=x, y=y, z=z, t=t, m=1)
        self.scale = (1 / VOX[2], 1 / VOX[1], 1 / VOX[0], None)      # pixels per um
        self.bit_depth = (12, 12)

    def get_frame(self, z=0, t=0, c=0, m=0):
        return self.data[t, z, c]


def test_lif_adapter_with_a_stub_reader(tmp_path, monkeypatch):
    images = [_FakeLifImage(_small(9).transpose(1, 0, 2, 3)[None], "Overview"),
              _FakeLifImage(_small(10).transpose(1, 0, 2, 3)[None], "dendrite1")]

    class FakeLifFile:
        def __init__(self, path):
            self.image_list = [{"name": im.name} for im in images]

        def get_image(self, i):
            return images[i]

    monkeypatch.setattr(formats, "library", lambda fmt: SimpleNamespace(LifFile=FakeLifFile))
    path = tmp_path / "exp.lif"
    path.write_bytes(b"LIF stub")
    with pytest.raises(InputError, match="0 = Overview, 1 = dendrite1"):
        probe_stack(path)
    info = probe_stack(path, series=1)
    np.testing.assert_allclose(info.voxel_um, VOX)
    np.testing.assert_array_equal(read_stack(path, channels=[0, 1], series=1), _small(10))


def test_a_missing_reader_library_names_the_install_command(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_nd2(name, *args, **kwargs):
        if name == "nd2":
            raise ImportError("No module named 'nd2'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nd2)
    monkeypatch.delitem(sys.modules, "nd2", raising=False)
    path = tmp_path / "s00.nd2"
    path.write_bytes(b"ND2")
    with pytest.raises(InputError, match=r"needs the Python package 'nd2'.*\[formats\].*make formats"):
        probe_stack(path)


# --------------------------------------------------------------------------- axes override
def test_plain_tiff_read_in_the_order_the_axes_column_gives(tmp_path):
    stack = _small(11)                        # c, z, y, x
    path = tmp_path / "plain.tif"
    # no metadata: 12 pages, planes of two interleaved channels (z outer, c inner)
    with tifffile.TiffWriter(path) as tif:
        for page in stack.transpose(1, 0, 2, 3).reshape(-1, 24, 28):
            tif.write(page, metadata=None)
    assert probe_stack(path).n_channels == 1            # the file cannot know
    info = probe_stack(path, axes="ZC2YX")
    assert (info.n_channels, info.n_planes, info.axes) == (2, 6, "ZCYX")
    np.testing.assert_array_equal(read_stack(path, channels=[0, 1], axes="ZC2YX"), stack)
    # the same pages grouped the other way give other planes: the column is obeyed
    assert not np.array_equal(read_stack(path, channels=[0, 1], axes="C2ZYX"), stack)
    with pytest.raises(InputError, match="asks for 5 planes per group"):
        probe_stack(path, axes="ZC5YX")


def test_axes_column_renames_wrong_metadata(tmp_path):
    stack = _small(12)                        # c, z, y, x stored as CZYX but labelled ZCYX
    path = tmp_path / "wrong.tif"
    tifffile.imwrite(path, stack, metadata={"axes": "ZCYX"})
    with pytest.raises(InputError, match="2 plane.*the sheet's axes column"):
        probe_stack(path)                                 # the label is wrong
    np.testing.assert_array_equal(read_stack(path, channels=[0, 1], axes="CZYX"), stack)


def test_sheet_axes_and_series_columns_reach_check_sheet(tmp_path):
    stack = _small(13)
    with tifffile.TiffWriter(tmp_path / "a.tif") as tif:
        for page in stack.transpose(1, 0, 2, 3).reshape(-1, 24, 28):
            tif.write(page, metadata=None)
    folder = write_prairieview(tmp_path / "ZSeries-1", stack, voxel_um=VOX)
    sheet = tmp_path / "sessions.tsv"
    sheet.write_text("cell\tcell_type\tsession\tday\tpath\tpsd95_channel\tmorphology_channel\t"
                     "voxel_um\taxes\n"
                     "c1\tpyr\ts0\t0\ta.tif\t0\t1\t0.8,0.09,0.09\tZC2YX\n"
                     f"c1\tpyr\ts1\t4\t{folder.name}\t0\t1\t\t\n")
    res = subprocess.run([sys.executable, "-m", "pipeline", "check-sheet", str(sheet), "--images"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert "TIFF read as ZCYX, 6 planes of 24x28, axes ZCYX, 2 channel(s)" in lines[0]
    assert ("Bruker PrairieView folder, 6 planes of 24x28, axes ZCYX, 2 channel(s) = 0 Ch1, "
            "1 Ch2") in lines[1]
    assert "voxel 0.8,0.0887,0.0887 um from the file's metadata" in lines[1]


# --------------------------------------------------------------------------- end to end
def _as_rig_layouts(data):
    """data_sample with its sessions rewritten in every layout the readers take (same pixels,
    same voxel size); returns the rewritten sheet."""
    import zarr
    from pylibCZIrw import czi as pyczi

    sheet = pd.read_csv(data / "sessions.tsv", sep="\t", dtype=str, keep_default_na=False)
    sheet["voxel_um"], sheet["axes"] = "", ""
    for i, row in sheet.iterrows():
        src = data / row["path"]
        info = probe_stack(src)
        stack = read_stack(src, channels=[0, 1]).astype(np.uint16)
        base = src.parent / f"{src.stem}_rig"
        kind = (row["cell"], row["session"])
        if kind == ("pyr01", "s00"):
            new = write_prairieview(base / "ZSeries-1", stack, voxel_um=info.voxel_um,
                                    top_down=True)
        elif kind == ("pyr01", "s01"):
            new = write_thorimage_raw(base, stack, voxel_um=info.voxel_um, flyback=3)
        elif kind == ("pyr01", "s02"):
            new = write_thorimage_tiffs(base, stack, voxel_um=info.voxel_um)
        elif kind == ("pyr01", "s03"):
            new = src.with_name(f"{src.stem}_plain.tif")
            with tifffile.TiffWriter(new) as tif:
                for page in stack.transpose(1, 0, 2, 3).reshape((-1,) + stack.shape[2:]):
                    tif.write(page, metadata=None)
            sheet.loc[i, "axes"] = "ZC2YX"
            sheet.loc[i, "voxel_um"] = ",".join(repr(float(v)) for v in info.voxel_um)
        elif kind == ("PV02", "s00"):
            new = src.with_name(f"{src.stem}.ome.zarr")
            root = zarr.open_group(str(new), mode="w", zarr_format=2)
            root.create_array("0", data=stack)
            axes = [{"name": "c", "type": "channel"}] + [
                {"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"]
            root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [
                {"path": "0", "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, *info.voxel_um]}]}]}]
        elif kind == ("PV02", "s01"):
            new = src.with_suffix(".czi")
            with pyczi.create_czi(str(new), exist_ok=True) as doc:
                for z in range(stack.shape[1]):
                    for c in range(2):
                        doc.write(data=stack[c, z][..., None], plane={"Z": z, "C": c})
                doc.write_metadata(document_name="s01", scale_x=info.voxel_um[2] * 1e-6,
                                   scale_y=info.voxel_um[1] * 1e-6,
                                   scale_z=info.voxel_um[0] * 1e-6)
            # CZI scaling is stored in metres as text: state the size exactly in the sheet
            sheet.loc[i, "voxel_um"] = ",".join(repr(float(v)) for v in info.voxel_um)
        else:
            continue
        src.unlink()
        sheet.loc[i, "path"] = str(new.relative_to(data))
    path = data / "sessions_rig.tsv"
    sheet.to_csv(path, sep="\t", index=False)
    return path


def test_every_layout_gives_the_synapses_of_the_tiffs(tmp_path, sample_run):
    import shutil

    from conftest import snakemake

    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    sheet = _as_rig_layouts(data)
    res = subprocess.run([sys.executable, "-m", "pipeline", "check-sheet", str(sheet),
                          "--images"], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    for kind in ("Bruker PrairieView folder", "Thorlabs ThorImage raw", "Thorlabs ThorImage TIFFs",
                 "TIFF read as ZCYX", "OME-Zarr", "Zeiss CZI"):
        assert kind in res.stdout
    run = snakemake(tmp_path / "work", "--config", f"sessions={sheet}",
                    f"results={tmp_path / 'results'}")
    assert run.returncode == 0, run.stderr[-3000:]
    for table in ("synapses.csv", "stats/survival.csv", "stats/kesten.csv"):
        assert (tmp_path / "results" / table).read_bytes() == \
            (sample_run.results / table).read_bytes(), table
