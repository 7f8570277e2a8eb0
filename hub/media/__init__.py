"""The hub's media store: ingested audio on disk, its manifests, signed delivery."""
