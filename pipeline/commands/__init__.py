"""Command handlers: parse the arguments, call a stage (`pipeline.stages`) or the library,
and print the result. Only `pipeline.cli` imports them (checked by tests/test_structure.py).
"""
