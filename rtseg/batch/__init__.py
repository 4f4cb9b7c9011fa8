"""``rtseg batch``: many videos at once on Ray. The manifest (:mod:`~rtseg.batch.manifest`), one
video's work in a worker (:mod:`~rtseg.batch.video`), and the driver with its Ray actors, progress
and summary (:mod:`~rtseg.batch.run`)."""
