"""``rtseg bench``: rtseg against the bare model and ultralytics, timed in one run on the same
frames (:mod:`~rtseg.bench.runs`, run by :mod:`~rtseg.bench.command`), with its samples, models,
measurements, peers and report."""
