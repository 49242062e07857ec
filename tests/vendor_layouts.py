"""Write a (c, z, y, x) stack the way two-photon rigs store it, for the reader tests.

The layouts follow files from the rigs: PrairieView 5.x ``ZSeries-*`` folders (one single-page
OME-TIFF per frame and channel, ``<PVScan>`` XML with ``micronsPerPixel`` and each frame's
``positionCurrent``) and ThorImageLS experiment folders (``Experiment.xml`` with ``LSM``,
``ZStage``, ``Timelapse``, ``Wavelengths`` and ``Streaming`` elements, beside ``Image_0001_0001.raw``
or ``ChanA_0001_0001_0001_0001.tif`` files).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile


def write_prairieview(folder: Path, stack: np.ndarray, *, voxel_um, channels=(1, 2),
                      top_down: bool = False, z0: float = -120.0,
                      microns_per_pixel_z: float = 1.0) -> Path:
    """A PrairieView ZSeries folder of ``stack`` (c, z, y, x); ``channels`` are the rig's
    channel numbers (Ch1 = 1) of the stack's channels.  With ``top_down`` the frames are
    acquired from the last plane to the first (frame 1 holds the deepest plane).  Like the rig,
    the XML's ``micronsPerPixel`` ZAxis is a calibration value, not the step."""
    folder.mkdir(parents=True)
    name = folder.name
    n_c, n_z = stack.shape[:2]
    z_um, y_um, x_um = voxel_um
    order = list(range(n_z))[::-1] if top_down else list(range(n_z))
    frames = []
    for k, z in enumerate(order):
        files = []
        for ci, ch in enumerate(channels):
            fname = f"{name}_Cycle00001_Ch{ch}_{k + 1:06d}.ome.tif"
            tifffile.imwrite(folder / fname, stack[ci, z], ome=True,
                             metadata={"axes": "YX", "Channel": {"Name": f"Ch{ch}"}})
            files.append(f'      <File channel="{ch}" channelName="Ch{ch}" page="1" '
                         f'filename="{fname}" />')
        pos = z0 + z * z_um
        frames.append(
            f'    <Frame relativeTime="{k * 0.5}" absoluteTime="{10 + k * 0.5}" index="{k + 1}" '
            'parameterSet="CurrentSettings">\n' + "\n".join(files) + "\n"
            '      <ExtraParameters validData="True" />\n'
            '      <PVStateShard>\n        <PVStateValue key="positionCurrent">\n'
            '          <SubindexedValues index="ZAxis">\n'
            f'            <SubindexedValue subindex="0" value="{pos - 30.0}" />\n'
            '            <SubindexedValue subindex="1" value="30" description="Piezo" />\n'
            '          </SubindexedValues>\n        </PVStateValue>\n      </PVStateShard>\n'
            '    </Frame>')
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<PVScan version="5.6.64.400" date="3/14/2026 10:02:11 AM" notes="">\n'
        '  <SystemIDs SystemID="4321" />\n  <PVStateShard>\n'
        '    <PVStateValue key="activeMode" value="Galvo" />\n'
        '    <PVStateValue key="micronsPerPixel">\n'
        f'      <IndexedValue index="XAxis" value="{x_um}" />\n'
        f'      <IndexedValue index="YAxis" value="{y_um}" />\n'
        f'      <IndexedValue index="ZAxis" value="{microns_per_pixel_z}" />\n'
        '    </PVStateValue>\n'
        f'    <PVStateValue key="pixelsPerLine" value="{stack.shape[3]}" />\n'
        f'    <PVStateValue key="linesPerFrame" value="{stack.shape[2]}" />\n'
        '  </PVStateShard>\n'
        '  <Sequence type="ZSeries" cycle="1" time="10:02:11.5" bidirectionalZ="False" '
        'xYStageGridDefined="False">\n' + "\n".join(frames) + "\n  </Sequence>\n</PVScan>\n")
    (folder / f"{name}.xml").write_text(xml)
    (folder / f"{name}.env").write_text("<Environment />\n")
    return folder


def _thorimage_xml(stack_shape, *, voxel_um, channels, n_t, flyback) -> str:
    n_c, n_z, h, w = stack_shape
    waves = "\n".join(f'    <Wavelength name="Chan{c}" exposureTimeMS="0" />' for c in channels)
    return (
        '<?xml version="1.0"?>\n<ThorImageExperiment>\n'
        '  <Software version="4.3.2023.1161" />\n'
        '  <Date date="03/18/2026 14:31:07" uTime="1773844267" />\n'
        '  <Name name="dendrite_day04" />\n'
        f'  <LSM name="GalvoGalvo" pixelX="{w}" pixelY="{h}" pixelSizeUM="{voxel_um[2]}" '
        f'widthUM="{w * voxel_um[2]}" heightUM="{h * voxel_um[1]}" frameRate="2.1" '
        'averageMode="1" averageNum="4" areaMode="0" />\n'
        f'  <ZStage name="ThorZPiezo" steps="{n_z}" stepSizeUM="{voxel_um[0]}" '
        'startPos="0.21" zStreamFrames="1" zStreamMode="0" />\n'
        f'  <Timelapse timepoints="{n_t}" intervalSec="0" />\n'
        '  <Wavelengths nyquistExWavelengthNM="920" nyquistEmWavelengthNM="525">\n'
        f'{waves}\n    <ChannelEnable Set="3" />\n  </Wavelengths>\n'
        f'  <Streaming enable="{1 if flyback else 0}" frames="{n_z * n_t}" rawData="1" '
        f'zFastEnable="{1 if flyback else 0}" flybackFrames="{flyback}" />\n'
        '</ThorImageExperiment>\n')


def write_thorimage_raw(folder: Path, stack: np.ndarray, *, voxel_um, channels="AB",
                        n_t: int = 1, flyback: int = 0) -> Path:
    """A ThorImage experiment folder with ``Image_0001_0001.raw``: for each time point, the
    planes then ``flyback`` flyback frames, each frame holding every channel in turn."""
    folder.mkdir(parents=True)
    n_c, n_z, h, w = stack.shape
    frames = np.full((n_t, n_z + flyback, n_c, h, w), 65535, np.uint16)  # flyback: junk
    for t in range(n_t):
        frames[t, :n_z] = stack.transpose(1, 0, 2, 3) + t
    frames.astype("<u2").tofile(folder / "Image_0001_0001.raw")
    (folder / "Experiment.xml").write_text(
        _thorimage_xml(stack.shape, voxel_um=voxel_um, channels=channels, n_t=n_t,
                       flyback=flyback))
    return folder


def write_thorimage_tiffs(folder: Path, stack: np.ndarray, *, voxel_um, channels="AB") -> Path:
    """A ThorImage experiment folder of ``Chan{A,B}_0001_0001_{plane}_{time}.tif`` files."""
    folder.mkdir(parents=True)
    for ci, ch in enumerate(channels):
        for z in range(stack.shape[1]):
            tifffile.imwrite(folder / f"Chan{ch}_0001_0001_{z + 1:04d}_0001.tif", stack[ci, z])
    tifffile.imwrite(folder / "ChanA_Preview.tif", stack[0].max(axis=0))  # not a plane
    (folder / "Experiment.xml").write_text(
        _thorimage_xml(stack.shape, voxel_um=voxel_um, channels=channels, n_t=1, flyback=0))
    return folder
