"""``python -m infersight``: the same CLI as the ``infersight`` console script."""

from infersight.cli import main

if __name__ == "__main__":
    main()
