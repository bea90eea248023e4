"""The meeting protocol (docs/meetings.md) as a sans-I/O core: no clock, no socket."""
