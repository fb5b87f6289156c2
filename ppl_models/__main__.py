"""``python -m ppl_models`` is the ``ppl-models`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
