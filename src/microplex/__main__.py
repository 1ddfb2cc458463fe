"""``python -m microplex <args>``: the ``microplex`` command line (:func:`microplex.cli.main`)."""

from .cli import main

if __name__ == "__main__":
    main()
