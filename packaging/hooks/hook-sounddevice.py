"""Replaces the contrib hook for sounddevice: do NOT bundle the build machine's PortAudio.

On Linux sounddevice finds PortAudio with ``ctypes.util.find_library("portaudio")``, i.e. in
the system's linker cache, so a bundled copy would only be loaded when the system has one
anyway, and it would drag in copies of libasound and libjack that must match the target's
sound servers. The bundle therefore uses the system library (Debian: ``libportaudio2``);
without it the app runs and says that playback is unavailable.
"""

binaries: list = []
datas: list = []
