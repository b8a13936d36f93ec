"""The Qt-free core: project document, audio decoding, calculators, fingerprints, the feature
store, diagnostics, planner and jobs. Nothing below this package may import Qt (a test checks)."""
