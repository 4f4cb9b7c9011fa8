"""Step 4, track: segments followed from frame to frame with stable ids. The association maths
(:mod:`~rtseg.track.associate`), the tracker and its state (:mod:`~rtseg.track.tracker`,
:mod:`~rtseg.track.state`), acquisition and re-acquisition of prompted objects
(:mod:`~rtseg.track.acquire`, :mod:`~rtseg.track.appearance`), and the keyframe mode's carrying of
masks between segmented frames (:mod:`~rtseg.track.keyframes`, finding each object again by its
masked template: :mod:`~rtseg.track.templates`)."""
