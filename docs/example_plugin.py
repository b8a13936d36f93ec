"""Example calculator plugin for diagnostics_app: the zero-crossing rate.

Install it in either of two ways:

* put this file in a folder and list that folder in the environment variable
  ``DIAGNOSTICS_APP_PLUGIN_PATH`` (several folders are separated by ``os.pathsep``, i.e. ``:``
  on Linux and macOS, ``;`` on Windows); every ``*.py`` file there is loaded at start-up;
* or ship it in a package that declares an entry point in the group
  ``diagnostics_app.calculators``, e.g. in its ``pyproject.toml``::

      [project.entry-points."diagnostics_app.calculators"]
      zcr = "my_package.zcr:ZeroCrossingRate"

Once loaded, projects can request it like a built-in feature::

    {"feature": "zcr"}                                  (resolved from the feature)
    {"feature": "zcr", "calculator": "example.zcr"}     (or named explicitly)

A plugin that fails to load (a syntax error, an exception on import, an unknown parameter,
an id that is already taken) is listed with its path and error; everything else keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from diagnostics_app.core.calculators import (
    AnalysisContext,
    Block,
    Calculator,
    CalculatorRun,
    FeatureSpec,
    OutputMeta,
    Outputs,
    Reach,
    as_frames,
    frame_reach,
    uniform_meta,
)
from diagnostics_app.core.params import Params

# What the calculator produces. kind="line": one value per frame and channel, drawn as a curve
# ("image" features have many values per frame, e.g. one per frequency bin).
ZCR = FeatureSpec(
    "zcr",
    kind="line",
    unit="",
    description="zero-crossing rate: fraction of adjacent samples whose signs differ",
)


class ZeroCrossingRate(Calculator):
    """Zero-crossing rate of centred frames of ``window_size`` samples, one every
    ``hop_size`` samples (frame t is centred on sample t * hop_size; outside the file the
    signal is zero, as in every built-in)."""

    # A unique id; by convention "<your project>.<name>" ("core." is taken by the built-ins).
    id = "example.zcr"

    # Bump the version whenever a change of the code changes the output: every cached
    # result of this calculator, and only those, then shows as stale.
    version = 1

    # The features it produces (one pass may produce several).
    features = (ZCR,)

    # EXACTLY the profile parameters the output depends on. They are part of the cache
    # fingerprint: leave one out and changing it goes unnoticed (stale results look fresh);
    # list one too many and changing it makes results stale for nothing.
    # channel_mode is here because the frames the engine hands out are of the mix or of each
    # channel, depending on it; any calculator that reads ``block.frames()`` or
    # ``block.signal`` depends on channel_mode.
    params = ("window_size", "hop_size", "channel_mode")

    # True if the output depends on the project's tempo map (like the built-in beat_rms).
    uses_tempo = False

    # True only if the calculator reads block.magnitude / block.power (the shared STFT).
    uses_spectrum = False

    description = "zero-crossing rate of centred frames"

    def reach(self, params: Params, sample_rate: int) -> Reach | None:
        # Which samples frame t reads, so that an edit of the audio in one place is known to
        # touch only the frames around it ("affects frames a-b" in check --json and the Why
        # panel). frame_reach(length, offset, hop): frame t reads samples
        # [t * hop + offset, t * hop + offset + length), exactly as process() below reads
        # them. Leave this method out (or return None) if a frame can depend on samples
        # anywhere (a global normalisation, a state carried from frame to frame): the reach
        # is then "unbounded", and any change means the whole feature changes.
        length = params.get_int("window_size")
        return frame_reach(length, -(length // 2), params.get_int("hop_size"))

    def start(self, ctx: AnalysisContext) -> CalculatorRun:
        # Called once per analysis pass, before the first block; ctx holds the sample rate,
        # channel counts, the validated parameters and the tempo map.
        return _ZeroCrossingRun(ctx)


class _ZeroCrossingRun(CalculatorRun):
    """One streaming run over one source. The engine decodes the file once, in blocks, and
    calls process() for each; keep only small state here (memory must stay flat)."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        # Read parameters through the typed accessors; they are already validated.
        self.length = ctx.params.get_int("window_size")

    def process(self, block: Block) -> Outputs:
        # The frames this block completes: (channels, frames, length); frame t starts at
        # sample t * hop_size + offset, so an offset of -length // 2 centres it on t * hop_size.
        # May hold 0 frames (a block too short to complete one): the code below copes.
        frames = block.frames(self.length, -(self.length // 2))
        negative = np.signbit(frames)
        crossings = np.count_nonzero(negative[..., 1:] != negative[..., :-1], axis=-1)
        rate = crossings / max(self.length - 1, 1)  # (channels, frames)
        # Return arrays of shape (frames, channels, width); as_frames converts and casts to
        # float32. Return the frames in order; the engine concatenates them.
        return {"zcr": as_frames(rate)}

    def outputs(self) -> Mapping[str, OutputMeta]:
        # The layout of each feature: channels, width (1 value per frame here) and the time
        # axis; uniform_meta describes "one frame every hop_size samples, frame 0 at 0 s".
        return {"zcr": uniform_meta(self.ctx, ZCR, 1)}
