"""The prompts a command line gives: its options in order, then a prompts file."""

from __future__ import annotations

import argparse

from rtseg.errors import RtsegError


def prompts_from_args(args: argparse.Namespace, timeline: list | None = None) -> list:
    """The objects of --point/--box/--text/--concept/--neg in command-line order, then those of
    --prompts; with ``timeline`` (rtseg track), the prompts file's entries for later frames (new
    objects and corrections by id, :class:`~rtseg.prompt.prompts.Timed`) are appended to it."""
    from rtseg.prompt.prompts import (
        ConceptPrompt,
        PointPrompt,
        TextPrompt,
        load_prompts_file,
        load_timeline,
        parse_box,
        parse_xy,
        with_negative,
    )

    objects: list = []
    for kind, value in args.objects:
        if kind == "point":
            objects.append(PointPrompt((parse_xy(value, 2, "point"),), (1,)))  # type: ignore[arg-type]
        elif kind == "box":
            objects.append(parse_box(value))
        elif kind == "text":
            if not value.strip():
                raise RtsegError("empty --text prompt")
            objects.append(TextPrompt(value.strip()))
        elif kind == "concept":
            if not value.strip():
                raise RtsegError("empty --concept phrase")
            objects.append(ConceptPrompt(value.strip()))
        else:
            if not objects or isinstance(objects[-1], ConceptPrompt):
                raise RtsegError(f"--neg {value} comes before any --point, --box or --text object")
                raise RtsegError(f"--neg {value} comes before any --point, --box or --text object")
            objects[-1] = with_negative(objects[-1], parse_xy(value, 2, "negative point"))  # type: ignore[arg-type]
    if args.prompts and timeline is None:
        objects += load_prompts_file(args.prompts)
    elif args.prompts and timeline is not None:  # rtseg track: the entries for later frames go to ``timeline``
        start, later = load_timeline(args.prompts)
        objects += start
        timeline += later
    return objects
