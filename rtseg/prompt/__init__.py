"""Step 3, prompt: what the user asks for (points, boxes, texts; :mod:`~rtseg.prompt.prompts`),
which segment a click or box picks (:mod:`~rtseg.prompt.select`), and CLIP, which scores texts
against masked crops of segments (:mod:`~rtseg.prompt.clip`, :mod:`~rtseg.prompt.crops`)."""
