"""Step 5, output: the sinks each frame's result goes to (:mod:`~rtseg.output.sinks`: overlay video,
mask PNGs, JSON lines, progress, timings; :mod:`~rtseg.output.window`: the live window), what they
draw and write (:mod:`~rtseg.output.render`, :mod:`~rtseg.output.records`, :mod:`~rtseg.output.png`),
and the thread they run on (:mod:`~rtseg.output.worker`)."""
