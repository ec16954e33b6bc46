"""Batch annotation beyond one input at a time: planning inputs and output names
(`plan`), per-output locks (`locks`), termination signals (`signals`), worker processes on
one machine (`local`) and a Ray backend for clusters (`ray_backend`)."""
