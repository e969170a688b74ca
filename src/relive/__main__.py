"""``python -m relive``: the same as the ``relive`` command."""

from relive._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
