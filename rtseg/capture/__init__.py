"""Step 1, capture: frames from a webcam, a video file, an image folder, an image or a stream
(:mod:`~rtseg.capture.sources`), decoded ahead of the model for files (:mod:`~rtseg.capture.prefetch`),
or replayed from memory for benchmarks and tests (:mod:`~rtseg.capture.replay`)."""
