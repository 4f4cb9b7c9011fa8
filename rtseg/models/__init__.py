"""Model loading: FastSAM through ultralytics, CLIP through open_clip."""
