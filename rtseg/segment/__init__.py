"""Step 2, segment: FastSAM through ultralytics turns a frame into every segment in it, as
``sv.Detections`` with lazy masks (:mod:`~rtseg.segment.fastsam`, :mod:`~rtseg.segment.prototypes`);
where the model runs and where its weights come from (:mod:`~rtseg.segment.weights`,
:mod:`~rtseg.segment.offline`); exporting it (:mod:`~rtseg.segment.export`)."""
