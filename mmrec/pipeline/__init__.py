"""run_<verb>(settings, ...) -> result object: orchestration of the core, no typer, no printing."""
