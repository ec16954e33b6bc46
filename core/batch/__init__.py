"""Annotating inputs into files: the run's configuration (`config`, defaults <- TOML <-
command line), one input's job (`job.annotate_one`, with its analysis outputs in
`analysis_outputs`), planning inputs and output names (`plan`), per-output locks (`locks`),
termination signals (`signals`), worker processes on one machine (`local`) and a Ray
backend for clusters (`ray_backend`). `main.py annotate` and the GUI's batch dialog drive
it; it never imports the commands."""
