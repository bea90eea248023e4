"""The meeting protocol (DESIGN.md §4) as a sans-I/O core: no clock, no socket."""
