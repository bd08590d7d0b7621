"""One thin module per DVC stage: `python -m digits.stages.<name>` reads params.yaml, calls the library, writes outputs."""
